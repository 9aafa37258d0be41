"""The in-process event bus (edge.events) fed by the real store: a service hears exactly what a
committed transaction queued for MQTT, in order, on its own event loop."""

from __future__ import annotations

import asyncio
import json
import sys
import threading

import pytest

from edge.events import EventBus
from edge.service import ServiceContext
from edge.testing import until


def _collect(bus, pattern="#"):
    heard = []
    bus.subscribe(pattern, heard.append)
    return heard


def test_a_commit_reaches_subscribers_in_order_with_what_the_outbox_holds(store):
    async def scenario():
        heard = _collect(store.bus)
        with store.transaction() as tx:
            tx.emit("pager", "ticket_issued", ticket="A001")
            tx.set_state("pager", {"waiting": 1})
        with store.transaction() as tx:
            tx.emit("pager", "ticket_called", ticket="A001", counter="1")
            tx.publish("status", {"state": "online"}, retain=True)
        await until(lambda: len(heard) == 4, what="four messages")
        return heard

    heard = asyncio.run(scenario())
    outbox = store.pending()
    assert [(m.topic, m.row_id) for m in heard] == [(row[1], row[0]) for row in outbox]
    assert [m.payload for m in heard] == [json.loads(row[2]) for row in outbox]  # what the broker gets
    assert [m.type for m in heard] == ["ticket_issued", None, "ticket_called", None]
    assert heard[0].service == "pager" and heard[0].payload["seq"] == 1 and heard[2].payload["seq"] == 2


def test_a_rolled_back_transaction_publishes_nothing(store):
    async def scenario():
        heard = _collect(store.bus)
        with pytest.raises(RuntimeError):
            with store.transaction() as tx:
                tx.emit("pager", "ticket_issued", ticket="A001")
                raise RuntimeError("power cut in the middle")
        with store.transaction() as tx:  # a read-only transaction queues nothing either
            tx.execute("SELECT 1")
        with store.transaction() as tx:
            tx.emit("pager", "ticket_issued", ticket="A002")
        await until(lambda: heard, what="the committed event")
        await asyncio.sleep(0)
        return heard

    heard = asyncio.run(scenario())
    assert [m.payload["ticket"] for m in heard] == ["A002"]


def test_patterns_use_the_outbox_topics_and_mqtt_wildcards(store):
    async def scenario():
        heard = {p: _collect(store.bus, p) for p in ("pager/event", "pager/#", "+/event", "pager/state", "#")}
        with store.transaction() as tx:
            tx.emit("pager", "ticket_issued", ticket="A001")
            tx.set_state("pager", {"waiting": 1})
            tx.emit("qr", "code_scanned", kind="procedure")
            tx.publish("pager/cmd/result", {"id": "c1", "ok": True})
        await until(lambda: len(heard["#"]) == 4, what="all four messages")
        return {p: [m.topic for m in got] for p, got in heard.items()}

    topics = asyncio.run(scenario())
    assert topics["pager/event"] == ["pager/event"]
    assert topics["pager/#"] == ["pager/event", "pager/state", "pager/cmd/result"]
    assert topics["+/event"] == ["pager/event", "qr/event"]
    assert topics["pager/state"] == ["pager/state"]


@pytest.mark.parametrize("bad", ["", "pager/#/event", "pager/ev#", "pager/event+"])
def test_a_bad_pattern_is_refused_by_name(bad):
    async def scenario():
        EventBus().subscribe(bad, print)

    with pytest.raises(ValueError, match="bus pattern"):
        asyncio.run(scenario())


def test_subscribing_outside_an_event_loop_says_what_is_missing():
    with pytest.raises(RuntimeError, match="needs an event loop"):
        EventBus().subscribe("pager/event", print)


def test_commits_from_threads_are_delivered_on_the_loop_in_commit_order(store):
    """The pager runs its SQL in asyncio.to_thread: subscribers still run on their loop, in order."""
    def issue(n: int) -> None:
        for i in range(n):
            with store.transaction() as tx:
                tx.emit("pager", "ticket_issued", ticket=f"{threading.get_ident()}-{i}")

    async def scenario():
        loop_thread = threading.get_ident()
        threads = []
        heard = []
        store.bus.subscribe("pager/event", lambda m: (heard.append(m), threads.append(threading.get_ident())))
        await asyncio.gather(*(asyncio.to_thread(issue, 20) for _ in range(3)))
        await until(lambda: len(heard) == 60, what="60 events")
        return loop_thread, threads, heard

    loop_thread, threads, heard = asyncio.run(scenario())
    assert set(threads) == {loop_thread}
    rows = [m.row_id for m in heard]
    assert rows == sorted(rows) and len(set(rows)) == 60
    assert [m.payload["seq"] for m in heard] == list(range(1, 61))


def test_a_subscriber_that_raises_breaks_neither_the_commit_nor_the_others(store, caplog):
    def broken(message):
        raise ValueError("a screen's bug")

    async def scenario():
        store.bus.subscribe("pager/event", broken)
        heard = _collect(store.bus, "pager/event")
        for ticket in ("A001", "A002"):
            with store.transaction() as tx:
                tx.emit("pager", "ticket_issued", ticket=ticket)
                tx.emit("pager", "ticket_called", ticket=ticket, counter="1")
        await until(lambda: len(heard) == 4, what="four events")
        return heard

    heard = asyncio.run(scenario())
    assert [(m.type, m.payload["ticket"]) for m in heard] == [
        ("ticket_issued", "A001"), ("ticket_called", "A001"), ("ticket_issued", "A002"), ("ticket_called", "A002")]
    assert len(store.pending()) == 4  # every commit stood
    failures = [r for r in caplog.records if r.name == "edge.events" and r.exc_info]
    assert len(failures) == 4  # logged with its traceback for each message, not swallowed silently


def test_each_subscriber_gets_its_own_copy_of_the_payload(store):
    async def scenario():
        first, second = [], []
        store.bus.subscribe("pager/event", lambda m: (m.payload.update(ticket="changed"), first.append(m)))
        store.bus.subscribe("pager/event", second.append)
        with store.transaction() as tx:
            tx.emit("pager", "ticket_issued", ticket="A001")
        await until(lambda: first and second, what="both subscribers")
        return second

    assert asyncio.run(scenario())[0].payload["ticket"] == "A001"


def test_after_unsubscribe_nothing_more_arrives_even_what_was_already_scheduled(store):
    async def scenario():
        heard = []
        sub = store.bus.subscribe("pager/event", heard.append)
        kept = _collect(store.bus, "pager/event")
        with store.transaction() as tx:
            tx.emit("pager", "ticket_issued", ticket="A001")
        sub.close()  # the delivery was scheduled by the commit but has not run yet
        with store.transaction() as tx:
            tx.emit("pager", "ticket_issued", ticket="A002")
        await until(lambda: len(kept) == 2, what="the other subscriber's two events")
        return heard

    assert asyncio.run(scenario()) == []
    assert len(store.bus) == 1


def test_a_subscriber_whose_loop_is_gone_is_dropped_and_commits_go_on(store):
    async def subscribe():
        store.bus.subscribe("pager/event", print)

    asyncio.run(subscribe())  # that loop is closed now
    with store.transaction() as tx:
        tx.emit("pager", "ticket_issued", ticket="A001")
    assert len(store.bus) == 0 and len(store.pending()) == 1


def test_subscribing_and_unsubscribing_from_many_threads_at_once_loses_no_change():
    # Screens open and close streams on the loop while a commit drops a dead loop's subscriber on
    # its own thread: none of these changes may undo another (a closed stream must not come back,
    # a new one must not vanish). A tiny switch interval makes threads interleave mid-update.
    bus, loop = EventBus(), asyncio.new_event_loop()
    kept: list = []

    def churn():
        mine = [bus.subscribe("pager/#", print, loop=loop) for _ in range(300)]
        for sub in mine[1:]:
            sub.close()
        kept.append(mine[0])

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=churn) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
        loop.close()
    assert sorted(map(id, bus._subs)) == sorted(map(id, kept))


def test_a_listener_queues_for_a_stream_and_a_slow_reader_loses_the_oldest(store):
    async def scenario():
        with store.bus.listen("pager/state", maxsize=2) as heard:
            assert await heard.get(timeout_s=0.01) is None  # nothing yet: a keepalive tick
            for waiting in (1, 2, 3):
                with store.transaction() as tx:
                    tx.set_state("pager", {"waiting": waiting})
            await until(lambda: heard._queue.full(), what="a full queue")
            got = [(await heard.get()).payload["waiting"], heard.get_nowait().payload["waiting"]]
            assert heard.get_nowait() is None
        return got, len(store.bus)

    assert asyncio.run(scenario()) == ([2, 3], 0)


def test_services_find_the_bus_of_their_store_on_the_context(store, tmp_path):
    ctx = ServiceContext(name="kiosk", site="s", device="d", store=store, config=None, data_dir=tmp_path)
    assert ctx.bus is store.bus
