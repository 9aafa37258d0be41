"""The one durable store: SQLite in WAL mode holding state, the MQTT outbox and the audit log.

Every state change is written with its outgoing event in one transaction (`Store.transaction`),
so after `kill -9` or a power cut the device restarts with nothing lost and nothing done twice.
Each component owns a list of migrations (`Store.migrate(component, [sql, ...])`); the version
applied is kept per component in `schema_version`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from edge import audit
from edge.errors import StoreError
from edge.events import EventBus

CORE_MIGRATIONS = [
    # v1: outbox of MQTT messages, the per-device event sequence, command dedupe, audit log.
    """
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counters(name, value) VALUES ('event_seq', 0);
    CREATE TABLE outbox (
        row_id    INTEGER PRIMARY KEY AUTOINCREMENT,
        topic     TEXT NOT NULL,      -- suffix after motcua/v1/{site}/{device}/
        payload   TEXT NOT NULL,
        qos       INTEGER NOT NULL,
        retain    INTEGER NOT NULL,
        created   REAL NOT NULL,
        published REAL                -- NULL until PUBACK (or the send for QoS 0)
    );
    CREATE INDEX outbox_pending ON outbox(row_id) WHERE published IS NULL;
    CREATE TABLE commands (
        id       TEXT PRIMARY KEY,
        service  TEXT NOT NULL,
        type     TEXT NOT NULL,
        state    TEXT NOT NULL CHECK (state IN ('started', 'done')),
        result   TEXT,
        received REAL NOT NULL
    );
    """
    + audit.SCHEMA,
]


class Tx:
    """One open transaction: run SQL, emit events, set retained state, append to the audit log."""

    def __init__(self, store: "Store", conn: sqlite3.Connection):
        self._store = store
        self.conn = conn
        self.events: list[dict] = []
        self.messages: list[tuple[str, str, int]] = []  # (topic, JSON, outbox row): for the bus after COMMIT

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def emit(self, service: str, type: str, /, **fields: Any) -> dict:
        """Queue an event on `{service}/event` with the next device-wide `seq`; returns it."""
        seq = self.conn.execute(
            "UPDATE counters SET value = value + 1 WHERE name = 'event_seq' RETURNING value"
        ).fetchone()[0]
        event = {"id": uuid.uuid4().hex, "seq": seq, "ts": self._store.clock(), "type": type, **fields}
        self._queue(f"{service}/event", event, qos=1, retain=False)
        self.events.append(event)
        return event

    def set_state(self, service: str, snapshot: dict, /) -> None:
        """Queue the retained snapshot of a service (`{service}/state`)."""
        self._queue(f"{service}/state", {"ts": self._store.clock(), **snapshot}, qos=1, retain=True)

    def publish(self, topic_suffix: str, payload: dict, *, qos: int = 1, retain: bool = False) -> None:
        """Queue any other device message (status, cmd/result) through the outbox."""
        self._queue(topic_suffix, payload, qos=qos, retain=retain)

    def audit(self, actor: str, action: str, **detail: Any) -> None:
        """Append one record to the hash-chained audit log."""
        audit.append(self.conn, self._store.clock(), actor, action, detail)

    def _queue(self, topic: str, payload: dict, *, qos: int, retain: bool) -> None:
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        row = self.conn.execute(
            "INSERT INTO outbox(topic, payload, qos, retain, created) VALUES (?, ?, ?, ?, ?)",
            (topic, text, qos, int(retain), self._store.clock()),
        )
        self.messages.append((topic, text, row.lastrowid))


class Store:
    """The SQLite store of one device. Thread-safe: one connection behind a lock."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time):
        self.path = str(path)
        self.clock = clock
        # What each transaction queued for MQTT, heard in-process after its COMMIT (edge.events).
        self.bus = EventBus()
        self._lock = threading.RLock()
        self._listeners: list[Callable[[], None]] = []
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed transaction survives a power cut, not only a process kill.
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            # A deleted row (a face template, a PIN hash) is overwritten with zeros, not left
            # readable in a free page of the file until SQLite happens to reuse it.
            self._conn.execute("PRAGMA secure_delete=ON")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
        except sqlite3.DatabaseError as err:
            raise StoreError(f"cannot open store {self.path}: {err}") from err
        self.migrate("core", CORE_MIGRATIONS)

    # -- schema -----------------------------------------------------------------------------
    def migrate(self, component: str, migrations: list[str]) -> int:
        """Apply the migrations of `component` not applied yet, each in its own transaction."""
        with self._lock:
            row = self._conn.execute(
                "SELECT version FROM schema_version WHERE component = ?", (component,)
            ).fetchone()
            current = row[0] if row else 0
            if current > len(migrations):
                raise StoreError(
                    f"store {self.path} has {component} schema v{current}, newer than this software "
                    f"(v{len(migrations)}): refusing to run an older edge on it"
                )
            for version in range(current + 1, len(migrations) + 1):
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _split_sql(migrations[version - 1]):
                        self._conn.execute(statement)
                    self._conn.execute(
                        "INSERT INTO schema_version(component, version) VALUES (?, ?) "
                        "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                        (component, version),
                    )
                    self._conn.execute("COMMIT")
                except Exception:
                    self._conn.execute("ROLLBACK")
                    raise
            return len(migrations)

    # -- transactions -----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """`with store.transaction() as tx:` — all or nothing; listeners run after commit, and
        the bus gets exactly this transaction's messages (none after a rollback)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            tx = Tx(self, self._conn)
            try:
                yield tx
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            if tx.messages:  # under the lock: two threads' commits reach the bus in commit order
                self.bus.publish(tx.messages)
        for listener in list(self._listeners):
            listener()

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        """Read-only query outside a transaction; rows behave like tuples and dicts."""
        with self._lock:
            cur = self._conn.execute(sql, params)
            cur.row_factory = sqlite3.Row
            return cur.fetchall()

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after every commit (the MQTT reporter wakes its drain with it)."""
        self._listeners.append(listener)

    # -- outbox -----------------------------------------------------------------------------
    def pending(self, limit: int = 500, after: int = 0) -> list[tuple[int, str, str, int, bool]]:
        """Unpublished outbox rows in order: (row_id, topic, payload, qos, retain)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT row_id, topic, payload, qos, retain FROM outbox "
                "WHERE published IS NULL AND row_id > ? ORDER BY row_id LIMIT ?",
                (after, limit),
            ).fetchall()
        return [(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def mark_published(self, row_ids: list[int]) -> None:
        if not row_ids:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "UPDATE outbox SET published = ? WHERE row_id = ?", [(self.clock(), r) for r in row_ids]
            )
            self._conn.execute("COMMIT")

    def pending_count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM outbox WHERE published IS NULL").fetchone()[0]

    def prune_outbox(self, older_than_s: float = 7 * 86400) -> int:
        """Delete published rows older than `older_than_s` (the outbox is not an archive)."""
        with self._lock:
            cur = self._conn.execute(
                "DELETE FROM outbox WHERE published IS NOT NULL AND published < ?",
                (self.clock() - older_than_s,),
            )
            return cur.rowcount

    def last_seq(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT value FROM counters WHERE name = 'event_seq'").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (sqlite3.complete_statement knows triggers)."""
    statements, buf = [], ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n\t;"):
                statements.append(buf.strip())
            buf = ""
    if buf.strip(" \n\t;"):
        statements.append(buf.strip())
    return statements
