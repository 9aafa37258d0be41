"""Read queries behind the manager's views (counters, pager cards, compartment grid, events table).

Like `edge.central.queries`: each takes an open `psycopg.AsyncConnection`, returns plain dicts
with epoch seconds. `sites` (a set, or None for every site) limits what a staff member sees.
"""

from __future__ import annotations

import datetime as dt

from psycopg import AsyncConnection

from edge.central import cards
from edge.central.queries import _compartments, _rows



def _site_filter(sites, column: str = "site") -> tuple[str, tuple]:
    if sites is None:
        return "", ()
    return f" AND {column} = ANY(%s)", (sorted(sites),)


async def pager_offices(conn: AsyncConnection, day_start: float | None, sites=None) -> list[dict]:
    """Per pager base (site, device): counters (now serving, paused, next, served today, average
    service time), services with their Vietnamese names, and pager cards in use / left.
    `day_start` None skips the service times (the fleet page needs only the cards)."""
    where, params = _site_filter(sites)
    states = await _rows(conn, f"SELECT site, device, ts, snapshot FROM service_state WHERE service = 'pager'{where} "
                               "ORDER BY site, device", params)
    times = [] if day_start is None else await _rows(conn, f"""
        SELECT c.site, c.device, c.body->>'counter' AS counter, count(s.id) AS served,
               avg(extract(epoch FROM s.ts - c.ts)) AS service_avg_s
        FROM events c LEFT JOIN events s ON s.site = c.site AND s.device = c.device AND s.service = 'pager'
             AND s.type IN ('ticket_served', 'ticket_done') AND s.body->>'ticket' = c.body->>'ticket' AND s.ts >= c.ts
             AND s.ts >= %s
        WHERE c.service = 'pager' AND c.type = 'ticket_called' AND c.ts >= %s{where.replace('site', 'c.site')}
        GROUP BY 1, 2, 3""", (_ts(day_start), _ts(day_start), *params))
    by_counter = {(r["site"], r["device"], r["counter"]): r for r in times}
    out = []
    for row in states:
        snap = row["snapshot"] if isinstance(row["snapshot"], dict) else {}
        services = snap.get("services") if isinstance(snap.get("services"), dict) else {}
        counters = []
        for name, c in sorted((snap.get("counters") or {}).items(), key=lambda kv: _natural(kv[0])):
            if not isinstance(c, dict):
                continue
            stats = by_counter.get((row["site"], row["device"], str(name)), {})
            service = services.get(c.get("service")) or {}
            counters.append({"name": str(name), "paused": bool(c.get("paused")), "ticket": c.get("ticket"),
                             "service": c.get("service"), "service_name": service.get("name") or c.get("service"),
                             "service_name_en": service.get("name_en") or service.get("name") or c.get("service"),
                             "called_at": c.get("called_at"), "served": stats.get("served", 0),
                             "service_avg_s": stats.get("service_avg_s"),
                             "next": _next_for(services, c.get("service"))})
        cards_out, cards_free = snap.get("cards_out"), snap.get("cards_free")
        total = (cards_out or 0) + (cards_free or 0)
        low = isinstance(cards_free, int) and cards.is_low(cards_free, cards_out)    # the `cards_low` alarm's rule
        out.append({"site": row["site"], "device": row["device"], "updated": row["ts"], "counters": counters,
                    "services": [{"key": k, **v} for k, v in services.items() if isinstance(v, dict)],
                    "cards_out": cards_out, "cards_free": cards_free, "cards_total": total,
                    "cards_low": low, "cards_none": cards_free is not None and cards_free <= 0})
    return out


def _next_for(services: dict, service: str | None) -> list:
    entry = services.get(service) if service else None
    return list(entry.get("next") or [])[:3] if isinstance(entry, dict) else []


def _natural(name: str):
    return (0, int(name), "") if str(name).isdigit() else (1, 0, str(name))


def queue_names(offices: list[dict]) -> dict:
    """(site, queue key) and queue key alone -> (Vietnamese name, English name), from the pager
    bases' own service catalogue (their retained snapshots)."""
    names = {}
    for office in offices:
        for s in office["services"]:
            pair = (s.get("name") or s["key"], s.get("name_en") or s.get("name") or s["key"])
            names[(office["site"], s["key"])] = pair
            names.setdefault(s["key"], pair)
    return names


async def locker_grids(conn: AsyncConnection, now: float, sites=None) -> list[dict]:
    """Per locker: every compartment as free / waiting / overdue / fault, with its deadline."""
    where, params = _site_filter(sites)
    states = await _rows(conn, f"SELECT site, device, ts, snapshot FROM service_state "
                               f"WHERE service IN ('locker', 'lockers'){where} ORDER BY site, device", params)
    results = await _rows(conn, f"SELECT site, device, compartment, deadline FROM locker_results "
                                f"WHERE closed_at IS NULL{where}", params)
    alarms = await _rows(conn, f"SELECT site, device, kind, subject FROM alarms WHERE cleared_at IS NULL{where}", params)
    deadlines = {(r["site"], r["device"], str(r["compartment"])): r["deadline"] for r in results}
    faults: dict = {}
    for a in alarms:
        if a["subject"].startswith("compartment:"):
            faults.setdefault((a["site"], a["device"], a["subject"].split(":", 1)[1]), []).append(a["kind"])
    out = []
    for row in states:
        cells = []
        for c in _compartments(row["snapshot"] if isinstance(row["snapshot"], dict) else {}):
            name = str(c.get("name", ""))
            key = (row["site"], row["device"], name)
            deadline = deadlines.get(key)
            cells.append({"name": name, "size": c.get("size") or "", "door_open": c.get("door") == "open",
                          "deadline": deadline, "alarms": faults.get(key, []),
                          "status": _cell_status(c, deadline, faults.get(key), now)})
        cells.sort(key=lambda cell: _natural(cell["name"]))
        counts = {s: sum(1 for c in cells if c["status"] == s) for s in ("free", "waiting", "overdue", "fault")}
        out.append({"site": row["site"], "device": row["device"], "updated": row["ts"], "cells": cells, "counts": counts})
    return out


def _cell_status(c: dict, deadline, alarms, now: float) -> str:
    state = c.get("state")
    if state == "maintenance" or alarms:
        return "fault"
    if state == "expired" or (deadline is not None and deadline < now and state != "free"):
        return "overdue"
    if state in ("occupied", "opening") or deadline is not None:
        return "waiting"
    return "free"


async def events(conn: AsyncConnection, *, sites=None, site=None, device=None, service=None, type=None,
                 day: dt.date | None = None, tz=None, limit: int = 200) -> list[dict]:
    """Stored events, newest first, filtered; each the device's event JSON plus site/device/service."""
    clauses, params = ["true"], []
    for column, value in (("site", site), ("device", device), ("service", service), ("type", type)):
        if value:
            clauses.append(f"{column} = %s")
            params.append(value)
    if sites is not None:
        clauses.append("site = ANY(%s)")
        params.append(sorted(sites))
    if day is not None:
        start = dt.datetime.combine(day, dt.time(), tz)
        clauses.append("ts >= %s AND ts < %s")
        params += [start, start + dt.timedelta(days=1)]
    rows = await _rows(conn, f"SELECT site, device, service, body FROM events WHERE {' AND '.join(clauses)} "
                             "ORDER BY ts DESC, seq DESC LIMIT %s", (*params, limit))
    return [{**r["body"], "site": r["site"], "device": r["device"], "service": r["service"]} for r in rows]


def _ts(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
