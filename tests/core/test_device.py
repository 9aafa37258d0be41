"""The built-in `device` service: central asks for a seq range again and gets the same events."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from edge.config import from_dict
from edge.device import DeviceService
from edge.mqtt import CommandDispatcher
from edge.service import ServiceContext
from edge.supervisor import Supervisor
from edge.testing import MqttRecorder


@pytest.fixture
def dispatcher(store, tmp_path):
    ctx = ServiceContext(name="device", site="hn", device="desk-01", store=store, config=None, data_dir=tmp_path)
    return CommandDispatcher(store, {"device": DeviceService(ctx)}, site="hn", device="desk-01")


def emit(store, n):
    with store.transaction() as tx:
        return [tx.emit("pager", "ticket_issued", n=i) for i in range(n)]


def resend(dispatcher, cmd_id, first, last):
    payload = json.dumps({"id": cmd_id, "type": "resend", "args": {"from_seq": first, "to_seq": last}}).encode()
    return asyncio.run(dispatcher.dispatch("device", payload))


def test_resend_queues_the_same_events_again_in_order(dispatcher, store):
    events = emit(store, 10)
    store.mark_published([row for row, *_ in store.pending()])
    result = resend(dispatcher, "r1", 4, 6)
    assert result["ok"] and result["resent"] == 3 and result["missing"] == []
    again = [json.loads(p) for _, t, p, _, _ in store.pending() if t == "pager/event"]
    assert [e["id"] for e in again] == [e["id"] for e in events[3:6]]  # same ids: stored once by central
    assert [e["seq"] for e in again] == [4, 5, 6]


def test_resend_names_what_the_outbox_no_longer_holds(dispatcher, store):
    emit(store, 5)
    result = resend(dispatcher, "r2", 3, 9)
    assert result["resent"] == 3 and result["missing"] == [[6, 9]]


@pytest.mark.parametrize("first, last, message", [
    (0, 5, "expected 1 <= from_seq <= to_seq"),
    (9, 3, "expected 1 <= from_seq <= to_seq"),
    (1, 20_001, "at most 10000 events"),
])
def test_bad_ranges_are_refused(dispatcher, store, first, last, message):
    result = resend(dispatcher, f"bad-{first}-{last}", first, last)
    assert not result["ok"] and message in result["error"]


def test_resend_over_a_real_broker(mosquitto, tmp_path):
    config = from_dict({"site": "hn", "device": "desk-01", "role": "desk", "data_dir": str(tmp_path / "d"),
                        "broker": {"url": mosquitto.url}})
    supervisor = Supervisor(config)

    async def scenario():
        task = asyncio.create_task(supervisor.run())
        with MqttRecorder(mosquitto.url) as rec:
            await asyncio.to_thread(rec.wait_for, lambda t, p: t.endswith("/status") and p["state"] == "online")
            with supervisor.store.transaction() as tx:
                sent = [tx.emit("pager", "ticket_issued", n=i) for i in range(3)]
            await asyncio.to_thread(rec.wait_for, lambda t, p: t.endswith("/pager/event"), 3)
            rec.publish("motcua/v1/hn/desk-01/device/cmd",
                        {"id": "gap-1", "type": "resend", "args": {"from_seq": 2, "to_seq": 3}, "ts": time.time()})
            events = await asyncio.to_thread(rec.wait_for, lambda t, p: t.endswith("/pager/event"), 5)
            (_, result), = await asyncio.to_thread(rec.wait_for, lambda t, p: t.endswith("/device/cmd/result"))
            supervisor.request_stop()
            await task
        return sent, [p for _, p in events], result

    sent, events, result = asyncio.run(scenario())
    assert result["ok"] and result["resent"] == 2
    assert [e["id"] for e in events[3:]] == [sent[1]["id"], sent[2]["id"]]
