"""Schema and write path on a real PostgreSQL: migrations, partitions, retention, seq gaps, dedupe."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time

import psycopg

from edge.central import db, queries, topics


def event(seq: int, *, device: str = "desk-1", ts: float | None = None, event_id: str | None = None) -> topics.Event:
    body = {"id": event_id or f"ev-{device}-{seq}", "seq": seq, "ts": ts or time.time(), "type": "tick"}
    return topics.parse(f"motcua/v1/hue-tt/{device}/pager/event", json.dumps(body).encode())


def test_migrations_are_versioned_and_safe_to_run_concurrently(pg):
    errors = []

    def run():
        try:
            with db.connect(pg.dsn) as conn:
                db.migrate(conn)
        except Exception as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with db.connect(pg.dsn) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM central_schema ORDER BY version")]
    assert versions == list(range(1, len(db.MIGRATIONS) + 1))     # each applied once, in order


def test_events_partitioned_by_month_and_retention_drops_old_months(pg):
    with db.connect(pg.dsn) as conn:
        db.migrate(conn)
        writer = db.Writer(conn)
        old = dt.datetime(2026, 3, 15, tzinfo=dt.timezone.utc).timestamp()
        recent = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc).timestamp()   # not the real date: fixed
        writer.write([event(1, ts=old), event(2, ts=old + 40 * 86400), event(3, ts=recent)])
        parts = {r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events'")}
        assert {"events_2026_03", "events_2026_04"} <= parts
        dropped = db.drop_old_partitions(conn, 3, today=dt.date(2026, 6, 10))
        assert dropped == ["events_2026_03"]
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 2


def test_redelivery_is_stored_once_and_gaps_are_counted(pg):
    with db.connect(pg.dsn) as conn:
        db.migrate(conn)
        writer = db.Writer(conn)
        two, five = event(2), event(5)
        first = writer.write([event(1), two])
        again = writer.write([two, five, five])   # QoS 1 redeliveries are the same payload (same ts, same id)
        assert (first.stored, again.stored, again.duplicates) == (2, 1, 2)
        row = conn.execute("SELECT min(seq_min), max(seq_max), sum(seq_stored)::bigint FROM device_seq "
                           "WHERE device = 'desk-1'").fetchone()
        assert row == (1, 5, 3)

    async def read():
        async with await psycopg.AsyncConnection.connect(pg.dsn, autocommit=True) as aconn:
            return await queries.devices(aconn), await queries.gaps(aconn, "hue-tt", "desk-1")

    devices, gaps = asyncio.run(read())
    assert devices[0]["missing"] == 2
    assert [(g["first_missing"], g["last_missing"], g["requested_at"], g["unrecoverable"]) for g in gaps] == \
        [(3, 4, None, False)]
