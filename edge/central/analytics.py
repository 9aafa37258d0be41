"""What the dashboard derives from device events: tickets (queues), alarms (lockers, pager).

Event types are the ones the device services emit; each table below lists the accepted names so
that a renamed event is a one-line change here. Runs inside the ingest transaction, only on
events stored for the first time, so each ticket step and each alarm is counted once.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import psycopg

from edge.central.topics import TS_MAX, TS_MIN

TICKET_ISSUED = {"ticket_issued", "issued", "ticket_created"}
TICKET_CALLED = {"ticket_called", "called"}
TICKET_DONE = {"ticket_served", "ticket_done", "served", "done", "ticket_completed", "ticket_finished"}
TICKET_NO_SHOW = {"ticket_no_show", "no_show", "ticket_skipped", "skipped"}
TICKET_RATED = {"rating", "ticket_rated", "rated", "feedback"}
# Alarm kinds that arrive as their own event type (locker §5, pager transmitter) ...
ALARM_TYPES = {"left_open", "forced_open", "sensor_fault", "board_offline", "transmitter_offline",
               "door_left_open", "door_forced"}
# ... or as a generic `alarm` event naming the kind, cleared by `alarm_cleared` or these events.
CLEARED_BY = {"door_closed": {"left_open", "door_left_open", "forced_open", "door_forced"},
              "board_online": {"board_offline"}, "transmitter_online": {"transmitter_offline"}}


def _subject(body: dict) -> str:
    """Where the alarm is, in the locker's own `target` form (`compartment:3`, `board:1`)."""
    if isinstance(body.get("target"), str):
        return body["target"]
    for key in ("compartment", "board", "lock", "door", "port", "counter"):
        if body.get(key) is not None:
            return f"{key}:{body[key]}"
    return ""


def _ts(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.timezone.utc)


def apply_events(conn: psycopg.Connection, events: list, tz: ZoneInfo) -> list[dict]:
    """Update tickets/alarms for newly stored events; return the alarms opened."""
    opened: list[dict] = []
    tickets: dict = {}
    for e in sorted(events, key=lambda e: (e.site, e.device, e.seq)):
        if e.type in TICKET_TYPES:
            _merge_ticket(tickets, e, tz)
        elif e.type in LOCKER_RESULT_TYPES and e.body.get("receipt"):
            _locker_result(conn, e)
        elif e.type == "alarm" or e.type in ALARM_TYPES:
            alarm = _open_alarm(conn, e)
            if alarm:
                opened.append(alarm)
        elif e.type == "alarm_cleared" or e.type in CLEARED_BY:
            _clear_alarm(conn, e)
    if tickets:
        _upsert_tickets(conn, tickets)
    return opened


TICKET_TYPES = TICKET_ISSUED | TICKET_CALLED | TICKET_DONE | TICKET_NO_SHOW | TICKET_RATED
LOCKER_LOADED = {"loaded", "result_loaded", "deposited"}
LOCKER_CLOSED = {"collected", "result_collected", "picked_up", "reclaimed", "expired"}
LOCKER_RESULT_TYPES = LOCKER_LOADED | LOCKER_CLOSED


def _locker_result(conn: psycopg.Connection, e) -> None:
    """A result put in a locker, or taken out (collected by the citizen, reclaimed, expired)."""
    body, at = e.body, _ts(e.ts)
    deadline = body.get("deadline")
    sane = isinstance(deadline, (int, float)) and not isinstance(deadline, bool) and TS_MIN <= deadline <= TS_MAX
    deadline = _ts(deadline) if sane else None
    loaded = e.type in LOCKER_LOADED
    # `expired` only marks it overdue (staff still have to reclaim it): it stays open.
    closes = e.type in LOCKER_CLOSED and e.type != "expired"
    conn.execute(
        "INSERT INTO locker_results AS r (site, device, receipt, compartment, loaded_at, deadline, closed_at, outcome) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (site, device, receipt) DO UPDATE SET "
        "compartment = CASE WHEN EXCLUDED.loaded_at IS NOT NULL OR r.compartment = '' THEN EXCLUDED.compartment ELSE r.compartment END, "
        "loaded_at = GREATEST(r.loaded_at, EXCLUDED.loaded_at), deadline = COALESCE(EXCLUDED.deadline, r.deadline), "
        # a new loading of the same receipt (after a reclaim) reopens it; otherwise keep the latest close
        "closed_at = CASE WHEN EXCLUDED.loaded_at > COALESCE(r.closed_at, '-infinity') THEN NULL "
        "                 ELSE GREATEST(r.closed_at, EXCLUDED.closed_at) END, "
        "outcome = CASE WHEN EXCLUDED.loaded_at > COALESCE(r.closed_at, '-infinity') THEN NULL "
        "               ELSE COALESCE(EXCLUDED.outcome, r.outcome) END",
        (e.site, e.device, str(body["receipt"]), str(body.get("compartment", "")), at if loaded else None,
         deadline, at if closes else None, e.type if e.type in LOCKER_CLOSED else None),
    )


def _merge_ticket(tickets: dict, e, tz: ZoneInfo) -> None:
    """Fold one ticket event into this batch's row for that ticket (one row per key per statement)."""
    body = e.body
    ticket = body.get("ticket") or body.get("number") or body.get("ticket_no")
    if ticket is None and not body.get("ticket_id"):
        return
    day = dt.datetime.fromtimestamp(e.ts, tz).date()
    key = (e.site, e.device, str(body.get("ticket_id") or f"{day.isoformat()}:{ticket}"))
    row = tickets.setdefault(key, {"day": day, "queue": "", "ticket": "", "issued_at": None, "called_at": None,
                                   "done_at": None, "no_show": False, "rating": None})
    queue = str(body.get("queue") or body.get("procedure") or body.get("line") or "")
    row["queue"] = row["queue"] or queue
    row["ticket"] = row["ticket"] or ("" if ticket is None else str(ticket))
    at = _ts(e.ts)
    if e.type in TICKET_ISSUED:
        row["issued_at"] = min(filter(None, (row["issued_at"], at)))
        row["day"] = day
    elif e.type in TICKET_CALLED:
        row["called_at"] = min(filter(None, (row["called_at"], at)))
    elif e.type in TICKET_DONE:
        row["done_at"] = max(filter(None, (row["done_at"], at)))
    elif e.type in TICKET_NO_SHOW:
        row["no_show"] = True
    else:
        score = body.get("rating", body.get("score"))
        if not isinstance(score, bool) and isinstance(score, int) and 1 <= score <= 5:
            row["rating"] = score


def _upsert_tickets(conn: psycopg.Connection, tickets: dict) -> None:
    # Events of one ticket may be committed in any order by two consumers: keep the earliest
    # issue and call, the latest completion, and never erase a value already known.
    keys = sorted(tickets)
    rows = [tickets[k] for k in keys]
    conn.execute(
        "INSERT INTO tickets AS t (site, device, ticket_key, day, queue, ticket, issued_at, called_at, done_at, "
        "no_show, rating) SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::date[], %b::text[], "
        "%b::text[], %b::timestamptz[], %b::timestamptz[], %b::timestamptz[], %b::bool[], %b::smallint[]) "
        "ON CONFLICT (site, device, ticket_key) DO UPDATE SET "
        "queue = CASE WHEN t.queue = '' THEN EXCLUDED.queue ELSE t.queue END, "
        "ticket = CASE WHEN t.ticket = '' THEN EXCLUDED.ticket ELSE t.ticket END, "
        "day = CASE WHEN EXCLUDED.issued_at IS NOT NULL THEN EXCLUDED.day ELSE t.day END, "
        "issued_at = LEAST(t.issued_at, EXCLUDED.issued_at), called_at = LEAST(t.called_at, EXCLUDED.called_at), "
        "done_at = GREATEST(t.done_at, EXCLUDED.done_at), no_show = t.no_show OR EXCLUDED.no_show, "
        "rating = COALESCE(EXCLUDED.rating, t.rating)",
        ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [r["day"] for r in rows],
         [r["queue"] for r in rows], [r["ticket"] for r in rows], [r["issued_at"] for r in rows],
         [r["called_at"] for r in rows], [r["done_at"] for r in rows], [r["no_show"] for r in rows],
         [r["rating"] for r in rows]),
    )
    dirty = sorted({(r["day"], k[0]) for k, r in zip(keys, rows)})
    conn.execute("INSERT INTO rollup_dirty (day, site) SELECT * FROM unnest(%b::date[], %b::text[]) "
                 "ON CONFLICT DO NOTHING", ([d for d, _ in dirty], [s for _, s in dirty]))


def _alarm_kind(e) -> str:
    if e.type in ("alarm", "alarm_cleared"):
        return str(e.body.get("alarm") or e.body.get("kind") or "alarm")
    return e.type


def _open_alarm(conn: psycopg.Connection, e) -> dict | None:
    kind, subject = _alarm_kind(e), _subject(e.body)
    detail = {k: v for k, v in e.body.items() if k not in ("id", "seq", "ts", "type")}
    row = conn.execute(
        "INSERT INTO alarms (site, device, service, kind, subject, opened_at, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (site, device, service, kind, subject) WHERE cleared_at IS NULL DO NOTHING RETURNING id",
        (e.site, e.device, e.service, kind, subject, _ts(e.ts), json.dumps(detail, ensure_ascii=False)),
    ).fetchone()
    if row is None:
        return None
    return {"id": row[0], "site": e.site, "device": e.device, "service": e.service, "kind": kind,
            "subject": subject, "ts": e.ts, "detail": detail}


def _clear_alarm(conn: psycopg.Connection, e) -> None:
    subject = _subject(e.body)
    kinds = sorted(CLEARED_BY.get(e.type, set())) or [_alarm_kind(e) if e.body.get("alarm") or e.body.get("kind") else None]
    for kind in kinds:
        conn.execute(
            "UPDATE alarms SET cleared_at = %s WHERE site = %s AND device = %s AND service = %s "
            "AND (%s::text IS NULL OR kind = %s) AND subject = %s AND cleared_at IS NULL AND opened_at <= %s",
            (_ts(e.ts), e.site, e.device, e.service, kind, kind, subject, _ts(e.ts)),
        )


def refresh_rollups(conn: psycopg.Connection, *, limit: int = 200) -> int:
    """Recompute `queue_daily` for the (day, site) pairs touched since the last run."""
    with conn.transaction():
        pairs = conn.execute(
            "DELETE FROM rollup_dirty WHERE ctid IN (SELECT ctid FROM rollup_dirty LIMIT %s "
            "FOR UPDATE SKIP LOCKED) RETURNING day, site", (limit,)).fetchall()
        for day, site in pairs:
            conn.execute("DELETE FROM queue_daily WHERE day = %s AND site = %s", (day, site))
            conn.execute(f"INSERT INTO queue_daily {DAILY_SELECT} WHERE day = %s AND site = %s GROUP BY day, site, queue",
                         (day, site))
    return len(pairs)


DAILY_SELECT = """
SELECT day, site, queue,
       count(issued_at)::int AS issued,
       count(done_at)::int AS served,
       count(*) FILTER (WHERE no_show)::int AS no_shows,
       avg(extract(epoch FROM called_at - issued_at)) AS wait_avg_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM called_at - issued_at)) AS wait_p90_s,
       avg(extract(epoch FROM done_at - called_at)) AS service_avg_s,
       avg(rating) AS rating_avg,
       count(rating)::int AS ratings
FROM tickets"""
