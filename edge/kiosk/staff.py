"""Staff login for the desk screens (reception, counter, loading, status) when the kiosk is on the LAN.

Staff PINs are PBKDF2 hashes in `[kiosk] staff_pins` (made with `python -m edge.locker.pins 1234`,
checked with the same helper). A login gives a random session token in an HttpOnly, SameSite=Strict
cookie (Secure when served over TLS). Sessions live in memory (a restart logs everyone out);
failure counters and lockouts live in the device's SQLite store when one is given, so restarting
the kiosk (or making it crash) does not hand a guesser a fresh set of attempts. Pure logic here,
no aiohttp: edge.kiosk.web wires it to requests.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from edge.errors import EdgeError
from edge.locker.pins import check_pin, hash_pin

COOKIE = "edge_staff"
FAILURE_MIGRATIONS = [
    """
    CREATE TABLE kiosk_staff_failures (
        key          TEXT PRIMARY KEY,   -- 'staff:ID' or 'addr:CLIENT'
        count        INTEGER NOT NULL,
        locked_until REAL NOT NULL,
        updated      REAL NOT NULL
    );
    """,
]
FORGET_AFTER_S = 86400.0  # a counter untouched this long (and not locking) is dropped
MAX_SESSIONS = 500  # a bound, so a flood of logins cannot grow memory without end
# An unknown staff id is checked against this, so a wrong id costs the same time as a wrong PIN.
_DUMMY_HASH = hash_pin("not-a-pin", salt=b"edge-kiosk-x")


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name or a LAN address: other machines can reach it


class LoginRefused(EdgeError):
    """A wrong staff id or PIN, or a lockout; `retry_after_s` is set while locked out."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


@dataclass
class StaffSession:
    staff: str
    expires: float
    token: str = field(repr=False)


class StaffAuth:
    """Who may use the staff endpoints: PIN check, attempt limit with lockout, sessions with expiry."""

    def __init__(self, pins: dict[str, str], *, required: bool, session_s: float, attempts: int,
                 lockout_s: float, clock: Callable[[], float] = time.time, store: Any = None):
        self.pins = dict(pins)
        self.required = required
        self.session_s, self.attempts, self.lockout_s = session_s, attempts, lockout_s
        self.clock = clock
        self._sessions: dict[str, StaffSession] = {}
        # Counted per staff id (a known one only: unknown ids cannot grow this) and per client address;
        # in the store (edge.store.Store) when given, so a restart keeps them.
        self._failures: dict[str, _Failures] = {}
        self.store = store
        if store is not None:
            store.migrate("kiosk_staff", FAILURE_MIGRATIONS)

    # -- login / logout ------------------------------------------------------------------------------
    def locked_for(self, staff: str, remote: str) -> float:
        """Seconds left of a lockout of this staff id or this client address (0: not locked)."""
        now = self.clock()
        left = [f.locked_until - now for key in self._keys(staff, remote)
                if (f := self._load(key)) is not None]
        return max([0.0, *left])

    def login(self, staff: str, pin: str, remote: str) -> StaffSession:
        """A new session for the right PIN; LoginRefused otherwise (and while locked, even the right PIN)."""
        self.refuse_if_locked(staff, remote)
        return self.record(staff, remote, self.pin_matches(staff, pin))

    def refuse_if_locked(self, staff: str, remote: str) -> None:
        locked = self.locked_for(staff, remote)
        if locked > 0:
            raise LoginRefused("too many wrong PINs: locked out", retry_after_s=locked)

    def pin_matches(self, staff: str, pin: str) -> bool:
        """The slow PBKDF2 check alone (no state touched), so the web app can run it off the event loop."""
        stored = self.pins.get(staff)
        ok = check_pin(pin, stored if stored is not None else _DUMMY_HASH)
        return ok and stored is not None

    def record(self, staff: str, remote: str, ok: bool) -> StaffSession:
        """Count the outcome of a PIN check: a session for a right PIN, LoginRefused for a wrong one."""
        if not ok:
            if self._failed(staff, remote):
                raise LoginRefused("too many wrong PINs: locked out", retry_after_s=self.lockout_s)
            raise LoginRefused("wrong staff id or PIN")
        self.refuse_if_locked(staff, remote)  # a lockout that began while this PIN was being checked
        for key in self._keys(staff, remote):
            self._forget(key)
        return self._new_session(staff)

    def logout(self, token: str | None) -> StaffSession | None:
        return self._sessions.pop(token, None) if token else None

    def session(self, token: str | None) -> StaffSession | None:
        """The live session of a cookie token (None: absent, unknown, expired, or a removed staff id)."""
        found = self._sessions.get(token) if token else None
        if found is None:
            return None
        if found.expires <= self.clock() or found.staff not in self.pins:
            self._sessions.pop(token, None)
            return None
        return found

    # -- internals -----------------------------------------------------------------------------------
    def _keys(self, staff: str, remote: str) -> list[str]:
        keys = [f"addr:{remote}"]
        if staff in self.pins:
            keys.append(f"staff:{staff}")
        return keys

    def _failed(self, staff: str, remote: str) -> bool:
        """Count a wrong PIN; True when it starts a lockout."""
        now, locked = self.clock(), False
        for key in self._keys(staff, remote):
            f = self._load(key) or _Failures()
            if f.locked_until and f.locked_until <= now:
                f.count, f.locked_until = 0, 0.0  # an ended lockout starts a fresh count
            f.count += 1
            if f.count >= self.attempts:
                f.locked_until, locked = now + self.lockout_s, True
            self._save(key, f)
        return locked

    # -- the failure book: memory, or the store -----------------------------------------------------
    def _load(self, key: str) -> _Failures | None:
        if self.store is None:
            return self._failures.get(key)
        rows = self.store.query("SELECT count, locked_until FROM kiosk_staff_failures WHERE key = ?", (key,))
        return _Failures(int(rows[0][0]), float(rows[0][1])) if rows else None

    def _save(self, key: str, f: _Failures) -> None:
        if self.store is None:
            self._failures[key] = f
            return
        now = self.clock()
        with self.store.transaction() as tx:
            tx.execute("INSERT INTO kiosk_staff_failures(key, count, locked_until, updated) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT(key) DO UPDATE SET count = excluded.count, locked_until = excluded.locked_until, "
                       "updated = excluded.updated", (key, f.count, f.locked_until, now))
            # Bounded: counters from many client addresses do not pile up for ever.
            tx.execute("DELETE FROM kiosk_staff_failures WHERE updated < ? AND locked_until < ?",
                       (now - FORGET_AFTER_S, now))

    def _forget(self, key: str) -> None:
        if self.store is None:
            self._failures.pop(key, None)
            return
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM kiosk_staff_failures WHERE key = ?", (key,))

    def _new_session(self, staff: str) -> StaffSession:
        now = self.clock()
        for token in [t for t, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[token]
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]  # the oldest login goes first
        session = StaffSession(staff=staff, expires=now + self.session_s, token=secrets.token_urlsafe(32))
        self._sessions[session.token] = session
        return session
