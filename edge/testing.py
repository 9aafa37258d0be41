"""Helpers for tests and demos that talk to a real broker: record messages, wait with deadlines."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any, Callable

import paho.mqtt.client as mqtt

from edge.localbroker import free_port  # noqa: F401  (one free_port for every test)
from edge.mqtt import parse_broker_url


class MqttRecorder:
    """Subscribes to `topic` and keeps every message as (topic, payload, retain); `wait_for` has a deadline."""

    def __init__(self, broker_url: str, topic: str = "motcua/v1/#", *, client_id: str | None = None,
                 persistent: bool = False):
        self.address = parse_broker_url(broker_url)
        self.topic = topic
        self.persistent = persistent  # MQTT 5 session kept by the broker: nothing missed while away
        self.messages: list[tuple[str, Any, bool]] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"rec-{time.time_ns()}",
                                  protocol=mqtt.MQTTv5 if persistent else mqtt.MQTTv311)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_disconnect = lambda *a: self._subscribed.clear()
        self.client.on_message = self._on_message

    def start(self, timeout_s: float = 10.0) -> "MqttRecorder":
        self.client.reconnect_delay_set(0.1, 0.5)
        if self.persistent:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            self.client.connect_async(self.address.host, self.address.port, clean_start=False, properties=props)
        else:
            self.client.connect_async(self.address.host, self.address.port)
        self.client.loop_start()
        if not self._subscribed.wait(timeout_s):
            raise TimeoutError(f"recorder could not subscribe to {self.topic} within {timeout_s} s")
        return self

    def resubscribed(self, timeout_s: float = 10.0) -> None:
        """After a broker restart: wait until the subscription is back."""
        if not self._subscribed.wait(timeout_s):
            raise TimeoutError("recorder did not resubscribe")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client, userdata, msg) -> None:
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            payload = msg.payload
        with self._cond:
            self.messages.append((msg.topic, payload, msg.retain))
            self._cond.notify_all()

    def matching(self, predicate: Callable[[str, Any], bool]) -> list[tuple[str, Any]]:
        with self._cond:
            return [(t, p) for t, p, _ in self.messages if predicate(t, p)]

    def wait_for(self, predicate: Callable[[str, Any], bool], count: int = 1, timeout_s: float = 10.0) -> list:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                found = [(t, p) for t, p, _ in self.messages if predicate(t, p)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"waited {timeout_s} s for {count} message(s), got {len(found)}")
                self._cond.wait(left)

    def publish(self, topic: str, payload: Any, qos: int = 1, retain: bool = False) -> None:
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        self.client.publish(topic, data, qos=qos, retain=retain).wait_for_publish(timeout=5)

    def __enter__(self) -> "MqttRecorder":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


async def until(predicate: Callable[[], bool], timeout_s: float = 5.0, step_s: float = 0.01,
                what: str = "condition") -> bool:
    """Wait in a test for a background step (a door wait, a face loop) with a deadline, never a bare
    sleep. Returns True, or raises AssertionError naming `what` after `timeout_s` of loop time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s} s")
        await asyncio.sleep(step_s)
    return True


class FakeClock:
    """A clock a test moves by hand: call it for the time; `sleep(s)` advances it instead of waiting."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds
