"""The store: migrations, all-or-nothing transactions, the outbox sequence, the audit chain."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from edge import audit
from edge.errors import StoreError
from edge.store import Store


def test_wal_mode_and_core_schema(store):
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    assert store.query("SELECT version FROM schema_version WHERE component = 'core'")[0][0] >= 1


def test_component_migrations_apply_once_in_order(tmp_path):
    migrations = ["CREATE TABLE t (a INTEGER)", "ALTER TABLE t ADD COLUMN b TEXT"]
    s = Store(tmp_path / "m.db")
    assert s.migrate("demo", migrations[:1]) == 1
    s.migrate("demo", migrations)  # the second one only
    s.migrate("demo", migrations)  # nothing left to do
    assert [r[1] for r in s.query("PRAGMA table_info(t)")] == ["a", "b"]
    s.close()
    # An older edge must not run on a newer store.
    s = Store(tmp_path / "m.db")
    with pytest.raises(StoreError, match="newer than this software"):
        s.migrate("demo", migrations[:1])


def test_a_failed_transaction_leaves_no_event_no_seq_and_no_audit(store):
    store.migrate("demo", ["CREATE TABLE tickets (n TEXT)"])
    with store.transaction() as tx:
        tx.execute("INSERT INTO tickets VALUES ('A001')")
        tx.emit("pager", "ticket_issued", ticket="A001")
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.execute("INSERT INTO tickets VALUES ('A002')")
            tx.emit("pager", "ticket_issued", ticket="A002")
            tx.audit("staff", "issue", ticket="A002")
            raise RuntimeError("power cut in the middle")
    with store.transaction() as tx:
        event = tx.emit("pager", "ticket_issued", ticket="A003")
    assert event["seq"] == 2  # the rolled-back event did not consume a seq
    assert [r[0] for r in store.query("SELECT n FROM tickets")] == ["A001"]
    assert store.query("SELECT count(*) FROM audit")[0][0] == 0
    assert [p[1] for p in store.pending()] == ["pager/event", "pager/event"]


def test_audit_log_is_append_only_and_verifies(store, tmp_path):
    with store.transaction() as tx:
        for i in range(5):
            tx.audit("kiosk", "door_opened", compartment=i)
    assert audit.verify(store.path).ok
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        with store.transaction() as tx:
            tx.execute("UPDATE audit SET actor = 'x' WHERE id = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        with store.transaction() as tx:
            tx.execute("DELETE FROM audit WHERE id = 5")


def tamper(path, sql):
    conn = sqlite3.connect(path)
    conn.executescript("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;" + sql)
    conn.close()


@pytest.mark.parametrize("sql, first_bad", [
    ("UPDATE audit SET detail = '{\"compartment\":9}' WHERE id = 3;", "record 3"),
    ("DELETE FROM audit WHERE id = 2;", "record 2 is missing"),
])
def test_audit_verify_cli_names_the_first_bad_record(tmp_path, sql, first_bad):
    s = Store(tmp_path / "a.db")
    with s.transaction() as tx:
        for i in range(5):
            tx.audit("kiosk", "door_opened", compartment=i)
    s.close()
    ok = subprocess.run([sys.executable, "-m", "edge", "audit", "verify", "--db", str(tmp_path / "a.db")],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "5 records" in ok.stdout
    tamper(tmp_path / "a.db", sql)
    bad = subprocess.run([sys.executable, "-m", "edge", "audit", "verify", "--db", str(tmp_path / "a.db")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert first_bad in bad.stdout
