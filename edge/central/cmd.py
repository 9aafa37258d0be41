"""Signed remote commands: publish `…/{service}/cmd`, wait for `…/{service}/cmd/result`.

The command is signed with the device's own HMAC key (`edge.security.sign_command`: timestamp,
nonce, signature over site/device/service/id/type/args/ts/nonce), so the device can refuse a
forged, replayed, stale or misdirected one. A result with another id is ignored.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.central.topics import NAME_RE, PREFIX
from edge.errors import CommandError, ConfigError
from edge.mqtt import parse_broker_url
from edge.security import load_key, sign_command

COMMAND_EXPIRY_S = 60        # MQTT message expiry: a stale open is never delivered after an outage
CONNECT_TIMEOUT_S = 10.0


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
         ca_file: str | None = None) -> tuple[dict, dict]:
    """Publish one signed command and return (command, result); CommandError on timeout."""
    cmd = build_command(key, site, device, service, cmd_type, args)
    base = f"{PREFIX}{site}/{device}/{service}/cmd"
    done, subscribed, connected = threading.Event(), threading.Event(), threading.Event()
    result: dict = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        if not reason_code.is_failure:
            connected.set()
            client.subscribe(base + "/result", qos=1)

    def on_message(client, userdata, msg):
        try:
            data = json.loads(msg.payload)
        except ValueError:
            return
        if isinstance(data, dict) and data.get("id") == cmd["id"]:
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
        props = Properties(PacketTypes.PUBLISH)
        props.MessageExpiryInterval = COMMAND_EXPIRY_S
        client.publish(base, json.dumps(cmd, ensure_ascii=False), qos=1, properties=props)
        if not done.wait(timeout_s):
            raise CommandError(f"no result from {site}/{device}/{service} for command {cmd['id']} "
                               f"within {timeout_s:g} s (device offline?)")
        return cmd, result
    finally:
        client.disconnect()
        client.loop_stop()


def record(conn, cmd: dict, site: str, device: str, service: str, actor: str, result: dict | None) -> None:
    """Audit a command centrally (who sent what, to which device, and what came back)."""
    conn.execute(
        "INSERT INTO commands (id, site, device, service, type, args, actor, result, result_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, CASE WHEN %s::jsonb IS NULL THEN NULL ELSE now() END) "
        "ON CONFLICT (id) DO UPDATE SET result = EXCLUDED.result, result_at = EXCLUDED.result_at",
        (cmd["id"], site, device, service, cmd["type"], json.dumps(cmd["args"]), actor,
         None if result is None else json.dumps(result), None if result is None else json.dumps(result)),
    )
