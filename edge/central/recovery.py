"""Gap recovery: ask an online device to resend the seq ranges central is missing.

A round (every `every_s`, on the consumer's writer thread):

1. candidates: online devices with more seqs missing (`device_seq` sums) than they reported
   lost (`seq_lost`), whose last request is older than `retry_s`;
2. per candidate: its gaps (window query over its recent events) whose closing event arrived
   more than `min_age_s` ago (with several instances a missing seq may only be sitting in
   another instance's uncommitted batch), minus the ranges it reported lost, split into requests
   of at most 10,000 seqs (the device's limit), oldest first, at most `max_requests` per round;
3. claim the device with `UPDATE devices SET resend_at = now() WHERE … resend_at IS NULL or
   older than retry_s RETURNING`: with several instances only the one that wins asks;
4. record each request in `commands` (the central audit, actor `central:gap-recovery`) and
   publish the unsigned `resend` on `…/device/cmd` (it moves no hardware), QoS 1.

The device queues the events again (same id/seq: stored once, the gap closes through the normal
ingest path) and answers on `…/device/cmd/result`; `record_result` stores the answer on the
command row and its `missing` ranges in `seq_lost`: those are never asked for again.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Callable

import psycopg

from edge.central.topics import PREFIX, CommandResult

log = logging.getLogger(__name__)

MAX_RESEND = 10_000            # the device refuses larger ranges (edge.device.MAX_RESEND)
ACTOR = "central:gap-recovery"

Range = tuple[int, int]


@dataclass(frozen=True)
class RecoverySettings:
    every_s: float = 30.0          # how often a round looks for devices to ask
    retry_s: float = 300.0         # per device: at most one round of requests this often
    min_age_s: float = 10.0        # a gap younger than this may still be in flight
    max_requests: int = 10         # per device and round (each ≤ MAX_RESEND seqs)
    lookback_seqs: int = 1_000_000  # only gaps among the device's newest seqs (its outbox keeps ~7 days)


# -- ranges (pure) -----------------------------------------------------------------------------

def merge(ranges) -> list[Range]:
    """Sorted, overlapping or touching ranges joined: [(5, 7), (1, 2), (3, 4)] -> [(1, 7)]."""
    out: list[list[int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in ranges):
        if out and a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def subtract(ranges, holes) -> list[Range]:
    """The parts of `ranges` not in `holes`: [(1, 10)] - [(3, 4)] -> [(1, 2), (5, 10)]."""
    holes = merge(holes)
    out: list[Range] = []
    for a, b in merge(ranges):
        for h1, h2 in holes:
            if h2 < a or h1 > b:
                continue
            if h1 > a:
                out.append((a, h1 - 1))
            a = max(a, h2 + 1)
            if a > b:
                break
        if a <= b:
            out.append((a, b))
    return out


def chunk(ranges, size: int = MAX_RESEND) -> list[Range]:
    """Split ranges into pieces of at most `size` seqs."""
    out: list[Range] = []
    for a, b in ranges:
        while a <= b:
            out.append((a, min(b, a + size - 1)))
            a += size
    return out


def overlap(a: Range, ranges) -> int:
    """How many seqs of `a` the (merged) `ranges` cover."""
    return sum(max(0, min(a[1], b) - max(a[0], f) + 1) for f, b in merge(ranges))


# -- one round ---------------------------------------------------------------------------------

CANDIDATES = """
    SELECT d.site, d.device, s.seq_max FROM devices d
    JOIN (SELECT site, device, min(seq_min) AS seq_min, max(seq_max) AS seq_max, sum(seq_stored) AS seq_stored
          FROM device_seq GROUP BY site, device) s ON s.site = d.site AND s.device = d.device
    LEFT JOIN (SELECT site, device, sum(last_seq - first_seq + 1) AS lost
               FROM seq_lost GROUP BY site, device) l ON l.site = d.site AND l.device = d.device
    WHERE d.state = 'online' AND s.seq_max - s.seq_min + 1 - s.seq_stored > COALESCE(l.lost, 0)
      AND (d.resend_at IS NULL OR d.resend_at < now() - make_interval(secs => %s))
    ORDER BY d.site, d.device"""

GAPS = """
    SELECT seq + 1, next_seq - 1 FROM (
        SELECT seq, lead(seq) OVER w AS next_seq, lead(received) OVER w AS next_received
        FROM events WHERE site = %s AND device = %s AND seq >= %s WINDOW w AS (ORDER BY seq)) s
    WHERE next_seq > seq + 1 AND next_received < now() - make_interval(secs => %s)
    ORDER BY seq LIMIT 10000"""


def lost_ranges(conn: psycopg.Connection, site: str, device: str) -> list[Range]:
    rows = conn.execute("SELECT first_seq, last_seq FROM seq_lost WHERE site = %s AND device = %s",
                        (site, device)).fetchall()
    return merge(rows)


def wanted(conn: psycopg.Connection, site: str, device: str, seq_max: int, s: RecoverySettings) -> list[Range]:
    """The ranges to ask this device for now (oldest first, ≤ max_requests of ≤ MAX_RESEND)."""
    gaps = conn.execute(GAPS, (site, device, max(0, seq_max - s.lookback_seqs), s.min_age_s)).fetchall()
    return chunk(subtract(gaps, lost_ranges(conn, site, device)))[: s.max_requests]


def request_topic(site: str, device: str) -> str:
    return f"{PREFIX}{site}/{device}/device/cmd"


def run_round(conn: psycopg.Connection, publish: Callable[[str, str], bool], s: RecoverySettings,
              *, now: Callable[[], float]) -> list[dict]:
    """Ask every device that needs it; return the commands published (for logs and tests)."""
    # A "lost" range of which a seq arrived after all (e.g. from a late redelivery) is no longer
    # known to be lost: forget it, so the candidates' sum stays true; the device tells again.
    conn.execute("DELETE FROM seq_lost l WHERE EXISTS (SELECT 1 FROM events e WHERE e.site = l.site "
                 "AND e.device = l.device AND e.seq BETWEEN l.first_seq AND l.last_seq)")
    sent = []
    for site, device, seq_max in conn.execute(CANDIDATES, (s.retry_s,)).fetchall():
        with conn.transaction():
            ranges = wanted(conn, site, device, seq_max, s)
            if not ranges:
                continue     # only young gaps (maybe in flight): look again next round
            claimed = conn.execute(
                "UPDATE devices SET resend_at = now() WHERE site = %s AND device = %s AND state = 'online' "
                "AND (resend_at IS NULL OR resend_at < now() - make_interval(secs => %s)) RETURNING 1",
                (site, device, s.retry_s)).fetchone()
            if not claimed:
                continue     # another instance asked a moment ago
            commands = [{"id": f"resend-{uuid.uuid4().hex[:20]}", "type": "resend",
                         "args": {"from_seq": a, "to_seq": b}, "ts": now()} for a, b in ranges]
            for cmd in commands:
                conn.execute(
                    "INSERT INTO commands (id, site, device, service, type, args, actor) "
                    "VALUES (%s, %s, %s, 'device', 'resend', %s, %s)",
                    (cmd["id"], site, device, json.dumps(cmd["args"]), ACTOR))
        for cmd in commands:   # after the commit: a crash in between only delays to the next retry
            if publish(request_topic(site, device), json.dumps(cmd)):
                sent.append({"site": site, "device": device, **cmd})
        log.info("central: asked %s/%s to resend %s", site, device,
                 ", ".join(f"{a}..{b}" for a, b in ranges))
    return sent


# -- the device's answer -----------------------------------------------------------------------

def record_result(conn: psycopg.Connection, r: CommandResult) -> None:
    """Store a `device/cmd/result` on its command row; a resend's `missing` ranges become lost.

    Called inside the ingest transaction; a result for a command we did not send is ignored."""
    row = conn.execute(
        "UPDATE commands SET result = %s, result_at = now(), status = %s WHERE id = %s AND site = %s "
        "AND device = %s AND service = %s AND result IS NULL RETURNING type, args",
        (json.dumps(r.data, ensure_ascii=False), "ok" if r.data.get("ok") is True else "refused",
         r.id, r.site, r.device, r.service)).fetchone()
    if row is None or row[0] != "resend" or r.data.get("ok") is not True:
        if row is not None and r.data.get("ok") is not True:
            log.warning("central: %s/%s refused resend %s: %s", r.site, r.device, r.id, r.data.get("error"))
        return
    asked = (int(row[1]["from_seq"]), int(row[1]["to_seq"]))
    # One writer per device at a time keeps its lost ranges disjoint across instances.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"seq_lost/{r.site}/{r.device}",))
    missing = subtract([(max(a, asked[0]), min(b, asked[1])) for a, b in r.data.get("missing") or []
                        if b >= asked[0] and a <= asked[1]],
                       lost_ranges(conn, r.site, r.device))
    for a, b in missing:      # kept disjoint, so the candidates query can sum their sizes
        conn.execute("INSERT INTO seq_lost (site, device, first_seq, last_seq, cmd_id) VALUES (%s, %s, %s, %s, %s) "
                     "ON CONFLICT DO NOTHING", (r.site, r.device, a, b, r.id))
    if missing:
        log.warning("central: %s/%s no longer holds seqs %s: marked unrecoverable", r.site, r.device,
                    ", ".join(f"{a}..{b}" for a, b in missing))
