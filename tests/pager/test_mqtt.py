"""The pager under the real supervisor with a real mosquitto: commands in, events and state out."""

import asyncio
import json

from edge.config import from_dict
from edge.pager.sim import ANSWER_WAIT_S
from edge.supervisor import Supervisor
from edge.testing import DEADLINE_S, MqttRecorder

BASE = "motcua/v1/hn-badinh/desk-01/pager"


def test_pager_commands_and_events_over_mqtt(mosquitto, tmp_path):
    config = from_dict({
        "site": "hn-badinh", "device": "desk-01", "role": "desk", "data_dir": str(tmp_path / "data"),
        "broker": {"url": mosquitto.url},
        # ANSWER_WAIT_S: a late ACK from the simulator's thread must not become a retry (a second page)
        "pager": {"driver": "espa", "port": "sim", "system_id": 0, "ack_timeout_s": ANSWER_WAIT_S,
                  "services": {"ho-tich": {"prefix": "A", "name": "Hộ tịch"}},
                  "counters": {"1": {"services": ["ho-tich"]}}},
    })
    supervisor = Supervisor(config)

    async def scenario():
        task = asyncio.create_task(supervisor.run())
        try:
            with MqttRecorder(mosquitto.url) as rec:
                await asyncio.to_thread(rec.wait_for, lambda t, p: t.endswith("/status") and p["state"] == "online"
                                        and p["services"].get("pager") == "ok")
                commands = [
                    {"id": "c1", "type": "issue", "args": {"service": "ho-tich"}},
                    {"id": "c2", "type": "call_next", "args": {"counter": "1"}},
                    {"id": "c3", "type": "call_next", "args": {"counter": "9"}},
                    {"id": "c4", "type": "page", "args": {"card": 100}},
                ]
                for cmd in commands:
                    rec.publish(BASE + "/cmd", json.dumps(cmd).encode())
                    await asyncio.to_thread(rec.wait_for, lambda t, p, i=cmd["id"]: t == BASE + "/cmd/result"
                                            and p.get("id") == i)
                results = {p["id"]: p for t, p in rec.matching(lambda t, p: t == BASE + "/cmd/result")}
                sim = supervisor.peers["pager"].sim
                await asyncio.to_thread(sim.wait_for, 1, DEADLINE_S)
                await asyncio.to_thread(rec.wait_for, lambda t, p: t == BASE + "/event" and p["type"] == "ticket_called")
                events = [p for t, p in rec.matching(lambda t, p: t == BASE + "/event")]
                states = [p for t, p in rec.matching(lambda t, p: t == BASE + "/state")]
                return results, events, states, list(sim.vibrated)
        finally:
            supervisor.request_stop()
            await task

    results, events, states, vibrated = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert results["c1"]["ok"] and results["c1"]["ticket"] == "A001" and results["c1"]["card"] == 1
    assert results["c2"]["ok"] and results["c2"]["ticket"] == "A001"
    assert not results["c3"]["ok"] and "unknown counter '9'" in results["c3"]["error"]
    assert not results["c4"]["ok"] and "card must be 1..99" in results["c4"]["error"]
    assert vibrated == [1]
    types = [e["type"] for e in events]
    assert types.index("ticket_issued") < types.index("ticket_called")
    called = next(e for e in events if e["type"] == "ticket_called")
    assert called["ticket"] == "A001" and called["counter"] == "1" and called["card"] == 1
    assert any(s["counters"]["1"]["ticket"] == "A001" for s in states)
