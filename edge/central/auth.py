"""Who may use the office dashboard: the staff file, PIN hashes, roles, sites, lockout, sessions.

The staff file (`edge central run --staff FILE`) has one person or script per line:

    TOKEN ROLE [sites=SITE,SITE] NAME…                  a bearer token (scripts, the JSON API)
    login STAFF_ID PIN_HASH ROLE [sites=SITE,…] NAME…   a login for the dashboard's login page

Roles are `viewer` (read), `operator` (read + remote commands) and `admin` (everything). Without
`sites=` a line covers every site. PIN hashes are PBKDF2-SHA256 (`edge central staff-hash`
prints one). Sessions and failed-login counts live in PostgreSQL (tables `web_sessions` and
`staff_lockout`), so a restart neither logs everyone out nor forgets a lockout.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from edge import pins
from edge.errors import ConfigError
from edge.pins import check_pin

ROLES = ("viewer", "operator", "admin")
COMMAND_ROLES = ("operator", "admin")
# Event and command fields that carry a citizen's dossier (receipt) code: shown to the roles that
# hand results over (operator, admin); a viewer sees them masked.
DOSSIER_FIELDS = ("receipt", "dossier", "appointment", "appointment_code")
MIN_TOKEN_CHARS = 16
PBKDF2_ITERATIONS = 200_000
MAX_FAILURES = 5                 # failed logins in a row before the staff id is locked
LOCKOUT_S = 15 * 60
SESSION_S = 12 * 3600            # one working day; a new login after that
STAFF_ID_MAX = 64


@dataclass(frozen=True)
class Staff:
    """A signed-in person or a token: what they may see and do."""

    id: str
    name: str
    role: str
    sites: frozenset | None = None       # None: every site

    @property
    def may_command(self) -> bool:
        return self.role in COMMAND_ROLES

    @property
    def sees_dossiers(self) -> bool:
        return self.role in COMMAND_ROLES

    def may_see(self, site: str) -> bool:
        return self.sites is None or site in self.sites


@dataclass(frozen=True)
class Login:
    staff: Staff
    pin_hash: str


@dataclass(frozen=True)
class StaffFile:
    tokens: dict          # sha256(token) hex -> Staff
    logins: dict          # staff id -> Login

    def by_token(self, token: str) -> Staff | None:
        if not token:
            return None
        return self.tokens.get(_token_key(token))


def _token_key(token: str) -> str:
    # Looked up by hash, so the dict lookup's timing says nothing about the token itself.
    return hashlib.sha256(token.encode()).hexdigest()


def hash_pin(pin: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """`pbkdf2_sha256$ITERATIONS$SALT$HASH` (salt and hash base64); the scheme is edge.pins."""
    return pins.hash_pin(pin, iterations=iterations, encoding="base64", salt=salt, salt_bytes=16)


# An unknown staff id still costs one PBKDF2 run, so timing does not tell which ids exist.
_DUMMY_HASH = hash_pin("not-a-pin", iterations=PBKDF2_ITERATIONS, salt=b"edge-dummy-salt!")


def verify_login(staff_file: StaffFile, staff_id: str, pin: str) -> Staff | None:
    login = staff_file.logins.get(staff_id)
    ok = check_pin(pin, login.pin_hash if login else _DUMMY_HASH)
    return login.staff if ok and login else None


def _role_sites_name(where: str, fields: list[str]) -> tuple[str, frozenset | None, str]:
    """ROLE [sites=a,b] NAME… -> (role, sites, name), with errors naming the line."""
    if not fields:
        raise ConfigError(f"{where}: missing ROLE and NAME")
    role, rest = fields[0], fields[1:]
    if role not in ROLES:
        raise ConfigError(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
    sites = None
    if rest and rest[0].startswith("sites="):
        names = [s for s in rest[0].removeprefix("sites=").split(",") if s]
        if not names:
            raise ConfigError(f"{where}: sites= names no site (expected sites=SITE,SITE)")
        sites, rest = frozenset(names), rest[1:]
    if not rest:
        raise ConfigError(f"{where}: missing NAME after the role")
    return role, sites, " ".join(rest)


def parse_staff(text: str, source: str = "staff file") -> StaffFile:
    tokens, logins = {}, {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where, fields = f"{source}:{number}", line.split()
        if fields[0] == "login":
            if len(fields) < 5:
                raise ConfigError(f"{where}: expected 'login STAFF_ID PIN_HASH ROLE [sites=…] NAME'")
            staff_id, pin_hash = fields[1], fields[2]
            if not pins.looks_hashed(pin_hash):
                raise ConfigError(f"{where}: PIN hash must be pbkdf2_sha256$… (make one with `edge central staff-hash`)")
            if staff_id in logins:
                raise ConfigError(f"{where}: staff id {staff_id!r} appears twice")
            role, sites, name = _role_sites_name(where, fields[3:])
            logins[staff_id] = Login(Staff(staff_id, name, role, sites), pin_hash)
            continue
        if len(fields[0]) < MIN_TOKEN_CHARS:
            raise ConfigError(f"{where}: expected 'TOKEN ROLE NAME' with a token of {MIN_TOKEN_CHARS}+ characters")
        role, sites, name = _role_sites_name(where, fields[1:])
        tokens[_token_key(fields[0])] = Staff(f"token:{name}", name, role, sites)
    return StaffFile(tokens, logins)


def load_staff(path: str | None) -> StaffFile:
    """The staff file, or an empty one (nobody can read the dashboard) when none is given."""
    if not path:
        return StaffFile({}, {})
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"--staff {path}: {err.strerror or err}") from err
    return parse_staff(text, path)


def redact(value, staff: Staff):
    """A copy of an event/command body with dossier codes masked for roles that do not need them."""
    if staff.sees_dossiers:
        return value
    if isinstance(value, dict):
        return {k: (_mask(v) if k in DOSSIER_FIELDS else redact(v, staff)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, staff) for v in value]
    return value


def _mask(value) -> str:
    text = str(value)
    return "•••" + text[-2:] if len(text) > 4 else "•••"


# -- PostgreSQL: sessions and lockout (tables created by edge.central.db migrations) ---------
def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def locked_until(conn, staff_id: str) -> float | None:
    row = await (await conn.execute(
        "SELECT locked_until FROM staff_lockout WHERE staff_id = %s AND locked_until > now()", (staff_id,))).fetchone()
    return row[0].timestamp() if row else None


async def record_failure(conn, staff_id: str) -> int:
    """Count a failed login; the MAX_FAILURES-th in a row locks the id for LOCKOUT_S. Returns the count."""
    row = await (await conn.execute(
        "INSERT INTO staff_lockout AS l (staff_id, failures, last_failure) VALUES (%s, 1, now()) "
        "ON CONFLICT (staff_id) DO UPDATE SET failures = l.failures + 1, last_failure = now() "
        "RETURNING failures", (staff_id,))).fetchone()
    if row[0] >= MAX_FAILURES:
        await conn.execute("UPDATE staff_lockout SET locked_until = now() + %s, failures = 0 WHERE staff_id = %s",
                           (dt.timedelta(seconds=LOCKOUT_S), staff_id))
    return row[0]


async def clear_failures(conn, staff_id: str) -> None:
    await conn.execute("DELETE FROM staff_lockout WHERE staff_id = %s", (staff_id,))


async def new_session(conn, staff_id: str) -> tuple[str, str]:
    """(session id for the cookie, CSRF token for the forms); only a hash of the id is stored."""
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    await conn.execute("DELETE FROM web_sessions WHERE expires_at < now()")
    await conn.execute("INSERT INTO web_sessions (id_hash, staff_id, csrf, expires_at) VALUES (%s, %s, %s, now() + %s)",
                       (_digest(session_id), staff_id, csrf, dt.timedelta(seconds=SESSION_S)))
    return session_id, csrf


async def session(conn, session_id: str) -> tuple[str, str] | None:
    """(staff id, CSRF token) of a live session, or None."""
    if not session_id or len(session_id) > 100:
        return None
    return await (await conn.execute(
        "SELECT staff_id, csrf FROM web_sessions WHERE id_hash = %s AND expires_at > now()",
        (_digest(session_id),))).fetchone()


async def end_session(conn, session_id: str) -> None:
    await conn.execute("DELETE FROM web_sessions WHERE id_hash = %s", (_digest(session_id),))


# -- `edge demo --central`: fixed, printed and listed in the README; never for a real office ----
DEMO_TOKEN = "demo-admin-token-not-for-production"
DEMO_LOGINS = (("quanly", "123456", "admin", "Quản lý (demo)"),
               ("vanhanh", "246810", "operator", "Nhân viên vận hành (demo)"),
               ("xem", "135790", "viewer", "Người xem (demo)"))


def demo_staff_text() -> str:
    lines = [f"# edge demo --central: demo logins only\n{DEMO_TOKEN} admin Demo API token\n"]
    lines += [f"login {sid} {hash_pin(pin, iterations=10_000)} {role} {name}\n" for sid, pin, role, name in DEMO_LOGINS]
    return "".join(lines)
