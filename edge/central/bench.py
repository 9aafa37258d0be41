"""Central ingestion rate (1 and 2 consumers, unbatched baseline) and dashboard query time on N million events."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

TARGETS = {"ingest_events_per_s": 5000, "queue_page_p95_ms": 200}
SITES, DEVICES_PER_SITE = 50, 4          # 200 desks, the size of a city


def add_arguments(parser) -> None:
    parser.add_argument("--events", type=int, default=10_000, help="events for the ingestion runs (default %(default)s)")
    parser.add_argument("--rows", type=int, default=10_000_000, help="stored events for the query run (default %(default)s)")
    parser.add_argument("--days", type=int, default=90, help="days the stored events span (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=40, help="timed requests per page (default %(default)s)")
    parser.add_argument("--skip-ingest", action="store_true", help="only the query part")
    parser.add_argument("--skip-queries", action="store_true", help="only the ingestion part")


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _free_port() -> int:
    from edge.central.testing import free_port
    return free_port()


def _broker(workdir: Path):
    from edge.localbroker import MosquittoBroker

    store = workdir / "mq"
    store.mkdir()
    if os.geteuid() == 0:
        shutil.chown(workdir, "mosquitto")
        shutil.chown(store, "mosquitto")
    return MosquittoBroker(extra_config=f"persistence true\npersistence_location {store}/\nmax_queued_messages 10000000\n",
                           workdir=workdir).start()


class _Central:
    def __init__(self, broker_url: str, dsn: str, instance: str, batch_max: int, log: Path):
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "central", "run", "--broker", broker_url, "--db", dsn, "--listen",
             f"127.0.0.1:{self.port}", "--instance", instance, "--batch-max", str(batch_max)],
            stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/health", timeout=1) as r:
                    if json.load(r)["ok"]:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"central did not become healthy: see {log}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


def _publish(broker_port: int, events: int) -> float:
    """3 devices publish `events` QoS 1 events; returns seconds until every PUBACK."""
    import threading

    import paho.mqtt.client as mqtt

    per_device = events // 3
    done = threading.Semaphore(0)
    clients = []
    start = time.perf_counter()
    for n in range(3):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-dev-{n}-{uuid.uuid4().hex[:6]}",
                        protocol=mqtt.MQTTv5)
        c.max_inflight_messages_set(20)
        c.on_publish = lambda *a: done.release()
        c.connect("127.0.0.1", broker_port)
        c.loop_start()
        clients.append(c)
    for i in range(per_device):
        for n, c in enumerate(clients):
            body = {"id": uuid.uuid4().hex, "seq": i + 1, "ts": time.time(), "type": "ticket_issued",
                    "ticket": f"A{i % 1000:03d}", "queue": "A"}
            c.publish(f"motcua/v1/bench/desk-{n}/pager/event", json.dumps(body), qos=1)
    for _ in range(per_device * 3):
        done.acquire(timeout=60)
    elapsed = time.perf_counter() - start
    for c in clients:
        c.disconnect()
        c.loop_stop()
    return elapsed


def bench_ingest(workdir: Path, events: int, consumers: int, batch_max: int) -> dict:
    """Queue `events` in the consumers' sessions while they are stopped, then time the drain."""
    import psycopg

    from edge.central.testing import PgCluster

    with PgCluster(base_dir=str(workdir)) as pg:
        broker = _broker(Path(tempfile.mkdtemp(prefix="bench-mq-", dir=workdir)))
        try:
            names = [f"bench-central-{i}" for i in range(consumers)]
            for name in names:           # create the persistent sessions and the schema
                _Central(broker.url, pg.dsn, name, batch_max, workdir / f"{name}.log").stop()
            publish_s = _publish(broker.port, events)
            total = events // 3 * 3
            started = time.perf_counter()
            running = [_Central(broker.url, pg.dsn, name, batch_max, workdir / f"{name}.log") for name in names]
            with psycopg.connect(pg.dsn, autocommit=True) as conn:
                while conn.execute("SELECT count(*) FROM events").fetchone()[0] < total:
                    if time.perf_counter() - started > 600:
                        raise RuntimeError("ingestion did not finish within 600 s")
                    time.sleep(0.02)
                first, last, stored, distinct, batches = conn.execute(
                    "SELECT min(received), max(received), count(*), count(DISTINCT id), count(DISTINCT received) "
                    "FROM events").fetchone()
            for c in running:
                c.stop()
        finally:
            broker.close()
    # `received` is each batch's commit-transaction start: the span covers all but the last batch.
    span = max((last - first).total_seconds(), 1e-3)
    return {"consumers": consumers, "batch_max": batch_max, "events": total, "stored": stored, "distinct": distinct,
            "publish_s": publish_s, "ingest_s": span, "batches": batches, "events_per_s": total / span}


# -- dashboard queries on a large table -------------------------------------------------------
FILL_EVENTS = """
INSERT INTO events (ts, id, site, device, service, seq, type, body)
SELECT ts, md5(g::text), 'site-' || (g %% %(sites)s), 'desk-' || (g %% %(devices)s), 'pager', g / %(devices)s + 1,
       (ARRAY['ticket_issued','ticket_called','ticket_served','rating'])[g %% 4 + 1],
       jsonb_build_object('id', md5(g::text), 'seq', g / %(devices)s + 1, 'ts', extract(epoch FROM ts),
                          'type', (ARRAY['ticket_issued','ticket_called','ticket_served','rating'])[g %% 4 + 1],
                          'ticket', 'A' || lpad((g / 4 %% 1000)::text, 3, '0'), 'queue', 'A')
FROM (SELECT g, %(end)s::timestamptz - (g * %(step)s) * interval '1 second' AS ts
      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g) s
"""

FILL_TICKETS = """
INSERT INTO tickets (site, device, ticket_key, day, queue, ticket, issued_at, called_at, done_at, no_show, rating)
SELECT site, device, day || ':' || n, day, queue, queue || lpad(n::text, 3, '0'), issued,
       CASE WHEN NOT no_show THEN issued + wait END,
       CASE WHEN NOT no_show THEN issued + wait + service END, no_show,
       CASE WHEN random() < 0.3 THEN 1 + floor(random() * 5)::int END
FROM (SELECT 'site-' || (g %% %(sites)s) AS site, 'desk-' || (g %% %(devices)s) AS device,
             (%(end)s::timestamptz - (g * %(step)s) * interval '1 second') AS issued,
             ((%(end)s::timestamptz - (g * %(step)s) * interval '1 second') AT TIME ZONE %(tz)s)::date AS day,
             (ARRAY['A','B','C'])[g %% 3 + 1] AS queue, g / %(devices)s %% 1000 AS n,
             random() * interval '40 minutes' AS wait, random() * interval '15 minutes' AS service,
             random() < 0.05 AS no_show
      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g) s
ON CONFLICT DO NOTHING
"""


def _fill(dsn: str, rows: int, days: int, tz: str) -> float:
    import datetime as dt

    import psycopg

    from edge.central import db

    started = time.perf_counter()
    end = dt.datetime.now(dt.timezone.utc)
    step = days * 86400 / rows
    with psycopg.connect(dsn, autocommit=True) as conn:
        db.migrate(conn)
        months = {db.month_start((end - dt.timedelta(days=d)).timestamp()) for d in range(days + 1)}
        db.ensure_partitions(conn, months, set())
        chunk = 500_000
        params = {"sites": SITES, "devices": SITES * DEVICES_PER_SITE, "end": end, "step": step, "tz": tz}
        for lo in range(0, rows, chunk):
            conn.execute(FILL_EVENTS, {**params, "lo": lo, "hi": min(rows, lo + chunk) - 1})
            _progress(f"  events {min(rows, lo + chunk):,}/{rows:,} ({time.perf_counter() - started:.0f} s)")
        tickets = rows // 4                  # issued, called, served, rated: four events per ticket
        tstep = days * 86400 / tickets
        for lo in range(0, tickets, chunk):
            conn.execute(FILL_TICKETS, {**params, "step": tstep, "lo": lo, "hi": min(tickets, lo + chunk) - 1})
        _progress(f"  tickets {tickets:,} ({time.perf_counter() - started:.0f} s)")
        from edge.central.analytics import DAILY_SELECT
        conn.execute(f"INSERT INTO queue_daily {DAILY_SELECT} GROUP BY day, site, queue")
        conn.execute("INSERT INTO devices (site, device, state, state_since, last_seen, version, services) "
                     "SELECT DISTINCT site, device, 'online', now(), now(), '1.0', '{\"pager\": \"ok\"}'::jsonb FROM tickets")
        conn.execute("ANALYZE")
    return time.perf_counter() - started


class _FakeCentral:
    """What the web handlers need, without a consumer (the query bench reads only)."""

    def __init__(self, dsn: str, tz: str):
        from zoneinfo import ZoneInfo

        from edge.central.auth import parse_staff
        from edge.central.web import AsyncDb
        self.db, self.tz = AsyncDb(dsn), ZoneInfo(tz)
        self.staff = parse_staff(f"{BENCH_TOKEN} viewer bench")

    def broker_ok(self) -> bool:
        return True

    def now(self) -> float:
        return time.time()

    def consumer_stats(self) -> dict:
        return {}


BENCH_TOKEN = "bench-viewer-token-0123456789"


async def _time_pages(dsn: str, tz: str, repeat: int) -> dict:
    import aiohttp
    from aiohttp import web

    from edge.central.web import make_app

    central = _FakeCentral(dsn, tz)
    runner = web.AppRunner(make_app(central), access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    pages = {"queue page (/queues)": "/queues", "queues API (/api/queues)": "/api/queues",
             "fleet page (/)": "/", "events API (100 of one device)": "/api/events?site=site-7&device=desk-7&limit=100",
             "devices API": "/api/devices"}
    results = {}
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {BENCH_TOKEN}"}) as session:
            for name, path in pages.items():
                times = []
                for i in range(repeat + 2):
                    t = time.perf_counter()
                    async with session.get(f"http://127.0.0.1:{port}{path}") as r:
                        await r.read()
                        assert r.status == 200, (path, r.status)
                    if i >= 2:          # the first two warm the cache and the connection
                        times.append((time.perf_counter() - t) * 1000)
                times.sort()
                results[name] = {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))]}
                _progress(f"  {name}: p95 {results[name]['p95_ms']:.1f} ms")
    finally:
        await runner.cleanup()
        await central.db.close()
    return results


def _baseline_from_events(dsn: str, tz: str, repeat: int = 3) -> float:
    """The day's per-site figures computed from the raw events table (no roll-up): ms, median."""
    import psycopg

    sql = """SELECT site, count(*) FILTER (WHERE type = 'ticket_issued') AS issued,
                    count(*) FILTER (WHERE type = 'ticket_served') AS served
             FROM events WHERE ts >= date_trunc('day', now() AT TIME ZONE %s) AT TIME ZONE %s
               AND type IN ('ticket_issued', 'ticket_called', 'ticket_served') GROUP BY site"""
    times = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")   # what a table without our indexes does
        for _ in range(repeat):
            t = time.perf_counter()
            conn.execute(sql, (tz, tz)).fetchall()
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def bench_queries(workdir: Path, rows: int, days: int, repeat: int, tz: str = "Asia/Ho_Chi_Minh") -> dict:
    from edge.central.testing import PgCluster

    with PgCluster(base_dir=str(workdir)) as pg:
        _progress(f"filling PostgreSQL with {rows:,} events over {days} days …")
        fill_s = _fill(pg.dsn, rows, days, tz)
        pages = asyncio.run(_time_pages(pg.dsn, tz, repeat))
        baseline = _baseline_from_events(pg.dsn, tz)
    return {"rows": rows, "days": days, "fill_s": fill_s, "pages": pages, "baseline_scan_ms": baseline}


def main(args) -> int:
    result: dict = {"targets": TARGETS}
    with tempfile.TemporaryDirectory(prefix="edge-bench-central-") as tmp:
        workdir = Path(tmp)
        if os.geteuid() == 0:
            shutil.chown(workdir, "postgres")
            os.chmod(workdir, 0o755)
        if not args.skip_ingest:
            runs = []
            _progress("ingestion: unbatched baseline (one transaction per event) …")
            runs.append(bench_ingest(workdir, min(args.events, 3000), 1, 1))
            for consumers in (1, 2):
                _progress(f"ingestion: {consumers} consumer(s), batches of up to 500 …")
                runs.append(bench_ingest(workdir, args.events, consumers, 500))
            result["ingest"] = runs
        if not args.skip_queries:
            result["queries"] = bench_queries(workdir, args.rows, args.days, args.repeat)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result)
    return 0


def _print_table(result: dict) -> None:
    if "ingest" in result:
        print(f"{'ingestion into PostgreSQL':<44} {'events':>8} {'events/s':>10} {'stored once':>12}")
        for r in result["ingest"]:
            label = "baseline: 1 consumer, 1 event per commit" if r["batch_max"] == 1 else \
                f"{r['consumers']} consumer(s), batches ≤ {r['batch_max']}"
            once = "yes" if r["stored"] == r["distinct"] == r["events"] else "NO"
            print(f"{label:<44} {r['events']:>8} {r['events_per_s']:>10.0f} {once:>12}")
        print(f"target: ≥ {TARGETS['ingest_events_per_s']} events/s with batching")
    if "queries" in result:
        q = result["queries"]
        print(f"\ndashboard on {q['rows']:,} events over {q['days']} days (filled in {q['fill_s']:.0f} s)")
        print(f"{'request':<44} {'p50 ms':>8} {'p95 ms':>8}")
        for name, t in q["pages"].items():
            print(f"{name:<44} {t['p50_ms']:>8.1f} {t['p95_ms']:>8.1f}")
        print(f"{'baseline: today from raw events, no index':<44} {q['baseline_scan_ms']:>8.1f}")
        print(f"target: queue page p95 ≤ {TARGETS['queue_page_p95_ms']} ms")
