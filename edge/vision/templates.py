"""Face templates at rest: AES-256-GCM with a device key, one row per dossier in the store.

The ciphertext's associated data is the dossier code, so a template blob copied onto another
dossier's row fails to decrypt. Consent (who, when, purpose) is kept beside it and in the audit
log. Nothing here is ever published.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge.errors import EdgeError
from edge.store import Store, Tx

DIM = 128
KEY_BYTES = 32
NONCE_BYTES = 12

MIGRATIONS = [
    """
    CREATE TABLE vision_enrolments (
        dossier         TEXT PRIMARY KEY,
        enrolled        REAL NOT NULL,
        consent_actor   TEXT NOT NULL,
        consent_purpose TEXT NOT NULL,
        waiting         INTEGER NOT NULL DEFAULT 0,  -- a result is in a locker: 1:N may consider it
        count           INTEGER NOT NULL,
        nonce           BLOB NOT NULL,
        templates       BLOB NOT NULL                -- AES-GCM(count x 128 float32), AAD = dossier
    );
    CREATE TABLE vision_attempts (
        dossier      TEXT PRIMARY KEY,
        failures     INTEGER NOT NULL,
        locked_until REAL
    );
    """,
]


class TemplateKeyError(EdgeError):
    """Error raised when the template key file is unreadable or has the wrong length."""


def load_or_create_key(path: str | Path) -> bytes:
    """The 32-byte device key; created (mode 0600) on first use. An existing key file that group
    or others may read is refused: whoever reads it decrypts every face template."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(KEY_BYTES))
    try:
        st = path.stat()
        key = path.read_bytes()
    except OSError as err:
        raise TemplateKeyError(f"cannot read template key {path}: {err}") from err
    if st.st_mode & 0o077:   # the same rule as the gallery's device key (gallery_format.load_device_key)
        raise TemplateKeyError(f"template key {path} has permissions {oct(st.st_mode & 0o777)}: group or others "
                               f"may read it; expected 0600 (chmod 600 {path})")
    if st.st_uid not in (0, os.getuid()):
        raise TemplateKeyError(f"template key {path} is owned by uid {st.st_uid}, expected root or uid {os.getuid()}")
    if len(key) != KEY_BYTES:
        raise TemplateKeyError(f"template key {path} holds {len(key)} bytes, expected {KEY_BYTES}")
    return key


class TemplateStore:
    def __init__(self, store: Store, key: bytes):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.store = store
        self._aead = AESGCM(key)
        store.migrate("vision", MIGRATIONS)

    def put(self, tx: Tx, dossier: str, vectors: np.ndarray, *, actor: str, purpose: str, now: float) -> None:
        vectors = np.asarray(vectors, np.float32).reshape(-1, DIM)
        nonce = os.urandom(NONCE_BYTES)
        blob = self._aead.encrypt(nonce, vectors.tobytes(), dossier.encode())
        tx.execute("INSERT OR REPLACE INTO vision_enrolments(dossier, enrolled, consent_actor, consent_purpose, "
                   "waiting, count, nonce, templates) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                   (dossier, now, actor, purpose, len(vectors), nonce, blob))
        tx.execute("DELETE FROM vision_attempts WHERE dossier = ?", (dossier,))

    def get(self, dossier: str) -> np.ndarray | None:
        rows = self.store.query("SELECT count, nonce, templates FROM vision_enrolments WHERE dossier = ?", (dossier,))
        if not rows:
            return None
        return self._decrypt(dossier, *rows[0])

    def _decrypt(self, dossier: str, count: int, nonce: bytes, blob: bytes) -> np.ndarray:
        from cryptography.exceptions import InvalidTag

        try:
            plain = self._aead.decrypt(nonce, blob, dossier.encode())
        except InvalidTag as err:
            raise TemplateKeyError(f"templates of dossier {dossier} fail authentication "
                                   f"(wrong key or tampered row)") from err
        return np.frombuffer(plain, np.float32).reshape(count, DIM)

    def exists(self, dossier: str) -> bool:
        return bool(self.store.query("SELECT 1 FROM vision_enrolments WHERE dossier = ?", (dossier,)))

    def waiting(self) -> dict[str, np.ndarray]:
        rows = self.store.query("SELECT dossier, count, nonce, templates FROM vision_enrolments WHERE waiting = 1")
        return {row[0]: self._decrypt(*row) for row in rows}

    def delete(self, tx: Tx, dossier: str) -> bool:
        deleted = tx.execute("DELETE FROM vision_enrolments WHERE dossier = ?", (dossier,)).rowcount > 0
        tx.execute("DELETE FROM vision_attempts WHERE dossier = ?", (dossier,))
        return deleted

    def expired(self, before: float) -> list[str]:
        return [r[0] for r in self.store.query("SELECT dossier FROM vision_enrolments WHERE enrolled < ?", (before,))]

    def count(self) -> tuple[int, int]:
        row = self.store.query("SELECT COUNT(*), COALESCE(SUM(waiting), 0) FROM vision_enrolments")[0]
        return int(row[0]), int(row[1])
