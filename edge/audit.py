"""Append-only, hash-chained audit log: each row holds the SHA-256 of the row before it.

`verify(path)` walks the chain; a changed, deleted or reordered row breaks it at that row.
Triggers refuse UPDATE and DELETE, so only a hand-edited file can break it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

GENESIS = "0" * 64

SCHEMA = """
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    ts        REAL NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""


def row_hash(prev_hash: str, row_id: int, ts: float, actor: str, action: str, detail: str) -> str:
    body = json.dumps([prev_hash, row_id, repr(float(ts)), actor, action, detail], ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def append(conn: sqlite3.Connection, ts: float, actor: str, action: str, detail: dict) -> int:
    """Append one record inside the caller's open transaction; returns its id."""
    last = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    row_id, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    text = json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    digest = row_hash(prev, row_id, ts, actor, action, text)
    conn.execute(
        "INSERT INTO audit(id, ts, actor, action, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (row_id, ts, actor, action, text, prev, digest),
    )
    return row_id


@dataclass(frozen=True)
class Verdict:
    ok: bool
    records: int
    message: str


def verify(db_path: str | Path) -> Verdict:
    """Check the whole chain of the store at `db_path` (opened read-only)."""
    path = Path(db_path)
    if not path.exists():
        return Verdict(False, 0, f"{path}: no such file")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        rows = conn.execute(
            "SELECT id, ts, actor, action, detail, prev_hash, hash FROM audit ORDER BY id"
        ).fetchall()
    except sqlite3.DatabaseError as err:
        return Verdict(False, 0, f"{path}: cannot read the audit table: {err}")
    prev, expected_id = GENESIS, 1
    for row_id, ts, actor, action, detail, prev_hash, digest in rows:
        if row_id != expected_id:
            return Verdict(False, expected_id - 1, f"record {expected_id} is missing (next is {row_id})")
        if prev_hash != prev:
            return Verdict(False, row_id - 1, f"record {row_id}: prev_hash does not match record {row_id - 1}")
        if row_hash(prev_hash, row_id, ts, actor, action, detail) != digest:
            return Verdict(False, row_id - 1, f"record {row_id} ({action} by {actor}): contents do not match its hash")
        prev, expected_id = digest, expected_id + 1
    return Verdict(True, len(rows), f"audit chain intact: {len(rows)} records")
