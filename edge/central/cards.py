"""Pager cards running out as a stored alarm (`cards_low`), so the notifiers fire like for any
other alarm: opened when the cards left in a pager base's retained snapshot fall to the
threshold, cleared when they recover. Checked each periodic round of ingestion; the dashboard
reads the same thresholds (web.data) for its cards column.

The INSERT … ON CONFLICT DO NOTHING RETURNING on the open-alarms unique index claims each alarm,
so with several central instances only one of them opens (and notifies) it.
"""

from __future__ import annotations

import json

import psycopg

from edge.pager.cards import CARDS_LOW_FRACTION, CARDS_LOW_MIN, is_low  # noqa: F401  (the one rule, shared with the device)

KIND = "cards_low"


def sync_alarms(conn: psycopg.Connection) -> list[dict]:
    """Open `cards_low` where a pager base runs low, clear it where it recovered; the opened ones."""
    opened = []
    with conn.transaction():
        rows = conn.execute("SELECT site, device, snapshot->'cards_free', snapshot->'cards_out' FROM service_state "
                            "WHERE service = 'pager'").fetchall()
        for site, device, free, out in rows:
            if not isinstance(free, int) or isinstance(free, bool):
                continue                     # a snapshot without a card count says nothing
            if is_low(free, out):
                detail = {"cards_free": free, "cards_out": out if isinstance(out, int) else None}
                claimed = conn.execute(
                    "INSERT INTO alarms (site, device, service, kind, subject, opened_at, detail) "
                    "VALUES (%s, %s, 'pager', %s, '', now(), %s) "
                    "ON CONFLICT DO NOTHING RETURNING extract(epoch FROM opened_at)",
                    (site, device, KIND, json.dumps(detail))).fetchone()
                if claimed:
                    opened.append({"site": site, "device": device, "service": "pager", "kind": KIND,
                                   "subject": "", "ts": float(claimed[0]), "detail": detail})
            else:
                conn.execute("UPDATE alarms SET cleared_at = now() WHERE site = %s AND device = %s "
                             "AND service = 'pager' AND kind = %s AND cleared_at IS NULL", (site, device, KIND))
    return opened
