"""The locker under the real supervisor and a real mosquitto: signed opens, duplicates, events, state."""

import asyncio
import json
import time

from .lockerkit import STAFF_HASH

from edge.config import from_dict
from edge.security import sign_command
from edge.supervisor import Supervisor
from edge.testing import MqttRecorder

BASE = "motcua/v1/hn/kiosk-01/locker"
KEY = bytes(range(7, 39))


def kiosk_supervisor(mosquitto, tmp_path, **locker) -> Supervisor:
    """A kiosk device on the test broker with a command key, its locker on the Kerong simulator."""
    key_file = tmp_path / "command.key"
    key_file.write_text(KEY.hex())
    key_file.chmod(0o600)
    return Supervisor(from_dict({
        "site": "hn", "device": "kiosk-01", "role": "kiosk", "data_dir": str(tmp_path / "data"),
        "broker": {"url": mosquitto.url, "command_key_file": str(key_file)},
        "locker": {"driver": "kerong", "port": "sim", "poll_interval_s": 0.05, "staff_pins": {"an": STAFF_HASH},
                   **locker},
    }))


def signed(cmd_id: str, type: str, args: dict) -> bytes:
    cmd = {"id": cmd_id, "type": type, "args": args, "ts": time.time()}
    return json.dumps(sign_command(KEY, "hn", "kiosk-01", "locker", cmd)).encode()


async def locker_online(rec: MqttRecorder) -> None:
    await asyncio.to_thread(rec.wait_for, lambda t, p: t.endswith("/status") and p["state"] == "online"
                            and p["services"].get("locker") == "ok", 1, 20)


def test_signed_open_over_mqtt_runs_once_and_reports_doors(mosquitto, tmp_path):
    supervisor = kiosk_supervisor(mosquitto, tmp_path, rate_limit_s=0.5, compartments={
        "1": {"board": 0, "lock": 1}, "2": {"board": 0, "lock": 2, "size": "L"}})

    async def scenario():
        task = asyncio.create_task(supervisor.run())
        try:
            with MqttRecorder(mosquitto.url) as rec:
                await locker_online(rec)
                payload = signed("open-1", "open", {"compartment": 2})
                sends = [("open-1", payload), ("open-1", payload),
                         ("unsigned", json.dumps({"id": "unsigned", "type": "open", "args": {"compartment": 1}}).encode())]
                for n, (cmd_id, body) in enumerate(sends):
                    rec.publish(BASE + "/cmd", body)
                    sent = sum(1 for i, _ in sends[:n + 1] if i == cmd_id)
                    await asyncio.to_thread(rec.wait_for, lambda t, p, i=cmd_id: t == BASE + "/cmd/result"
                                            and p.get("id") == i, sent, 10)
                await asyncio.to_thread(rec.wait_for, lambda t, p: t == BASE + "/event" and p["type"] == "door_opened", 1, 10)
                results = [p for t, p in rec.matching(lambda t, p: t == BASE + "/cmd/result")]
                events = [p for t, p in rec.matching(lambda t, p: t == BASE + "/event")]
                state = [p for t, p in rec.matching(lambda t, p: t == BASE + "/state")]
                return results, events, state, supervisor.peers["locker"].sim.bus
        finally:
            supervisor.request_stop()
            await task

    results, events, state, bus = asyncio.run(asyncio.wait_for(scenario(), 60))
    by_id = {}
    for r in results:
        by_id.setdefault(r["id"], []).append(r)
    assert by_id["open-1"][0]["ok"] and by_id["open-1"][0]["compartment"] == 2
    assert by_id["open-1"][1]["duplicate"]  # answered again, never executed twice
    assert not by_id["unsigned"][0]["ok"] and "signed" in by_id["unsigned"][0]["error"]
    assert bus.pulses_for(0, 2) == 1 and bus.pulses_for(0, 1) == 0
    types = [e["type"] for e in events]
    assert "pulse_sent" in types and "door_opened" in types
    assert len({e["id"] for e in events}) == len(events)
    assert state and state[-1]["doors"]["2"] in ("open", "closed")
    assert bus.requests[-1].kind == "status"  # stop ran: no open after the end


def test_a_signed_mqtt_load_of_a_code_no_citizen_can_collect_is_refused_and_opens_nothing(mosquitto, tmp_path):
    """The dossier-code rule (edge.qr.codes) holds below every route: the staff screen, and this one."""
    supervisor = kiosk_supervisor(mosquitto, tmp_path, compartments={"1": {"board": 0, "lock": 1}})

    async def scenario():
        task = asyncio.create_task(supervisor.run())
        try:
            with MqttRecorder(mosquitto.url) as rec:
                await locker_online(rec)
                answers = {}
                for cmd_id, receipt in (("bad", "DEMO-0001"), ("good", "000.00.01.H29-261207-0001")):
                    rec.publish(BASE + "/cmd", signed(cmd_id, "load", {"receipt": receipt}))
                    found = await asyncio.to_thread(rec.wait_for, lambda t, p, i=cmd_id: t == BASE + "/cmd/result"
                                                    and p.get("id") == i, 1, 10)
                    answers[cmd_id] = found[0][1]
                return answers, supervisor.peers["locker"].sim.bus
        finally:
            supervisor.request_stop()
            await task

    answers, bus = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert answers["bad"]["ok"] is False
    assert answers["bad"]["error"].startswith("bad_input: receipt code 'DEMO-0001' is not a dossier code")
    assert answers["good"]["ok"] is True and answers["good"]["compartment"] == 1
    assert bus.pulses_for(0, 1) == 1  # the good loading opened its door, the refused one nothing
