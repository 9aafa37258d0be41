"""PostgreSQL schema (versioned migrations) and the ingest write path of the central service.

Events live in a table partitioned by month of the device's `ts`; the primary key is
(`ts`, `id`) because PostgreSQL requires the partition key in every unique index: a redelivered
event carries the same `ts` and `id`, so `ON CONFLICT DO NOTHING` stores it once. Per-device
`seq` statistics (lowest, highest, distinct count) are kept in `device_seq`, one row per device
and consumer instance, so gaps are counted without scanning events, whatever order two consumers
commit in, and without the consumers waiting on each other's row locks.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable
from zoneinfo import ZoneInfo

import psycopg

from edge.central import analytics, quarantine, recovery
from edge.central.quarantine import Quarantined
from edge.central.topics import CommandResult, Event, State, Status

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x6D6F7463  # advisory lock id ("motc"): one instance migrates at a time
PARTITION_LOCK = 0x6D6F7470

MIGRATIONS = [
    # v1: devices, retained service state, month-partitioned events, alarms, command log.
    """
    CREATE TABLE devices (
        site text NOT NULL, device text NOT NULL,
        state text NOT NULL DEFAULT 'unknown', state_since timestamptz, status_ts timestamptz,
        last_seen timestamptz, version text NOT NULL DEFAULT '', services jsonb NOT NULL DEFAULT '{}',
        offline_alarm_at timestamptz,
        PRIMARY KEY (site, device)
    );
    -- Per device *and consumer instance*: each instance updates only its own row, so two
    -- instances never wait on each other's row locks; readers add the rows up.
    CREATE TABLE device_seq (
        site text NOT NULL, device text NOT NULL, instance text NOT NULL,
        seq_min bigint NOT NULL, seq_max bigint NOT NULL, seq_stored bigint NOT NULL, last_event timestamptz,
        PRIMARY KEY (site, device, instance)
    );
    CREATE TABLE service_state (
        site text NOT NULL, device text NOT NULL, service text NOT NULL,
        ts timestamptz, received timestamptz NOT NULL DEFAULT now(), snapshot jsonb NOT NULL,
        PRIMARY KEY (site, device, service)
    );
    CREATE TABLE events (
        ts timestamptz NOT NULL, id text NOT NULL,
        site text NOT NULL, device text NOT NULL, service text NOT NULL,
        seq bigint NOT NULL, type text NOT NULL, body jsonb NOT NULL,
        received timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (ts, id)
    ) PARTITION BY RANGE (ts);
    CREATE INDEX events_by_device ON events (site, device, seq DESC);
    CREATE TABLE alarms (
        id bigserial PRIMARY KEY, site text NOT NULL, device text NOT NULL, service text NOT NULL,
        kind text NOT NULL, subject text NOT NULL DEFAULT '',
        opened_at timestamptz NOT NULL, cleared_at timestamptz, detail jsonb NOT NULL DEFAULT '{}'
    );
    CREATE UNIQUE INDEX alarms_open ON alarms (site, device, service, kind, subject) WHERE cleared_at IS NULL;
    CREATE TABLE commands (
        id text PRIMARY KEY, site text NOT NULL, device text NOT NULL, service text NOT NULL,
        type text NOT NULL, args jsonb NOT NULL, actor text NOT NULL,
        sent_at timestamptz NOT NULL DEFAULT now(), result jsonb, result_at timestamptz
    );
    """,
    # v2: queue roll-ups: one row per ticket (kept current by ingestion) and per day/site/queue.
    """
    CREATE TABLE tickets (
        site text NOT NULL, device text NOT NULL, ticket_key text NOT NULL,
        day date NOT NULL, queue text NOT NULL DEFAULT '', ticket text NOT NULL DEFAULT '',
        issued_at timestamptz, called_at timestamptz, done_at timestamptz,
        no_show boolean NOT NULL DEFAULT false, rating smallint,
        PRIMARY KEY (site, device, ticket_key)
    );
    CREATE INDEX tickets_by_day ON tickets (day, site);
    CREATE TABLE queue_daily (
        day date NOT NULL, site text NOT NULL, queue text NOT NULL,
        issued int NOT NULL, served int NOT NULL, no_shows int NOT NULL,
        wait_avg_s double precision, wait_p90_s double precision, service_avg_s double precision,
        rating_avg double precision, ratings int NOT NULL,
        PRIMARY KEY (day, site, queue)
    );
    CREATE TABLE rollup_dirty (day date NOT NULL, site text NOT NULL, PRIMARY KEY (day, site));
    """,
    # v3: results in lockers (from the locker's loaded/collected/reclaimed/expired events), so the
    # lockers page knows what waits, until when, and what was collected overnight.
    """
    CREATE TABLE locker_results (
        site text NOT NULL, device text NOT NULL, receipt text NOT NULL,
        compartment text NOT NULL DEFAULT '', loaded_at timestamptz, deadline timestamptz,
        closed_at timestamptz, outcome text,
        PRIMARY KEY (site, device, receipt)
    );
    CREATE INDEX locker_results_open ON locker_results (site, device) WHERE closed_at IS NULL;
    CREATE INDEX locker_results_closed ON locker_results (closed_at) WHERE closed_at IS NOT NULL;
    """,
    # v4: gap recovery (recovery.py): when central last asked a device to resend (claimed with
    # UPDATE … RETURNING, so one instance asks), and the ranges a device said it no longer holds.
    # The requests themselves are rows of `commands` (service 'device', type 'resend').
    """
    ALTER TABLE devices ADD COLUMN resend_at timestamptz;
    CREATE TABLE seq_lost (
        site text NOT NULL, device text NOT NULL, first_seq bigint NOT NULL, last_seq bigint NOT NULL,
        reported_at timestamptz NOT NULL DEFAULT now(), cmd_id text NOT NULL DEFAULT '',
        PRIMARY KEY (site, device, first_seq)
    );
    CREATE INDEX commands_resend ON commands (site, device, sent_at DESC) WHERE service = 'device' AND type = 'resend';
    """,
    # v5: dashboard logins (auth.py): sessions (only a hash of the cookie's id is stored) and
    # failed-login counts, so a restart neither logs staff out nor forgets a lockout.
    """
    CREATE TABLE web_sessions (
        id_hash text PRIMARY KEY, staff_id text NOT NULL, csrf text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz NOT NULL
    );
    CREATE TABLE staff_lockout (
        staff_id text PRIMARY KEY, failures int NOT NULL DEFAULT 0,
        last_failure timestamptz, locked_until timestamptz
    );
    """,
    # v6: poison messages (quarantine.py: the dead letters, never the payload), the registry of
    # provisioned devices, and the outcome of each command: `sent` is written before the command
    # is published, then `ok`, `refused` or `timeout` (a door opened while the link dropped has
    # a row all the same).
    """
    CREATE TABLE quarantine (
        id bigserial PRIMARY KEY, received timestamptz NOT NULL DEFAULT now(),
        site text NOT NULL DEFAULT '', device text NOT NULL DEFAULT '', topic text NOT NULL,
        reason text NOT NULL, detail text NOT NULL DEFAULT '', sha256 text NOT NULL, size int NOT NULL,
        instance text NOT NULL DEFAULT ''
    );
    CREATE INDEX quarantine_by_device ON quarantine (device, received DESC);
    CREATE INDEX quarantine_by_time ON quarantine (received DESC);
    CREATE TABLE device_registry (
        site text NOT NULL, device text NOT NULL,
        added_at timestamptz NOT NULL DEFAULT now(), added_by text NOT NULL DEFAULT '',
        PRIMARY KEY (site, device)
    );
    ALTER TABLE commands ADD COLUMN status text NOT NULL DEFAULT 'sent';
    UPDATE commands SET status = CASE WHEN result IS NULL THEN 'sent'
                                      WHEN result -> 'ok' = 'true'::jsonb THEN 'ok' ELSE 'refused' END;
    """,
]


def connect(dsn: str, **kw) -> psycopg.Connection:
    return psycopg.connect(dsn, connect_timeout=5, autocommit=True, **kw)


def migrate(conn: psycopg.Connection) -> int:
    """Apply the migrations not applied yet (under an advisory lock); return the version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS central_schema (version int NOT NULL)")
        row = conn.execute("SELECT max(version) FROM central_schema").fetchone()
        current = row[0] or 0
        for version, sql in enumerate(MIGRATIONS[current:], start=current + 1):
            conn.execute(sql)
            conn.execute("INSERT INTO central_schema(version) VALUES (%s)", (version,))
            log.info("central: database migrated to v%d", version)
    return len(MIGRATIONS)


def month_start(ts: float) -> dt.date:
    d = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    return dt.date(d.year, d.month, 1)


def _next_month(d: dt.date) -> dt.date:
    return dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def partition_name(month: dt.date) -> str:
    return f"events_{month.year:04d}_{month.month:02d}"


def ensure_partitions(conn: psycopg.Connection, months: Iterable[dt.date], known: set) -> None:
    """Create the monthly partitions missing for `months` (in their own transaction)."""
    missing = sorted(set(months) - known)
    if not missing:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
        for month in missing:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {partition_name(month)} PARTITION OF events "
                f"FOR VALUES FROM ('{month.isoformat()} 00:00+00') TO ('{_next_month(month).isoformat()} 00:00+00')"
            )
    known.update(missing)


def drop_old_partitions(conn: psycopg.Connection, keep_months: int, *, today: dt.date | None = None) -> list[str]:
    """Retention: drop whole months older than `keep_months` (0 keeps everything)."""
    if keep_months <= 0:
        return []
    today = today or dt.datetime.now(dt.timezone.utc).date()
    cutoff = dt.date(today.year, today.month, 1)
    for _ in range(keep_months - 1):
        cutoff = dt.date(cutoff.year - (cutoff.month == 1), (cutoff.month - 2) % 12 + 1, 1)
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events'"
    ).fetchall()
    dropped = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))   # one instance at a time
        for (name,) in rows:
            try:
                year, month = int(name[7:11]), int(name[12:14])
            except ValueError:
                continue
            if dt.date(year, month, 1) < cutoff:
                conn.execute(f"DROP TABLE IF EXISTS {name}")
                dropped.append(name)
    return dropped


@dataclass
class WriteResult:
    stored: int = 0                       # events newly stored (duplicates excluded)
    duplicates: int = 0
    alarms: list = field(default_factory=list)   # alarms opened by this batch (dicts)
    quarantined: list = field(default_factory=list)   # Quarantined rows written by this batch

    def add(self, other: "WriteResult") -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.alarms += other.alarms
        self.quarantined += other.quarantined


def _ts(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.timezone.utc)


class Writer:
    """Writes batches of parsed messages in one transaction each; one per consumer thread."""

    def __init__(self, conn: psycopg.Connection, *, tz: str = "Asia/Ho_Chi_Minh", instance: str = "central",
                 registry: quarantine.Registry | None = None):
        self.conn, self.instance = conn, instance
        self.tz = ZoneInfo(tz)
        self.registry = registry or quarantine.Registry()
        self._partitions: set = set()

    def write(self, messages: list, dead: list[Quarantined] = (), *, sources: dict | None = None) -> WriteResult:
        """Store the messages, and the quarantined ones, in one transaction.

        A message whose (site, device) the registry refuses joins the quarantine; `sources` maps
        id(message) -> (topic, payload bytes), for its topic and hash."""
        result = WriteResult(quarantined=list(dead))
        accepted = []
        for m in messages:
            refusal = self.registry.verdict(self.conn, m.site, m.device)
            if refusal is None:
                accepted.append(m)
                continue
            topic, payload = (sources or {}).get(id(m)) or (f"motcua/v1/{m.site}/{m.device}/?", repr(m).encode())
            result.quarantined.append(Quarantined.of(topic, payload, *refusal))
        messages = accepted
        events = [m for m in messages if isinstance(m, Event)]
        ensure_partitions(self.conn, (month_start(e.ts) for e in events), self._partitions)
        with self.conn.transaction():
            result.alarms += quarantine.record(self.conn, result.quarantined, instance=self.instance,
                                               registered_site=self.registry.site_of())
            new = self._insert_events(events) if events else []
            result.stored, result.duplicates = len(new), len(events) - len(new)
            self._device_stats(new)
            result.alarms += analytics.apply_events(self.conn, new, self.tz)
            for status in (m for m in messages if isinstance(m, Status)):
                self._status(status)
            for state in (m for m in messages if isinstance(m, State)):
                self._state(state)
            for answer in (m for m in messages if isinstance(m, CommandResult)):
                recovery.record_result(self.conn, answer)
        return result

    def _insert_events(self, events: list[Event]) -> list[Event]:
        # unnest() sends the whole batch in one statement; RETURNING names the rows really inserted.
        rows = self.conn.execute(
            "INSERT INTO events (ts, id, site, device, service, seq, type, body) "
            "SELECT * FROM unnest(%b::timestamptz[], %b::text[], %b::text[], %b::text[], %b::text[], "
            "%b::bigint[], %b::text[], %b::jsonb[]) ON CONFLICT DO NOTHING RETURNING id, ts",
            (
                [_ts(e.ts) for e in events], [e.id for e in events], [e.site for e in events],
                [e.device for e in events], [e.service for e in events], [e.seq for e in events],
                [e.type for e in events], [json.dumps(e.body, ensure_ascii=False) for e in events],
            ),
        ).fetchall()
        inserted = {(row[0], row[1]) for row in rows}
        new = []
        for e in events:           # a duplicate inside one batch is inserted (and returned) once
            key = (e.id, _ts(e.ts))
            if key in inserted:
                inserted.discard(key)
                new.append(e)
        return new

    def _device_stats(self, new: list[Event]) -> None:
        per_device: dict = defaultdict(list)
        for e in new:
            per_device[(e.site, e.device)].append(e)
        # Sorted so two consumers lock device rows in the same order (no deadlock).
        for (site, device), evs in sorted(per_device.items()):
            seqs = [e.seq for e in evs]
            # DO NOTHING takes no row lock: a device known only from its events gets listed.
            self.conn.execute("INSERT INTO devices (site, device) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                              (site, device))
            self.conn.execute(
                "INSERT INTO device_seq AS d (site, device, instance, seq_min, seq_max, seq_stored, last_event) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (site, device, instance) DO UPDATE SET "
                "seq_min = LEAST(d.seq_min, EXCLUDED.seq_min), seq_max = GREATEST(d.seq_max, EXCLUDED.seq_max), "
                "seq_stored = d.seq_stored + EXCLUDED.seq_stored, "
                "last_event = GREATEST(d.last_event, EXCLUDED.last_event)",
                (site, device, self.instance, min(seqs), max(seqs), len(seqs), _ts(max(e.ts for e in evs))),
            )

    def _status(self, s: Status) -> None:
        # Applied in arrival order, not by `ts`: the will (offline) carries the ts of the
        # connection, older than the birth that followed it, and MQTT keeps one topic in order.
        # `state_since` is when central saw the change, for the same reason.
        row = self.conn.execute(
            "INSERT INTO devices AS d (site, device, state, state_since, status_ts, last_seen, version, services) "
            "VALUES (%(site)s, %(device)s, %(state)s, now(), %(ts)s, %(ts)s, %(version)s, %(services)s) "
            "ON CONFLICT (site, device) DO UPDATE SET "
            "state_since = CASE WHEN d.state = EXCLUDED.state THEN d.state_since ELSE EXCLUDED.state_since END, "
            "state = EXCLUDED.state, status_ts = EXCLUDED.status_ts, "
            "last_seen = GREATEST(d.last_seen, EXCLUDED.last_seen), "
            "version = CASE WHEN EXCLUDED.version = '' THEN d.version ELSE EXCLUDED.version END, "
            "services = CASE WHEN EXCLUDED.services = '{}'::jsonb THEN d.services ELSE EXCLUDED.services END, "
            "offline_alarm_at = CASE WHEN EXCLUDED.state = 'online' THEN NULL ELSE d.offline_alarm_at END "
            "RETURNING state",
            {"site": s.site, "device": s.device, "state": s.state, "ts": _ts(s.ts),
             "version": s.version, "services": json.dumps(s.services)},
        ).fetchone()
        if row and s.state == "online":
            self.conn.execute(
                "UPDATE alarms SET cleared_at = %s WHERE site = %s AND device = %s AND kind = 'device_offline' "
                "AND cleared_at IS NULL", (_ts(s.ts), s.site, s.device))

    def _state(self, s: State) -> None:
        self.conn.execute(
            "INSERT INTO service_state AS st (site, device, service, ts, snapshot) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (site, device, service) DO UPDATE SET ts = EXCLUDED.ts, snapshot = EXCLUDED.snapshot, "
            "received = now()",
            (s.site, s.device, s.service, _ts(s.ts) if s.ts else None, json.dumps(s.snapshot, ensure_ascii=False)),
        )


def raise_offline_alarms(conn: psycopg.Connection, after_s: float) -> list[dict]:
    """Open a `device_offline` alarm for each device offline longer than `after_s`, once.

    The UPDATE … RETURNING claims each device atomically, so with several instances running
    only one of them raises (and notifies) each alarm."""
    with conn.transaction():
        rows = conn.execute(
            "UPDATE devices SET offline_alarm_at = now() WHERE state = 'offline' AND offline_alarm_at IS NULL "
            "AND state_since < now() - make_interval(secs => %s) RETURNING site, device, state_since",
            (after_s,),
        ).fetchall()
        alarms = []
        for site, device, since in rows:
            detail = {"offline_since": since.timestamp()}
            conn.execute(
                "INSERT INTO alarms (site, device, service, kind, subject, opened_at, detail) "
                "VALUES (%s, %s, '', 'device_offline', '', now(), %s) ON CONFLICT DO NOTHING",
                (site, device, json.dumps(detail)),
            )
            alarms.append({"site": site, "device": device, "service": "", "kind": "device_offline",
                           "subject": "", "ts": since.timestamp(), "detail": detail})
    return alarms
