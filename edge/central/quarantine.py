"""Poison messages and the device registry: what central refuses to store, and who may send.

**Quarantine.** A message that fails parsing or validation (`topics.BadMessage`, whatever the
bytes: nesting, size, NaN/Infinity, wrong types, unknown topic shapes), that PostgreSQL refuses
alone, or that comes from a (site, device) the registry does not allow, is written to the
`quarantine` table — topic, reason, detail, SHA-256 and size of the payload, the device named by
the topic, when — in the same transaction as the good messages of its batch, and then
acknowledged like them: it is never redelivered, never retried, and never holds up the messages
after it. The payload itself is not kept (it may carry what the redaction of events would have
removed); the hash lets an operator match it with the device's own logs.

Each quarantined message counts towards a per-device alarm `poison_messages`: opened (once, and
notified like any alarm) when a device sent `ALARM_COUNT` of them within `ALARM_WINDOW_S`, and
cleared when it has sent none for that long.

**Registry.** `device_registry` lists the provisioned (site, device) pairs. While it is empty
(a lab, the demo) every well-formed message is accepted. Once it holds a row, a message is
stored only if its topic's (site, device) is registered: a device id registered under another
site is quarantined as `wrong_site` (the phantom office of `motcua/v1/any-site/kiosk-01/…`), an
unknown pair as `unregistered`. The broker ACL binds the device level of a topic to the
publisher's account (deploy/mosquitto/make-acl.sh binds the site level too); the registry is
central's own check, for brokers that cannot.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Iterable

import psycopg

from edge.central.topics import NAME_RE, BadMessage, sender

log = logging.getLogger(__name__)

ALARM_KIND = "poison_messages"
ALARM_COUNT = 10              # quarantined messages from one device ...
ALARM_WINDOW_S = 3600.0       # ... within this window open the alarm; none for this long clears it
REGISTRY_REFRESH_S = 5.0      # how stale the cached registry may be (a miss re-reads it sooner)
MAX_TEXT = 300                # characters kept of a topic or a detail
KEEP_DAYS = 90                # dead letters older than this are dropped


@dataclass(frozen=True)
class Quarantined:
    site: str
    device: str
    topic: str
    reason: str
    detail: str
    sha256: str
    size: int

    @classmethod
    def of(cls, topic: str, payload: bytes, reason: str, detail: str) -> "Quarantined":
        site, device = sender(topic)
        return cls(site, device, _clean(topic), reason, _clean(detail), hashlib.sha256(payload).hexdigest(), len(payload))

    @classmethod
    def from_error(cls, topic: str, payload: bytes, err: BadMessage) -> "Quarantined":
        return cls.of(topic, payload, err.reason, err.detail)


def _clean(text: str) -> str:
    """Text PostgreSQL accepts whatever a device put in it (no NUL, no lone surrogate), cut short."""
    text = str(text)[:MAX_TEXT].replace("\x00", "\\0")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def record(conn: psycopg.Connection, items: list[Quarantined], *, instance: str,
           registered_site: dict[str, str] | None = None) -> list[dict]:
    """Insert the quarantined messages (inside the caller's transaction); return the alarms opened.

    `registered_site` maps a device id to the site it is provisioned at: a `wrong_site` message's
    alarm goes to that office, not to the phantom one the topic names."""
    if not items:
        return []
    conn.cursor().executemany(
        "INSERT INTO quarantine (site, device, topic, reason, detail, sha256, size, instance) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [(q.site, q.device, q.topic, q.reason, q.detail, q.sha256, q.size, instance) for q in items])
    alarms = []
    for site, device in sorted({(q.site, q.device) for q in items if q.device}):
        alarm = _maybe_alarm(conn, site, device, (registered_site or {}).get(device, site))
        if alarm:
            alarms.append(alarm)
    return alarms


def _maybe_alarm(conn: psycopg.Connection, site: str, device: str, alarm_site: str) -> dict | None:
    count, reasons = conn.execute(
        "SELECT count(*), array_agg(DISTINCT reason) FROM quarantine WHERE site = %s AND device = %s "
        "AND received > now() - make_interval(secs => %s)", (site, device, ALARM_WINDOW_S)).fetchone()
    if count < ALARM_COUNT:
        return None
    detail = {"quarantined": count, "window_s": ALARM_WINDOW_S, "reasons": sorted(reasons or []), "topic_site": site}
    row = conn.execute(
        "INSERT INTO alarms (site, device, service, kind, subject, opened_at, detail) "
        "VALUES (%s, %s, '', %s, '', now(), %s) "
        "ON CONFLICT (site, device, service, kind, subject) WHERE cleared_at IS NULL DO NOTHING RETURNING id",
        (alarm_site, device, ALARM_KIND, json.dumps(detail))).fetchone()
    if row is None:
        return None          # already open
    log.warning("central: %s/%s sent %d malformed or refused messages within %g s (reasons: %s)",
                alarm_site, device, count, ALARM_WINDOW_S, ", ".join(detail["reasons"]))
    return {"id": row[0], "site": alarm_site, "device": device, "service": "", "kind": ALARM_KIND,
            "subject": "", "ts": time.time(), "detail": detail}


def clear_quiet_alarms(conn: psycopg.Connection) -> int:
    """Clear the `poison_messages` alarms of devices quiet for a whole window (periodic)."""
    rows = conn.execute(
        "UPDATE alarms a SET cleared_at = now() WHERE kind = %s AND cleared_at IS NULL "
        "AND opened_at < now() - make_interval(secs => %s) AND NOT EXISTS (SELECT 1 FROM quarantine q "
        "WHERE q.device = a.device AND q.received > now() - make_interval(secs => %s)) RETURNING id",
        (ALARM_KIND, ALARM_WINDOW_S, ALARM_WINDOW_S)).fetchall()
    return len(rows)


def prune(conn: psycopg.Connection, keep_days: float = KEEP_DAYS) -> int:
    """Drop dead letters older than `keep_days` (hourly): a flood cannot fill the disk for ever."""
    return conn.execute("DELETE FROM quarantine WHERE received < now() - make_interval(days => %s)",
                        (int(keep_days),)).rowcount


async def recent(aconn, *, sites=None, limit: int = 200) -> list[dict]:
    """The newest dead letters (for the dashboard: `sites` None = every site), epoch seconds."""
    where, params = ("WHERE site = ANY(%s)", [sorted(sites)]) if sites is not None else ("", [])
    cur = await aconn.execute(
        f"SELECT id, extract(epoch FROM received) AS received, site, device, topic, reason, detail, sha256, size "
        f"FROM quarantine {where} ORDER BY id DESC LIMIT %s", (*params, limit))
    names = [c.name for c in cur.description]
    return [dict(zip(names, row)) for row in await cur.fetchall()]


# -- the registry -------------------------------------------------------------------------------

class Registry:
    """The provisioned (site, device) pairs, cached by the writer thread of one consumer."""

    def __init__(self, *, refresh_s: float = REGISTRY_REFRESH_S, clock=time.monotonic):
        self.refresh_s, self.clock = refresh_s, clock
        self._pairs: set[tuple[str, str]] = set()
        self._site_of: dict[str, str] = {}
        self._loaded_at = float("-inf")

    def load(self, conn: psycopg.Connection) -> None:
        self._pairs = {(s, d) for s, d in conn.execute("SELECT site, device FROM device_registry")}
        self._site_of = {}
        for site, device in sorted(self._pairs):
            self._site_of.setdefault(device, site)
        self._loaded_at = self.clock()

    def site_of(self) -> dict[str, str]:
        return dict(self._site_of)

    def verdict(self, conn: psycopg.Connection, site: str, device: str) -> tuple[str, str] | None:
        """None if (site, device) may send; else (reason, detail) for the quarantine."""
        age = self.clock() - self._loaded_at
        if age > self.refresh_s or ((site, device) not in self._pairs and age > 1.0):
            self.load(conn)           # a device provisioned a moment ago is accepted promptly
        if not self._pairs or (site, device) in self._pairs:
            return None
        if device in self._site_of:
            return "wrong_site", f"device {device!r} is provisioned at {self._site_of[device]!r}, not {site!r}"
        return "unregistered", f"{site}/{device} is not in the device registry"


def _check_names(site: str, device: str) -> None:
    for label, name in (("site", site), ("device", device)):
        if not NAME_RE.match(name or ""):
            raise ValueError(f"{label} {name!r} is not a name of [a-z0-9_-] (1-64 characters)")


def register(conn: psycopg.Connection, pairs: Iterable[tuple[str, str]], *, by: str = "cli") -> int:
    """Provision (site, device) pairs; returns how many were new."""
    pairs = list(pairs)
    for site, device in pairs:
        _check_names(site, device)
    added = 0
    with conn.transaction():
        for site, device in pairs:
            row = conn.execute("INSERT INTO device_registry (site, device, added_by) VALUES (%s, %s, %s) "
                               "ON CONFLICT DO NOTHING RETURNING 1", (site, device, by)).fetchone()
            added += row is not None
    return added


def unregister(conn: psycopg.Connection, site: str, device: str) -> bool:
    return conn.execute("DELETE FROM device_registry WHERE site = %s AND device = %s RETURNING 1",
                        (site, device)).fetchone() is not None


def registered(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return [tuple(r) for r in conn.execute("SELECT site, device FROM device_registry ORDER BY site, device")]


def read_devices_file(path: str) -> list[tuple[str, str]]:
    """`SITE DEVICE` per line (# comments): the provisioning list shared with deploy/mosquitto/make-acl.sh."""
    pairs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ValueError(f"{path}:{number}: expected 'SITE DEVICE', found {line!r}")
            try:
                _check_names(*parts)
            except ValueError as err:
                raise ValueError(f"{path}:{number}: {err}") from None
            pairs.append((parts[0], parts[1]))
    return pairs
