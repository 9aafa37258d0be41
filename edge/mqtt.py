"""MQTT reporting (paho-mqtt 2.x): status birth/will, the outbox drain, inbound commands.

Topics (design.md §3): `motcua/v1/{site}/{device}/status` (retained), `…/{service}/state`
(retained), `…/{service}/event` (QoS 1), `…/{service}/cmd` in, `…/{service}/cmd/result` out.
paho keeps unacknowledged messages in memory only, so the SQLite outbox is the durable queue:
a row is marked published when its PUBACK arrives (`on_publish(mid)`), never before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge import phone, safejson, security
from edge.config import BrokerConfig
from edge.errors import CommandAuthError, CommandError, ConfigError
from edge.service import Service, check_command
from edge.store import Store

log = logging.getLogger(__name__)

TOPIC_ROOT = "motcua/v1"
MAX_COMMAND_BYTES = 16 * 1024
MAX_ID_LENGTH = 64
MAX_INFLIGHT = 200
DRAIN_BATCH = 500
COMMAND_RATE_PER_S = 5.0  # per service; a burst of COMMAND_BURST is allowed
COMMAND_BURST = 20
SESSION_EXPIRY_S = 7 * 86400
RECONNECT_MIN_S, RECONNECT_MAX_S = 1.0, 30.0


def topic_prefix(site: str, device: str) -> str:
    return f"{TOPIC_ROOT}/{site}/{device}"


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerAddress:
    """`mqtt://HOST[:PORT]` (1883) or `mqtts://HOST[:PORT]` (8883, TLS): the one parser of broker
    URLs, for devices, the monitor and the central service alike."""
    parsed = urlparse(url)
    try:
        port = parsed.port
    except ValueError as err:       # "Port out of range 0-65535", a port that is not a number
        raise ConfigError(f"broker url {url!r}: {err}") from err
    if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
        raise ConfigError(f"broker url {url!r}: expected mqtt://HOST:PORT or mqtts://HOST:PORT")
    tls = parsed.scheme == "mqtts"
    return BrokerAddress(parsed.hostname, port or (8883 if tls else 1883), tls)


# -- inbound commands ---------------------------------------------------------------------------

class RateLimited(CommandError):
    """Error raised when a service gets commands faster than COMMAND_RATE_PER_S."""


PAYLOAD_ERRORS = {     # safejson reasons, as the device answers them
    "not_json": "payload is not UTF-8 JSON", "not_object": "payload must be a JSON object",
    "too_deep": "payload nested too deeply", "bad_number": "payload holds a number JSON cannot carry",
    "bad_string": "payload holds a string that is not plain text",
}


class MalformedCommand(CommandError):
    """Error raised for a command payload that cannot be run; `cmd_id` is its id when usable."""

    def __init__(self, message: str, cmd_id: str | None = None):
        super().__init__(message)
        self.cmd_id = cmd_id


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float]):
        self.rate, self.burst, self.clock = rate_per_s, burst, clock
        self.tokens, self.updated = float(burst), clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class CommandDispatcher:
    """Validates, authenticates, deduplicates and executes `…/{service}/cmd` messages.

    The reply goes through the outbox to `…/{service}/cmd/result`. A command id is recorded as
    `started` before execution and `done` with its result after, so a repeated id is answered
    again and never executed twice, even across a `kill -9` in the middle.
    """

    def __init__(self, store: Store, services: dict[str, Service], *, site: str, device: str,
                 command_key: bytes | None = None, max_age_s: float = 60.0,
                 clock: Callable[[], float] = time.time):
        self.store, self.services = store, services
        self.site, self.device = site, device
        self.command_key, self.max_age_s, self.clock = command_key, max_age_s, clock
        self._buckets: dict[str, TokenBucket] = {}
        self.refused = 0
        self.malformed = 0   # payloads that were not a usable command (answered, never run)

    async def dispatch(self, service_name: str, payload: bytes) -> dict:
        """Handle one inbound command; returns the result that was queued for publishing."""
        try:
            cmd = self._parse(payload)
        except MalformedCommand as err:   # answered (under its id when it had a usable one), never run
            self.malformed += 1
            return self._reply(service_name, {"id": err.cmd_id}, {"ok": False, "error": str(err)}, record=False)
        cmd_id = cmd["id"]
        previous = self.store.query("SELECT state, result FROM commands WHERE id = ?", (cmd_id,))
        if previous:
            return self._answer_again(service_name, cmd, previous[0])
        try:
            service, args = self._check(service_name, cmd)
        except RateLimited as err:  # not recorded: the sender may retry the same id later
            return self._reply(service_name, cmd, {"ok": False, "error": str(err)}, record=False)
        except CommandError as err:
            return self._reply(service_name, cmd, {"ok": False, "error": str(err)})
        with self.store.transaction() as tx:
            tx.execute(
                "INSERT INTO commands(id, service, type, state, received) VALUES (?, ?, ?, 'started', ?)",
                (cmd_id, service_name, cmd["type"], self.clock()),
            )
            # phone.redact: a citizen's number or PIN in the args is kept masked (design §3).
            tx.audit("mqtt", "command_received", id=cmd_id, service=service_name, type=cmd["type"],
                     args=phone.redact(args))
        try:
            fields = await service.handle_command(cmd["type"], args, cmd_id=cmd_id) or {}
            result = {"ok": True, **fields}
        except CommandError as err:
            result = {"ok": False, "error": str(err)}
        except Exception as err:  # the service failed: answer, log, keep serving
            log.exception("command %s %s on %s failed", cmd_id, cmd["type"], service_name)
            result = {"ok": False, "error": f"{type(err).__name__}: {err}"}
        return self._reply(service_name, cmd, result)

    def _parse(self, payload: bytes) -> dict:
        """The command object, or MalformedCommand whatever the bytes (deep nesting, NaN/1e999,
        wrong types...): a malformed command is answered with a clear error, never crashes the
        dispatcher and never holds up the commands after it."""
        if len(payload) > MAX_COMMAND_BYTES:
            raise MalformedCommand(f"payload too large: {len(payload)} bytes, max {MAX_COMMAND_BYTES}")
        try:
            cmd = safejson.loads_object(payload)
        except safejson.UnsafeJson as err:
            raise MalformedCommand(f"{PAYLOAD_ERRORS.get(err.reason, 'bad payload')}: {err.detail}",
                                   safejson.peek_id(payload)) from err
        cmd_id = cmd.get("id")
        if not isinstance(cmd_id, str) or not 0 < len(cmd_id) <= MAX_ID_LENGTH:
            raise MalformedCommand(f"'id' must be a string of 1..{MAX_ID_LENGTH} characters, found {cmd_id!r:.80}")
        # From here the id is usable: errors are answered under it, so central can match them.
        if not isinstance(cmd.get("type"), str):
            raise MalformedCommand(f"'type' must be a string, found {type(cmd.get('type')).__name__}", cmd_id)
        cmd.setdefault("args", {})
        if "ts" in cmd and (not isinstance(cmd["ts"], (int, float)) or isinstance(cmd["ts"], bool)):
            raise MalformedCommand(f"'ts' must be a number (seconds since the epoch), found {cmd['ts']!r:.40}", cmd_id)
        return cmd

    def _check(self, service_name: str, cmd: dict) -> tuple[Service, dict]:
        service = self.services.get(service_name)
        if service is None:
            raise CommandError(f"unknown service '{service_name}' (running: {sorted(self.services)})")
        args = check_command(service, cmd["type"], cmd["args"])
        if cmd["type"] in service.signed_commands:
            self._authenticate(service_name, cmd)
        bucket = self._buckets.setdefault(service_name, TokenBucket(COMMAND_RATE_PER_S, COMMAND_BURST, self.clock))
        if not bucket.take():
            raise RateLimited(f"rate limited: more than {COMMAND_RATE_PER_S:g} commands/s for {service_name}")
        return service, args

    def _authenticate(self, service_name: str, cmd: dict) -> None:
        if self.command_key is None:
            raise CommandAuthError("signed command refused: no command key configured (broker.command_key_file)")
        try:
            security.check_signature(self.command_key, self.site, self.device, service_name, cmd,
                                     now=self.clock(), max_age_s=self.max_age_s)
        except CommandAuthError:
            self.refused += 1
            with self.store.transaction() as tx:
                tx.audit("mqtt", "command_refused", id=cmd["id"], service=service_name, type=cmd["type"])
            raise

    def _answer_again(self, service_name: str, cmd: dict, row: Any) -> dict:
        if row["state"] == "done":
            result = {**json.loads(row["result"]), "duplicate": True}
        else:  # started, then the process died: the outcome is unknown, never re-execute
            result = {"ok": False, "error": "interrupted by a restart: outcome unknown, check the state", "duplicate": True}
        with self.store.transaction() as tx:
            tx.audit("mqtt", "command_repeated", id=cmd["id"], service=service_name, type=cmd["type"])
            tx.publish(f"{service_name}/cmd/result", {"id": cmd["id"], **result})
        return {"id": cmd["id"], **result}

    def _reply(self, service_name: str, cmd: dict | None, result: dict, *, record: bool = True) -> dict:
        cmd_id = cmd["id"] if cmd else None
        if not result["ok"]:
            log.warning("command %s on %s refused: %s", cmd_id, service_name, result["error"])
        with self.store.transaction() as tx:
            if record and cmd is not None:
                tx.execute(
                    "INSERT INTO commands(id, service, type, state, result, received) VALUES (?, ?, ?, 'done', ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET state = 'done', result = excluded.result",
                    (cmd_id, service_name, cmd["type"], json.dumps(result, ensure_ascii=False), self.clock()),
                )
            tx.publish(f"{service_name}/cmd/result", {"id": cmd_id, **result})
        return {"id": cmd_id, **result}


# -- the reporter -------------------------------------------------------------------------------

class Reporter:
    """Owns the paho client: birth/will, draining the outbox in order, receiving commands."""

    def __init__(self, broker: BrokerConfig, store: Store, *, site: str, device: str, version: str,
                 on_command: Callable[[str, bytes], None] | None = None, clock: Callable[[], float] = time.time,
                 reconnect_s: tuple[float, float] = (RECONNECT_MIN_S, RECONNECT_MAX_S)):
        self.broker, self.store, self.clock = broker, store, clock
        self.reconnect_min_s, self.reconnect_max_s = reconnect_s  # paho's first and longest wait to reconnect
        self.site, self.device, self.version = site, device, version
        self.prefix = topic_prefix(site, device)
        self.on_command = on_command
        self.address = parse_broker_url(broker.url)
        self.connected = threading.Event()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._inflight: dict[int, int] = {}  # mid -> outbox row_id
        self._acked: deque[int] = deque()
        self._early_acks: set[int] = set()
        # mids of the status messages (published outside the outbox) awaiting their PUBACK: that
        # PUBACK must not be kept as an early ack, which an outbox row given the same mid after
        # paho's mids wrap (65,535) would take as its own and be marked published unacknowledged.
        self._status_mids: set[int] = set()
        self._lock = threading.Lock()  # guards _inflight and the mid sets; never held around publish()
        self._last_sent = 0
        self._services: dict[str, str] = {}
        self._thread: threading.Thread | None = None
        self.client = self._make_client()
        store.on_commit(self._wake.set)

    # -- setup ---------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"edge-{self.site}-{self.device}",
                             protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.reconnect_delay_set(self.reconnect_min_s, self.reconnect_max_s)
        if self.broker.username:
            client.username_pw_set(self.broker.username, _read_secret(self.broker.password_file))
        if self.address.tls:
            client.tls_set(ca_certs=self.broker.ca_file, certfile=self.broker.cert_file,
                           keyfile=self.broker.key_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.will_set(f"{self.prefix}/status", self._status_payload("offline"), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S  # keep commands queued while we are away
        self.client.connect_async(self.address.host, self.address.port, keepalive=self.broker.keepalive_s,
                                  clean_start=False, properties=props)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._drain_loop, name="edge-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Flush what we can, publish `offline` ourselves (the will is not sent on a clean stop)."""
        deadline = time.monotonic() + timeout_s
        while self.connected.is_set() and self.store.pending_count() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        self._stopping.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=2)
        self._flush_acks()
        if self.connected.is_set():
            info = self._publish_status("offline")
            try:
                info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    # -- status --------------------------------------------------------------------------------
    def set_services(self, services: dict[str, str]) -> None:
        """Publish the retained status when a service's health changes (or on the timer)."""
        self._services = dict(services)
        if self.connected.is_set():
            self._publish_status("online")

    def _publish_status(self, state: str) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(f"{self.prefix}/status", self._status_payload(state), qos=1, retain=True)
        if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # queued: a PUBACK will come
            with self._lock:
                if info.mid in self._early_acks:  # it came already, before we could note the mid
                    self._early_acks.discard(info.mid)
                else:
                    self._status_mids.add(info.mid)
        return info

    def _status_payload(self, state: str) -> str:
        return json.dumps({"state": state, "ts": self.clock(), "version": self.version,
                           "services": self._services}, separators=(",", ":"))

    # -- paho callbacks (network thread: never block here) -------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker %s refused the connection: %s", self.broker.url, reason_code)
            return
        log.info("connected to %s", self.broker.url)
        client.subscribe(f"{self.prefix}/+/cmd", qos=1)
        self._publish_status("online")
        self.connected.set()
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set() and not self._stopping.is_set():
            log.warning("disconnected from %s: %s (will reconnect)", self.broker.url, reason_code)
        self.connected.clear()
        # paho's backoff doubles without jitter: spread a fleet's reconnects after a broker restart.
        client.reconnect_delay_set(self.reconnect_min_s * random.uniform(0.5, 1.5),
                                   self.reconnect_max_s * random.uniform(0.8, 1.2))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            row_id = self._inflight.pop(mid, None)
            if row_id is None and mid in self._status_mids:
                self._status_mids.discard(mid)
            elif row_id is None:  # the PUBACK beat `_send` (or `_publish_status`) recording the mid
                self._early_acks.add(mid)
        if row_id is not None:
            self._acked.append(row_id)
            self._wake.set()

    def _on_message(self, client, userdata, msg) -> None:
        parts = msg.topic.split("/")
        if len(parts) == 6 and parts[5] == "cmd" and self.on_command:
            self.on_command(parts[4], msg.payload)

    # -- the drain thread ----------------------------------------------------------------------
    def _drain_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            self._flush_acks()
            if not self.connected.is_set():
                continue
            while self.connected.is_set() and not self._stopping.is_set():
                with self._lock:
                    room = MAX_INFLIGHT * 4 - len(self._inflight)
                if room <= 0:
                    break
                rows = self.store.pending(limit=min(room, DRAIN_BATCH), after=self._last_sent)
                if not rows:
                    break
                for row_id, topic, payload, qos, retain in rows:
                    if not self._send(row_id, topic, payload, qos, retain):
                        break
                self._flush_acks()

    def _send(self, row_id: int, topic: str, payload: str, qos: int, retain: bool) -> bool:
        # Never hold our lock around publish(): paho calls on_publish while holding its own
        # message mutex, and publish() takes that mutex (paho #226, #603): a deadlock.
        info = self.client.publish(f"{self.prefix}/{topic}", payload, qos=qos, retain=retain)
        # While disconnected paho still queues a QoS 1 message (rc NO_CONN) and sends it after
        # the next CONNACK, so that row counts as sent; a QoS 0 one is dropped and retried.
        queued = info.rc == mqtt.MQTT_ERR_SUCCESS or (qos > 0 and info.rc == mqtt.MQTT_ERR_NO_CONN)
        if not queued:
            return False
        with self._lock:
            if qos == 0 or info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
                self._acked.append(row_id)
            else:
                self._inflight[info.mid] = row_id
        self._last_sent = row_id
        return True

    def _flush_acks(self) -> None:
        done = []
        while self._acked:
            done.append(self._acked.popleft())
        self.store.mark_published(done)


def _read_secret(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ConfigError(f"broker.password_file {path}: {err.strerror}") from err
