"""Read queries behind the JSON API and the dashboard pages (psycopg 3 async).

Every function takes an open `psycopg.AsyncConnection` and returns plain lists/dicts with epoch
seconds for times, so the same data feeds JSON, CSV and the HTML pages.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from edge.central import recovery
from edge.central.analytics import DAILY_SELECT

EXPIRY_SOON_S = 24 * 3600


def _epoch(value):
    """JSON-friendly: times as epoch seconds, numerics as float, dates as ISO text."""
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


async def _rows(conn: AsyncConnection, sql: str, params=()) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return [{k: _epoch(v) for k, v in row.items()} for row in await cur.fetchall()]


async def devices(conn: AsyncConnection) -> list[dict]:
    """The §3 device list, plus since-when, open alarms and missing seq numbers."""
    rows = await _rows(conn, """
        SELECT d.site, d.device, CASE WHEN d.state = 'online' THEN 'online' ELSE 'offline' END AS state,
               GREATEST(d.last_seen, s.last_event) AS last_seen, d.version, d.services, d.state_since AS since,
               GREATEST(COALESCE(s.seq_max - s.seq_min + 1 - s.seq_stored, 0), 0) AS missing,
               (SELECT count(*) FROM alarms a WHERE a.site = d.site AND a.device = d.device
                  AND a.cleared_at IS NULL) AS alarms
        FROM devices d LEFT JOIN (
            SELECT site, device, min(seq_min) AS seq_min, max(seq_max) AS seq_max, sum(seq_stored) AS seq_stored,
                   max(last_event) AS last_event
            FROM device_seq GROUP BY site, device) s ON s.site = d.site AND s.device = d.device
        ORDER BY d.site, d.device""")
    return rows


async def events(conn: AsyncConnection, site: str, device: str, limit: int) -> list[dict]:
    """Newest first by the device's own `seq` (its clock may jump; its sequence does not)."""
    rows = await _rows(conn, """
        SELECT service, body FROM events WHERE site = %s AND device = %s
        ORDER BY seq DESC LIMIT %s""", (site, device, limit))
    return [{**row["body"], "service": row["service"]} for row in rows]


async def gaps(conn: AsyncConnection, site: str, device: str, limit: int = 100) -> list[dict]:
    """Missing seq ranges of one device (from its stored events), with their recovery state:
    `requested_at` (last resend request overlapping it, or None), `requests`, `lost` (seqs the
    device said it no longer holds) and `unrecoverable` (all of them lost: never asked again)."""
    rows = await _rows(conn, """
        SELECT seq + 1 AS first_missing, next_seq - 1 AS last_missing FROM (
            SELECT seq, lead(seq) OVER (ORDER BY seq) AS next_seq FROM events
            WHERE site = %s AND device = %s) s
        WHERE next_seq > seq + 1 ORDER BY seq DESC LIMIT %s""", (site, device, limit))
    if not rows:
        return rows
    lost = [(r["first_seq"], r["last_seq"]) for r in await _rows(
        conn, "SELECT first_seq, last_seq FROM seq_lost WHERE site = %s AND device = %s", (site, device))]
    asked = await _rows(conn, """
        SELECT sent_at, (args->>'from_seq')::bigint AS a, (args->>'to_seq')::bigint AS b FROM commands
        WHERE site = %s AND device = %s AND service = 'device' AND type = 'resend'
        ORDER BY sent_at DESC LIMIT 1000""", (site, device))
    for row in rows:
        gap = (row["first_missing"], row["last_missing"])
        hits = [r["sent_at"] for r in asked if r["a"] <= gap[1] and r["b"] >= gap[0]]
        row["requested_at"] = max(hits) if hits else None
        row["requests"] = len(hits)
        row["lost"] = recovery.overlap(gap, lost)
        row["unrecoverable"] = row["lost"] == gap[1] - gap[0] + 1
    return rows


async def alarms(conn: AsyncConnection, *, open_only: bool = True, limit: int = 500) -> list[dict]:
    where = "WHERE cleared_at IS NULL" if open_only else ""
    return await _rows(conn, f"""
        SELECT id, site, device, service, kind, subject, opened_at, cleared_at, detail
        FROM alarms {where} ORDER BY opened_at DESC LIMIT %s""", (limit,))


def local_day(tz: ZoneInfo, now: float | None = None) -> dt.date:
    return dt.datetime.fromtimestamp(now if now is not None else dt.datetime.now().timestamp(), tz).date()


async def queue_summary(conn: AsyncConnection, day: dt.date, site: str | None = None) -> list[dict]:
    """Per site and queue for one day: tickets, waiting now, avg/p90 wait, service time, no-shows, ratings."""
    site_sql = "AND site = %s" if site else ""
    params = (day, site) if site else (day,)
    rows = await _rows(conn, f"""
        SELECT q.*, w.waiting FROM ({DAILY_SELECT} WHERE day = %s {site_sql} GROUP BY day, site, queue) q
        LEFT JOIN (SELECT site, queue, count(*) AS waiting FROM tickets
                   WHERE day = %s {site_sql} AND issued_at IS NOT NULL AND called_at IS NULL
                     AND done_at IS NULL AND NOT no_show GROUP BY site, queue) w
        ON w.site = q.site AND w.queue = q.queue ORDER BY q.site, q.queue""", params + params)
    for row in rows:
        row["day"] = str(row["day"])
        row["waiting"] = row["waiting"] or 0
    return rows


async def queue_by_hour(conn: AsyncConnection, day: dt.date, tz: ZoneInfo, site: str | None = None) -> list[dict]:
    """Tickets issued and average wait per local hour of one day (24 rows)."""
    site_sql = "AND site = %s" if site else ""
    params = (tz.key, day, site) if site else (tz.key, day)
    rows = await _rows(conn, f"""
        SELECT extract(hour FROM issued_at AT TIME ZONE %s)::int AS hour, count(*) AS tickets,
               avg(extract(epoch FROM called_at - issued_at)) AS wait_avg_s
        FROM tickets WHERE day = %s {site_sql} AND issued_at IS NOT NULL GROUP BY 1 ORDER BY 1""", params)
    by_hour = {row["hour"]: row for row in rows}
    return [{"hour": h, "tickets": by_hour.get(h, {}).get("tickets", 0),
             "wait_avg_s": by_hour.get(h, {}).get("wait_avg_s")} for h in range(24)]


async def queue_days(conn: AsyncConnection, last_day: dt.date, days: int = 30, site: str | None = None) -> list[dict]:
    """Tickets and average wait per day for the `days` days up to `last_day`: the roll-up table
    for the days before, and `last_day` itself live from the tickets, like `queue_summary` (the
    roll-up lags ingestion by up to one periodic round, so today's bar read 13 where the table
    beside it said 15)."""
    site_sql = "AND site = %s" if site else ""
    first = last_day - dt.timedelta(days=days - 1)
    params = (first, last_day, site) if site else (first, last_day)
    live = (last_day, site) if site else (last_day,)
    per_day = """SELECT day, sum(issued)::int AS tickets, sum(no_shows)::int AS no_shows,
               sum(wait_avg_s * issued) / NULLIF(sum(issued) FILTER (WHERE wait_avg_s IS NOT NULL), 0) AS wait_avg_s"""
    rows = await _rows(conn, f"""
        {per_day} FROM queue_daily WHERE day >= %s AND day < %s {site_sql} GROUP BY day
        UNION ALL
        {per_day} FROM ({DAILY_SELECT} WHERE day = %s {site_sql} GROUP BY day, site, queue) live GROUP BY day
        ORDER BY day""", params + live)
    by_day = {row["day"]: row for row in rows}
    out = []
    for i in range(days):
        d = first + dt.timedelta(days=i)
        row = by_day.get(d.isoformat(), {"tickets": 0, "no_shows": 0, "wait_avg_s": None})
        out.append({"day": d.isoformat(), "tickets": row["tickets"], "no_shows": row["no_shows"],
                    "wait_avg_s": row["wait_avg_s"]})
    return out


def _compartments(snapshot: dict) -> list[dict]:
    comps = snapshot.get("compartments") or snapshot.get("doors") or snapshot.get("locks") or []
    if isinstance(comps, dict):
        comps = [{"name": k, **(v if isinstance(v, dict) else {"state": v})} for k, v in comps.items()]
    return [c for c in comps if isinstance(c, dict)]


def _expiry(c: dict):
    value = c.get("expires_at", c.get("expires"))
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


async def lockers(conn: AsyncConnection, tz: ZoneInfo, now: float) -> list[dict]:
    """Per locker device: compartments, occupied, results waiting, nearing expiry, collected overnight.

    Occupancy and doors come from the locker's retained snapshot; results waiting, deadlines and
    overnight collections from `locker_results` (kept by ingestion from the locker's events)."""
    states = await _rows(conn, """
        SELECT site, device, service, ts, snapshot FROM service_state
        WHERE service IN ('locker', 'lockers') ORDER BY site, device""")
    morning = dt.datetime.fromtimestamp(now, tz).replace(hour=7, minute=30, second=0, microsecond=0)
    if morning.timestamp() > now:
        morning -= dt.timedelta(days=1)
    evening = (morning - dt.timedelta(days=1)).replace(hour=17, minute=0)
    results = {(r["site"], r["device"]): r for r in await _rows(conn, """
        SELECT site, device,
               count(*) FILTER (WHERE closed_at IS NULL) AS waiting,
               count(*) FILTER (WHERE closed_at IS NULL AND deadline < %s) AS expiring,
               count(*) FILTER (WHERE outcome IN ('collected', 'result_collected', 'picked_up')
                                AND closed_at >= %s AND closed_at < %s) AS collected
        FROM locker_results WHERE closed_at IS NULL OR closed_at >= %s GROUP BY site, device""",
        (dt.datetime.fromtimestamp(now + EXPIRY_SOON_S, dt.timezone.utc), evening, morning, evening))}
    out = []
    for row in states:
        comps = _compartments(row["snapshot"])
        # The locker snapshot: compartments {n: {state: free|occupied|opening|expired|maintenance,
        # door, occupied (sensor)}}; `occupied` state means a result waits for its citizen.
        waiting = [c for c in comps if c.get("state") in ("occupied", "opening") or c.get("result") or c.get("ref")]
        occupied = [c for c in comps if c.get("occupied") is True or c.get("state") in ("occupied", "opening", "expired")
                    or c in waiting]
        soon = [c for c in comps if c.get("state") == "expired"
                or (c in waiting and _expiry(c) is not None and _expiry(c) - now < EXPIRY_SOON_S)]
        open_doors = [c for c in comps if c.get("door") == "open" or c.get("open") is True]
        known = results.get((row["site"], row["device"]), {})
        out.append({"site": row["site"], "device": row["device"], "compartments": len(comps),
                    "occupied": len(occupied), "waiting": known.get("waiting", len(waiting)),
                    "expiring": known.get("expiring", len(soon)), "open_doors": len(open_doors),
                    "collected_overnight": known.get("collected", 0), "updated": row["ts"]})
    return out


async def recent_commands(conn: AsyncConnection, limit: int = 50) -> list[dict]:
    """The central audit of remote commands, newest first."""
    return await _rows(conn, """
        SELECT id, site, device, service, type, args, actor, sent_at, status, result, result_at
        FROM commands ORDER BY sent_at DESC LIMIT %s""", (limit,))
