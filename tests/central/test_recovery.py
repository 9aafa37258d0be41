"""Gap recovery: central asks an online device to resend what it missed; the gap closes, and a
range the device no longer holds is marked unrecoverable and never asked for again."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import psycopg
import pytest

from edge.central import db, queries, recovery, topics
from edge.central.ingest import Consumer, IngestConfig
from edge.config import from_dict
from edge.supervisor import Supervisor

from .conftest import wait_until

SITE, DEVICE = "hn", "desk-01"


# -- ranges (pure) ------------------------------------------------------------------------------

def test_ranges_subtract_merge_and_chunk():
    assert recovery.subtract([(1, 10)], [(3, 4), (9, 12)]) == [(1, 2), (5, 8)]
    assert recovery.subtract([(4, 9)], [(7, 9)]) == [(4, 6)]
    assert recovery.subtract([(4, 9)], [(1, 20)]) == []
    assert recovery.merge([(5, 7), (1, 2), (3, 4)]) == [(1, 7)]
    assert recovery.chunk([(1, 25_000)]) == [(1, 10_000), (10_001, 20_000), (20_001, 25_000)]
    assert recovery.overlap((4, 9), [(7, 12)]) == 3


def test_result_topic_is_parsed_and_checked():
    r = topics.parse(f"motcua/v1/{SITE}/{DEVICE}/device/cmd/result",
                     json.dumps({"id": "resend-1", "ok": True, "resent": 3, "missing": [[7, 9]]}).encode())
    assert (r.site, r.device, r.service, r.id, r.data["missing"]) == (SITE, DEVICE, "device", "resend-1", [[7, 9]])
    with pytest.raises(topics.BadMessage) as err:
        topics.parse(f"motcua/v1/{SITE}/{DEVICE}/device/cmd/result", b'{"id": "x", "ok": true, "missing": [[9, 7]]}')
    assert err.value.reason == "bad_result"


# -- one round on a real PostgreSQL ---------------------------------------------------------------

def _event(seq: int) -> topics.Event:
    body = {"id": f"ev-{seq}", "seq": seq, "ts": time.time(), "type": "tick"}
    return topics.parse(f"motcua/v1/{SITE}/{DEVICE}/pager/event", json.dumps(body).encode())


def _online() -> topics.Status:
    return topics.Status(SITE, DEVICE, "online", time.time(), "1.0", {})


def _age_requests(conn, seconds: float) -> None:
    """Time passes for the retry interval: every device's last request moves `seconds` back
    (`resend_at` is the only clock a round reads for it), instead of the test sleeping."""
    conn.execute("UPDATE devices SET resend_at = resend_at - make_interval(secs => %s)", (seconds,))


def test_only_one_instance_asks_and_lost_ranges_are_not_asked_again(pg):
    settings = recovery.RecoverySettings(min_age_s=0, retry_s=0.5)
    published = []

    def publish(topic, payload):
        published.append((topic, json.loads(payload)))
        return True

    with db.connect(pg.dsn) as a, db.connect(pg.dsn) as b:
        db.migrate(a)
        db.Writer(a).write([_online(), *(_event(s) for s in (1, 2, 3, 15_006))])
        rounds = [recovery.run_round(conn, publish, settings, now=time.time) for conn in (a, b)]
        # Instance a claimed the device; b found it asked a moment ago. One request per ≤ 10,000 seqs.
        assert [len(r) for r in rounds] == [2, 0]
        assert [(t, p["args"]) for t, p in published] == [
            (f"motcua/v1/{SITE}/{DEVICE}/device/cmd", {"from_seq": 4, "to_seq": 10_003}),
            (f"motcua/v1/{SITE}/{DEVICE}/device/cmd", {"from_seq": 10_004, "to_seq": 15_005})]
        first, second = (p for _, p in published)
        with a.transaction():   # the device no longer holds anything before 12,000
            recovery.record_result(a, topics.CommandResult(SITE, DEVICE, "device", first["id"],
                                                           {"id": first["id"], "ok": True, "resent": 0,
                                                            "missing": [[4, 10_003]]}))
            recovery.record_result(a, topics.CommandResult(SITE, DEVICE, "device", second["id"],
                                                           {"id": second["id"], "ok": True, "resent": 3_006,
                                                            "missing": [[10_004, 11_999]]}))
        _age_requests(a, 0.6)               # past retry_s: only what may still exist is asked again
        published.clear()
        recovery.run_round(b, publish, settings, now=time.time)
        assert [p["args"] for _, p in published] == [{"from_seq": 12_000, "to_seq": 15_005}]
        db.Writer(b).write([_event(s) for s in range(12_000, 15_006)])   # ... and it arrived
        _age_requests(a, 0.6)
        published.clear()
        recovery.run_round(a, publish, settings, now=time.time)
        assert published == []               # only the lost range is left: never asked again
        db.Writer(a).write([_event(5)])      # one "lost" seq arrives after all (a late redelivery)
        _age_requests(a, 0.6)
        recovery.run_round(a, publish, settings, now=time.time)
        # that range is no longer known to be lost: asked again, the other one still is
        assert [p["args"] for _, p in published] == [{"from_seq": 4, "to_seq": 4}, {"from_seq": 6, "to_seq": 10_003}]
        published.clear()

    async def read():
        async with await psycopg.AsyncConnection.connect(pg.dsn, autocommit=True) as aconn:
            return await queries.gaps(aconn, SITE, DEVICE)

    gaps = asyncio.run(read())
    assert [(g["first_missing"], g["last_missing"], g["unrecoverable"], g["lost"], g["requests"]) for g in gaps] == [
        (6, 11_999, False, 1996, 3), (4, 4, False, 0, 2)]


# -- a real device over a real broker -----------------------------------------------------------

class DeviceThread:
    """A real `edge.supervisor.Supervisor` (outbox, reporter, dispatcher, `device` service)."""

    def __init__(self, broker_url: str, data_dir, *, device: str = DEVICE, broker: dict | None = None):
        config = from_dict({"site": SITE, "device": device, "role": "desk", "data_dir": str(data_dir),
                            "broker": {"url": broker_url, **(broker or {})}})
        self.supervisor = Supervisor(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        wait_until(lambda: self.supervisor.reporter is not None and self.supervisor.reporter.connected.is_set(),
                   what="device connected")

    async def _main(self):
        self.loop = asyncio.get_running_loop()
        await self.supervisor.run()

    def emit(self, n: int) -> list[dict]:
        with self.supervisor.store.transaction() as tx:
            sent = [tx.emit("pager", "ticket_issued", n=i) for i in range(n)]
        wait_until(lambda: self.supervisor.store.pending_count() == 0, what="outbox drained")
        return sent

    def forget(self, first: int, last: int) -> None:
        """What a week of outbox pruning does to old events."""
        with self.supervisor.store.transaction() as tx:
            tx.execute("DELETE FROM outbox WHERE topic LIKE '%/event' "
                       "AND json_extract(payload, '$.seq') BETWEEN ? AND ?", (first, last))

    def stop(self):
        self.loop.call_soon_threadsafe(self.supervisor.request_stop)
        self.thread.join(15)


def test_device_resends_what_central_missed_and_the_gap_closes(broker, pg, central_app, tmp_path):
    # Central A (plain subscription) stores seqs 1-3, then goes away for good.
    a = Consumer(IngestConfig(broker=broker.url, dsn=pg.dsn, instance="central-a", group="", batch_ms=10,
                              periodic_s=0.3, resend=None)).start()
    device = DeviceThread(broker.url, tmp_path / "device")
    try:
        wait_until(lambda: a.broker_ok, what="central A subscribed")
        device.emit(3)
        wait_until(lambda: a.counts["stored"] == 3, what="seqs 1-3 stored")
        a.stop()
        # Nobody subscribed: seqs 4-9 are accepted by the broker and lost for central.
        device.emit(6)
        device.forget(7, 9)
        # Two new instances, both doing gap recovery: they share the events and the asking (a gap
        # younger than min_age_s may be a seq in the other instance's batch: not asked yet; 1 s,
        # not less: both instances share this process, and on a loaded machine one can lag).
        settings = recovery.RecoverySettings(every_s=0.2, retry_s=1.0, min_age_s=1.0)
        b = central_app(instance="central-b", ingest={"resend": settings})
        c = central_app(instance="central-c", ingest={"resend": settings})
        device.emit(3)                                   # seqs 10-12 reveal the gap 4-9

        def gaps():
            return b.get(f"/api/gaps?site={SITE}&device={DEVICE}")

        wait_until(lambda: [(g["first_missing"], g["last_missing"], g["unrecoverable"]) for g in gaps()]
                   == [(7, 9, True)], what="gap 4-6 filled, 7-9 unrecoverable")
        with db.connect(pg.dsn) as conn:
            _age_requests(conn, 3 * settings.retry_s)    # three retry periods pass ...
        # ... and each instance runs two whole rounds after that (the first may have begun
        # before): nothing asked again. Counted rounds, not a fixed sleep: on a loaded machine a
        # second could pass with no round at all, and the check would prove nothing.
        rounds = [x.app.consumer.counts["resend_rounds"] for x in (b, c)]
        wait_until(lambda: all(x.app.consumer.counts["resend_rounds"] >= n + 2 for x, n in zip((b, c), rounds)),
                   what="two recovery rounds of each instance")
        with db.connect(pg.dsn) as conn:
            stored = conn.execute(
                "SELECT count(*), count(DISTINCT id), array_agg(seq ORDER BY seq) FROM events").fetchone()
            asked = conn.execute("SELECT args, result FROM commands WHERE type = 'resend'").fetchall()
        assert stored == (9, 9, [1, 2, 3, 4, 5, 6, 10, 11, 12])      # every event once
        assert len(asked) == 1                                      # one instance asked, once
        assert asked[0][0] == {"from_seq": 4, "to_seq": 9}
        assert asked[0][1]["resent"] == 3 and asked[0][1]["missing"] == [[7, 9]]
        (gap,) = gaps()
        assert gap["requested_at"] is not None and gap["lost"] == 3
        assert "Không thể khôi phục" in b.get(f"/events?site={SITE}&device={DEVICE}", raw=True)[1].decode()
    finally:
        device.stop()
