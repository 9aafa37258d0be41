"""Helpers for tests and demos that talk to a real broker: record messages, wait with deadlines."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any, Callable

import paho.mqtt.client as mqtt

from edge.localbroker import free_port  # noqa: F401  (one free_port for every test)
from edge.mqtt import parse_broker_url

# How long the helpers below wait by default. They return as soon as the condition holds, so this
# costs nothing when a test passes; it only has to outlast a busy 2-core CI machine, where a
# thread, a task or a child process can be kept off the CPU for seconds.
DEADLINE_S = 30.0


def occupy_port(port: int) -> socket.socket:
    """A listener on 127.0.0.1:`port` (use as a context manager): another process that took the
    port between `free_port()` and a server's bind, for the tests of what the server does then."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


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
        self._subacks = 0  # SUBACKs since start(): the first one, then one per reconnection
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"rec-{time.time_ns()}",
                                  protocol=mqtt.MQTTv5 if persistent else mqtt.MQTTv311)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(self.topic, qos=1)
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = lambda *a: self._subscribed.clear()
        self.client.on_message = self._on_message

    def start(self, timeout_s: float = DEADLINE_S) -> "MqttRecorder":
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

    def resubscribed(self, times: int = 1, timeout_s: float = DEADLINE_S) -> None:
        """After `times` broker restarts: wait until the subscription is back. Counted, not read off
        the connection state: right after the restart the client may not even have noticed the
        outage yet, and still look subscribed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._subacks > times, timeout_s):
                raise TimeoutError("recorder did not resubscribe")

    def _on_subscribe(self, *args) -> None:
        with self._cond:
            self._subacks += 1
            self._cond.notify_all()
        self._subscribed.set()

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

    def wait_for(self, predicate: Callable[[str, Any], bool], count: int = 1, timeout_s: float = DEADLINE_S) -> list:
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


def wait_until(condition: Callable[[], bool], timeout_s: float = DEADLINE_S, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


async def until(predicate: Callable[[], bool], timeout_s: float = DEADLINE_S, step_s: float = 0.01,
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


OFFICE_MORNING = 1772413200.0  # 2026-03-02 08:00 in Vietnam (UTC+7)


def office_clock(start: float = OFFICE_MORNING) -> Callable[[], float]:
    """Real seconds counted from an office morning, for a real pager on real time: its queue's day
    changes at 05:00 local (22:00 UTC), and on the wall clock a test running across that instant
    would see its tickets expire or be numbered anew mid-test."""
    offset = start - time.monotonic()
    return lambda: offset + time.monotonic()


class FakeClock:
    """A clock a test moves by hand: call it for the time; `sleep(s)` advances it instead of waiting.

    `await wait(s)` is the sleep of a service's loops (`ServiceContext(clock=c, sleep=c.wait)`): it
    returns once the test has moved the clock `s` on (`advance`, `sleep`), never by itself, so the
    loops of several tasks share one time that only the test moves (a loop that advanced the clock
    itself would run the others' time away). `await settle()` after an advance waits until every
    loop it woke has done its round and waits on the clock again (or has ended): for loops that
    sleep between rounds; `sleepers` counts the tasks waiting on the clock.
    """

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now
        self._lock = threading.Lock()
        self._waiters: list[tuple[float, asyncio.Future, asyncio.Task | None]] = []
        self._woken: set[asyncio.Task] = set()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
            due = [w for w in self._waiters if w[0] <= self.now]
            self._waiters = [w for w in self._waiters if w[0] > self.now]
            self._woken.update(task for _, _, task in due if task is not None)
        for _, future, _ in due:
            try:
                future.get_loop().call_soon_threadsafe(_wake, future)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass

    async def wait(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        entry = (self.now + seconds, future, asyncio.current_task())
        with self._lock:
            self._waiters.append(entry)
        try:
            await future
        finally:
            with self._lock:
                self._waiters = [w for w in self._waiters if w is not entry]

    @property
    def sleepers(self) -> int:
        """How many tasks wait on this clock now."""
        with self._lock:
            return len(self._waiters)

    async def settle(self, timeout_s: float = DEADLINE_S) -> None:
        """Until each loop the last advances woke waits on the clock again (or has ended)."""
        def settled() -> bool:
            with self._lock:
                parked = {task for _, _, task in self._waiters}
                self._woken = {t for t in self._woken if not t.done() and t not in parked}
                return not self._woken
        await until(settled, timeout_s=timeout_s, step_s=0.002, what="the loops woken by the clock to wait again")


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


# -- fakes of the peers (edge.peers) -----------------------------------------------------------------
# Test doubles of the services as their peers see them. tests/core/test_peers.py checks each one,
# and each real class, against its protocol in edge.peers: same method names, same async-ness,
# callable with the same parameters, so a fake cannot drift from the class it stands for.

class FakeLocker:
    """A locker with receipts in given states; records every open, so a test sees which door moved."""

    def __init__(self, receipts: dict[str, dict] | None = None):
        # receipt -> {"status": ..., "compartment": n, "pin": "1234" or None}
        self.receipts = receipts or {}
        self.opened: list[tuple] = []
        self.loaded: list[tuple] = []
        self.door_closed = asyncio.Event()
        self.close_answers: list[bool] = []  # scripted wait_door answers; empty: wait for door_closed

    async def lookup(self, receipt_code: str) -> dict:
        r = self.receipts.get(receipt_code)
        if r is None:
            return {"status": "unknown"}
        return {"status": r["status"], "compartment": r.get("compartment"), "pin_set": bool(r.get("pin"))}

    async def verify_pin(self, receipt_code: str, pin: str) -> bool:
        r = self.receipts.get(receipt_code)
        return bool(r and r.get("pin") and r["pin"] == pin)

    async def pickup(self, receipt_code: str, claim: dict, actor: str) -> dict:
        from edge.errors import EdgeError

        r = self.receipts[receipt_code]
        if r["status"] != "waiting":
            raise EdgeError(f"receipt {receipt_code} is {r['status']}")
        self.opened.append((receipt_code, r["compartment"], claim["method"], claim["ref"], actor))
        r["status"] = "collected"
        return {"compartment": r["compartment"]}

    async def wait_door(self, compartment: int, state: str, timeout_s: float) -> bool:
        if self.close_answers:
            return self.close_answers.pop(0)
        await self.door_closed.wait()
        return True

    async def load(self, staff_pin: str, receipt_code: str, size: str | None, pin: str | None = None,
                   deadline_days: int | None = None, *, accessible: bool = False, face_enrolled: bool = False,
                   phone: str | None = None) -> dict:
        if staff_pin != "9999":
            from edge.locker.flows import LockerRefused
            raise LockerRefused("staff")  # what the real locker answers: "staff: Wrong staff PIN. …"
        self.loaded.append((receipt_code, size, pin, deadline_days))
        return {"compartment": 3}

    async def mark_face_enrolled(self, receipt_code: str, enrolled: bool = True) -> None:
        self.receipts.setdefault(receipt_code, {"status": "waiting"})["face_enrolled"] = enrolled

    def view(self) -> dict:
        return {"compartments": {n: {"size": "M", "state": "free"} for n in range(1, 13)}, "alarms": 1}

    def snapshot(self) -> dict:
        return {"alarms": [{"alarm": "left_open", "target": "compartment:3", "since": 1.0}]}

    def health(self) -> str:
        return "ok"


class FakeVision:
    """Answers verify() from a script of decisions; `enrolled` lists the dossiers with face consent;
    `calls` counts verify() calls and `told` records what the locker told it."""

    def __init__(self, enrolled=(), decisions=None):
        self._enrolled = set(enrolled)
        self.decisions = list(decisions or [])
        self.calls = 0
        self.told: list[tuple] = []
        self.gate: asyncio.Event | None = None  # holds verify() until a test releases it
        self.live = "no_face"  # what guidance() reports from the camera between verify answers

    async def enrolled(self, dossier: str) -> bool:
        return dossier in self._enrolled

    async def verify(self, dossier: str, frames_rgb: list | None = None, timeout_s: float = 2.0) -> dict:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if not self.decisions:
            return {"decision": "reject", "score": 0.1, "reason": "no match", "guidance": None}
        d = self.decisions.pop(0)
        return d if isinstance(d, dict) else {"decision": d, "score": 0.9 if d == "accept" else 0.2,
                                               "reason": None, "guidance": None}

    def guidance(self) -> dict:
        return {"reason": self.live, "text": "", "text_en": ""}

    def preview(self) -> bytes | None:
        return None  # no camera

    async def result_waiting(self, dossier: str, waiting: bool = True) -> bool:
        self.told.append(("result_waiting", dossier, waiting))
        return True

    async def delete(self, dossier: str, reason: str) -> bool:
        self.told.append(("delete", dossier, reason))
        return True

    def snapshot(self) -> dict:
        return {}  # no alarms

    def health(self) -> str:
        return "ok"


class FakeQr:
    """A QR service with a catalog and no camera: `scanned(item)` hands an item to the subscribers."""

    def __init__(self, catalog: dict | None = None):
        self.catalog = catalog or {}
        self.queues: list[asyncio.Queue] = []

    def subscribe(self, maxsize: int = 50, *, private: bool = False) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=maxsize)
        self.queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.queues = [q for q in self.queues if q is not queue]

    def scanned(self, item: dict) -> None:
        for queue in self.queues:
            queue.put_nowait(item)

    def catalog_lookup(self, code: str) -> dict | None:
        return self.catalog.get(code)

    def snapshot(self) -> dict:
        return {"camera": "none", "scans": 0}  # the shape of QrService.snapshot(): no camera here

    def health(self) -> str:
        return "ok"


class FakePager:
    """Records what it was asked: `issued` tickets, `checked_in` codes, `calls` counter actions
    (validated against the real pager's `commands`, as every route to the pager is)."""

    def __init__(self):
        self.issued: list[tuple] = []
        self.checked_in: list[str] = []
        self.booked: list[tuple] = []
        self.calls: list[tuple] = []

    async def issue(self, service: str, priority: str | None = None, source: str = "desk") -> dict:
        self.issued.append((service, priority, source))
        return {"ticket": f"A{len(self.issued):03d}", "card": len(self.issued) + 6, "service": service}

    async def checkin(self, appointment_code: str) -> dict:
        self.checked_in.append(appointment_code)
        return {"ticket": "B001", "card": 9}

    async def book(self, code: str, service: str, slot: float) -> dict:
        self.booked.append((code, service, slot))
        return {"code": code, "service": service, "slot": slot}

    async def action(self, name: str, args: Any) -> dict:
        from edge.pager.service import PagerService
        from edge.service import check_command

        args = check_command(PagerService, name, args)  # refused as the real pager refuses it
        self.calls.append((name, args["counter"]) if "counter" in args else (name, args))
        return {"ticket": "A001", "counter": args["counter"]} if name == "call_next" else {}

    def view(self) -> dict:
        # the shape of edge.pager.queue.QueueEngine.view()
        return {"counters": {"1": {"paused": False, "ticket": "A001", "service": "general", "card": 7}},
                "services": {"general": {"prefix": "A", "name": "Tiếp nhận hồ sơ", "name_en": "Filing",
                                         "waiting": 2, "next": ["A002", "A003"], "estimated_wait_s": 300}},
                "now_serving": [{"ticket": "A001", "counter": "1", "card": 7}]}

    def priorities(self) -> list[str]:
        return ["elderly", "disabled"]

    def counters(self) -> list[str]:
        return list(self.view()["counters"])

    def utc_offset_h(self) -> float:
        return 7.0  # Vietnam, [pager] utc_offset_h's default

    def snapshot(self) -> dict:
        return {}  # no alarms

    def health(self) -> str:
        return "ok"
