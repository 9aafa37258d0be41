"""Signed remote commands: publish `…/{service}/cmd`, wait for `…/{service}/cmd/result`.

The command is signed with the device's own HMAC key (`edge.security.sign_command`: timestamp,
nonce, signature over site/device/service/id/type/args/ts/nonce), so the device can refuse a
forged, replayed, stale or misdirected one. A result with another id is ignored.

Central audit (`commands` table): a command is recorded as `sent` *before* it is published
(`Journal.sent`; if that write fails, nothing is published), then `ok`, `refused` or `timeout`
(`Journal.outcome`): a door that opened while the link dropped still has its row.

Who may send what (for the dashboard and the API, which call these):
- `check_allowed(role, sites, site)`: only `operator`/`admin`, and only to a site of `sites`
  (None = every site); raises `CommandForbidden`.
- `needs_confirmation(service, type)`: a command that moves a locker door
  (`edge.locker.commands.DOOR_COMMANDS`: open, load, audit_open_all) needs a second confirmation.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Iterable, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge import phone
from edge.central.topics import NAME_RE, PREFIX
from edge.errors import CommandError, ConfigError
from edge.locker.commands import moves_a_door
from edge.mqtt import parse_broker_url
from edge.safejson import UnsafeJson, loads_object
from edge.security import load_key, sign_command

log = logging.getLogger(__name__)

COMMAND_EXPIRY_S = 60        # MQTT message expiry: a stale open is never delivered after an outage
CONNECT_TIMEOUT_S = 10.0
COMMAND_ROLES = ("operator", "admin")
STATUSES = ("sent", "ok", "refused", "timeout")


class CommandForbidden(CommandError):
    """Error raised when a staff member or token may not command that site (or at all)."""


def check_allowed(role: str, sites: Iterable[str] | None, site: str) -> None:
    """Raise CommandForbidden unless `role` may send commands and `site` is one of `sites`
    (None: every site). Called by the dashboard before asking for a confirmation, and again by
    `CentralApp.send_command(..., sites=…)` right before sending."""
    if role not in COMMAND_ROLES:
        raise CommandForbidden(f"role {role!r} may not send commands (needs one of {', '.join(COMMAND_ROLES)})")
    if sites is not None and site not in set(sites):
        raise CommandForbidden(f"not allowed to command site {site!r} (allowed: {', '.join(sorted(sites)) or 'none'})")


def needs_confirmation(service: str, cmd_type: str) -> bool:
    """True for a command that moves a door: the dashboard asks for a second confirmation."""
    return moves_a_door(service, cmd_type)


class Journal(Protocol):
    """Where `send` records a command: `sent` before publishing, then its outcome."""

    def sent(self, cmd: dict, site: str, device: str, service: str) -> None: ...

    def outcome(self, cmd: dict, status: str, result: dict | None) -> None: ...


class PgJournal:
    """The `commands` table of the central database (one short connection per write)."""

    def __init__(self, dsn: str, actor: str):
        self.dsn, self.actor = dsn, actor

    def sent(self, cmd: dict, site: str, device: str, service: str) -> None:
        from edge.central import db
        with db.connect(self.dsn) as conn:
            record_sent(conn, cmd, site, device, service, self.actor)

    def outcome(self, cmd: dict, status: str, result: dict | None) -> None:
        from edge.central import db
        try:
            with db.connect(self.dsn) as conn:
                record_outcome(conn, cmd["id"], status, result)
        except Exception as err:     # the command went out: never hide its result from the caller
            log.error("central: could not record outcome %s of command %s: %s", status, cmd["id"], err)


class KeyDir:
    """Device keys on the central server: `DIR/{site}/{device}.key` (0600, hex)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def key_for(self, site: str, device: str) -> bytes:
        for name in (f"{site}/{device}.key", f"{site}.{device}.key"):
            path = self.directory / name
            if path.exists():
                return load_key(path)
        raise ConfigError(f"no command key for {site}/{device} in {self.directory} "
                          f"(expected {self.directory}/{site}/{device}.key)")


def build_command(key: bytes, site: str, device: str, service: str, cmd_type: str, args: dict,
                  *, now: float | None = None) -> dict:
    for label, value in (("site", site), ("device", device), ("service", service), ("type", cmd_type)):
        if not isinstance(value, str) or not NAME_RE.match(value):
            raise CommandError(f"{label} {value!r} is not a name of [a-z0-9_-]")
    if not isinstance(args, dict):
        raise CommandError(f"args must be a JSON object, got {type(args).__name__}")
    cmd = {"id": uuid.uuid4().hex, "type": cmd_type, "args": args, "ts": time.time() if now is None else now}
    return sign_command(key, site, device, service, cmd)


def send(broker: str, key: bytes, site: str, device: str, service: str, cmd_type: str, args: dict,
         *, timeout_s: float = 10.0, username: str | None = None, password: str | None = None,
         ca_file: str | None = None, journal: Journal | None = None) -> tuple[dict, dict]:
    """Publish one signed command and return (command, result); CommandError on timeout.

    With a `journal`, the command is recorded as `sent` before it is published (a failure to
    record raises, and nothing is sent), then as `ok`/`refused` or `timeout`."""
    cmd = build_command(key, site, device, service, cmd_type, args)
    base = f"{PREFIX}{site}/{device}/{service}/cmd"
    done, subscribed, connected = threading.Event(), threading.Event(), threading.Event()
    result: dict = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        if not reason_code.is_failure:
            connected.set()
            client.subscribe(base + "/result", qos=1)

    def on_message(client, userdata, msg):
        try:   # safejson: a nested payload raised RecursionError, which killed this thread
            data = loads_object(msg.payload)
        except UnsafeJson:
            return
        if data.get("id") == cmd["id"]:
            result.update(data)
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"central-cmd-{cmd['id'][:12]}",
                         protocol=mqtt.MQTTv5)
    if username:
        client.username_pw_set(username, password)
    client.on_connect = on_connect
    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    address = parse_broker_url(broker)
    if address.tls:
        client.tls_set(ca_certs=ca_file)
    client.connect_async(address.host, address.port, keepalive=30)
    client.loop_start()
    try:
        if not subscribed.wait(CONNECT_TIMEOUT_S):
            raise CommandError(f"broker {broker} not reachable within {CONNECT_TIMEOUT_S:g} s")
        if journal is not None:
            journal.sent(cmd, site, device, service)
        props = Properties(PacketTypes.PUBLISH)
        props.MessageExpiryInterval = COMMAND_EXPIRY_S
        client.publish(base, json.dumps(cmd, ensure_ascii=False), qos=1, properties=props)
        if not done.wait(timeout_s):
            if journal is not None:
                journal.outcome(cmd, "timeout", None)
            raise CommandError(f"no result from {site}/{device}/{service} for command {cmd['id']} "
                               f"within {timeout_s:g} s (device offline?)")
        if journal is not None:
            journal.outcome(cmd, "ok" if result.get("ok") is True else "refused", result)
        return cmd, result
    finally:
        client.disconnect()
        client.loop_stop()


def record_sent(conn, cmd: dict, site: str, device: str, service: str, actor: str) -> None:
    """Audit a command centrally before it is published: who sends what to which device."""
    conn.execute(
        "INSERT INTO commands (id, site, device, service, type, args, actor, status) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, 'sent')",
        # phone.redact: a citizen's number in a `load` (the SMS) is journalled masked, like on the device.
        (cmd["id"], site, device, service, cmd["type"], json.dumps(phone.redact(cmd["args"]), ensure_ascii=False),
         actor))


def record_outcome(conn, cmd_id: str, status: str, result: dict | None) -> None:
    """`ok`/`refused` with the device's answer, or `timeout` (no answer: the door may have moved)."""
    if status not in STATUSES:
        raise ValueError(f"command status {status!r}: expected one of {STATUSES}")
    conn.execute(
        "UPDATE commands SET status = %s, result = COALESCE(%s::jsonb, result), "
        "result_at = CASE WHEN %s::jsonb IS NULL THEN result_at ELSE now() END WHERE id = %s",
        (status, None if result is None else json.dumps(result, ensure_ascii=False),
         None if result is None else json.dumps(result, ensure_ascii=False), cmd_id))
