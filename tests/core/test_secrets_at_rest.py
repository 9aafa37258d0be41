"""Secrets at rest on the device: deleted rows do not stay readable in the SQLite file, and the
face-template key is refused when others may read it."""

from __future__ import annotations

import os
import sqlite3

import pytest

from edge.store import Store
from edge.vision.templates import KEY_BYTES, TemplateKeyError, load_or_create_key

MARKER = b"FACE-TEMPLATE-" + bytes(range(32)) * 8


def test_a_deleted_row_is_not_left_readable_in_the_file(tmp_path, monkeypatch):
    # Debian builds SQLite with secure_delete on by default; other builds (Python wheels with
    # their own SQLite) do not. Play such a build: the store must turn it on itself.
    real_connect = sqlite3.connect

    def connect_without_secure_delete(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete=OFF")
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect_without_secure_delete)
    path = tmp_path / "edge.db"
    store = Store(path)
    with store.transaction() as tx:
        tx.execute("CREATE TABLE secrets (k TEXT PRIMARY KEY, v BLOB)")
        tx.execute("INSERT INTO secrets VALUES ('0', ?)", (b"x" * 100,))   # neighbours on the same page
        tx.execute("INSERT INTO secrets VALUES ('a', ?)", (MARKER,))
        tx.execute("INSERT INTO secrets VALUES ('b', ?)", (b"y" * 100,))
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert MARKER in path.read_bytes()                  # the row is in the main file now
    with store.transaction() as tx:
        tx.execute("DELETE FROM secrets WHERE k = 'a'")
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    wal = tmp_path / "edge.db-wal"
    leftovers = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert MARKER not in leftovers                      # without secure_delete the freed cell keeps it
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_template_key_others_may_read_is_refused(tmp_path):
    key = tmp_path / "keys" / "templates.key"
    made = load_or_create_key(key)
    assert len(made) == KEY_BYTES and (key.stat().st_mode & 0o777) == 0o600
    assert load_or_create_key(key) == made              # the same key again, when it is private
    os.chmod(key, 0o644)
    with pytest.raises(TemplateKeyError, match=r"permissions 0o644: group or others may read it; expected 0600"):
        load_or_create_key(key)
    os.chmod(key, 0o640)
    with pytest.raises(TemplateKeyError, match="chmod 600"):
        load_or_create_key(key)
