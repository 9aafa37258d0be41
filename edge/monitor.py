"""`edge monitor`: live status and events of a site, for an operator at a terminal."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt

from edge import phone
from edge.mqtt import TOPIC_ROOT, parse_broker_url
from edge.safejson import UnsafeJson, loads_object


def describe(topic: str, payload: dict) -> str:
    """One readable line for a device message."""
    parts = topic.split("/")
    where = "/".join(parts[2:4])
    if parts[-1] == "status":
        services = " ".join(f"{k}={v}" for k, v in sorted(payload.get("services", {}).items()))
        return f"{where} is {payload.get('state')} (v{payload.get('version')}) {services}"
    service, kind = parts[4], "/".join(parts[5:])
    if kind == "event":
        details = " ".join(f"{k}={v}" for k, v in payload.items() if k not in ("id", "seq", "ts", "type"))
        return f"{where} {service}: #{payload.get('seq')} {payload.get('type')} {details}".rstrip()
    if kind == "cmd/result":
        outcome = "ok" if payload.get("ok") else f"error: {payload.get('error')}"
        return f"{where} {service}: command {payload.get('id')} {outcome}"
    return f"{where} {service} {kind}: {json.dumps(payload, ensure_ascii=False)[:200]}"


def watch(broker_url: str, site: str, on_line, stop: threading.Event, *, as_json: bool = False,
          show_state: bool = True) -> None:
    """Subscribe to a site's topics and call `on_line(text)` per message until `stop` is set."""
    address = parse_broker_url(broker_url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"edge-monitor-{time.time_ns()}")

    def on_connect(c, userdata, flags, reason_code, properties):
        c.subscribe(f"{TOPIC_ROOT}/{site}/#", qos=1)

    def on_message(c, userdata, msg):
        # safejson: a nested payload raised RecursionError, which killed paho's thread (silence after)
        try:
            payload = loads_object(msg.payload)
        except UnsafeJson as err:
            if err.reason != "not_object":
                on_line(f"{msg.topic}: (not JSON, {len(msg.payload)} bytes: {err.reason})")
            return
        if not show_state and msg.topic.endswith("/state"):
            return
        if msg.topic.endswith("/locker/notify"):  # a citizen's phone and PIN: never on a terminal
            payload = phone.redact(payload)
        if as_json:
            on_line(json.dumps({"topic": msg.topic, "payload": payload}, ensure_ascii=False))
            return
        try:
            on_line(describe(msg.topic, payload))
        except (AttributeError, IndexError, TypeError):   # a device's message of the wrong shape
            on_line(f"{msg.topic}: (unexpected shape, {len(msg.payload)} bytes)")

    client.on_connect, client.on_message = on_connect, on_message
    client.connect_async(address.host, address.port)
    client.loop_start()
    try:
        stop.wait()
    finally:
        client.disconnect()
        client.loop_stop()


def main(args) -> int:
    stop = threading.Event()
    if args.seconds:
        timer = threading.Timer(args.seconds, stop.set)
        timer.daemon = True  # Ctrl-C ends the monitor at once, not when --seconds runs out
        timer.start()
    try:
        watch(args.broker, args.site, lambda line: print(line, flush=True), stop, as_json=args.json)
    except KeyboardInterrupt:
        stop.set()
    return 0
