"""The in-process event bus: what the store commits, heard by the services of this device.

Every message a store transaction queues for MQTT (`tx.emit`, `tx.set_state`, `tx.publish`) is
handed to the bus right after that transaction's COMMIT, in the order it was queued, so a screen
hears exactly what the broker hears and nothing of a transaction that rolled back. Topics are
the outbox's suffixes (design.md §3, after `motcua/v1/{site}/{device}/`): `pager/event`,
`pager/state`, `qr/event`, `locker/notify`, `status`, `pager/cmd/result` …; a pattern uses the
MQTT wildcards: `+` is one level (`+/event`: every service's events), `#` the rest (`pager/#`).

The store may commit from a worker thread (services run their SQL in `asyncio.to_thread`), so a
subscriber is bound to its event loop and called there (`call_soon_threadsafe`), never in the
committing thread and never inside the commit: a subscriber that raises is logged and breaks
neither the transaction nor the other subscribers.

    sub = ctx.bus.subscribe("pager/event", on_pager_event)   # on_pager_event(message), on the loop
    sub.close()
    with ctx.bus.listen("pager/#") as heard:                  # an asyncio queue, for a stream
        message = await heard.get(timeout_s=15)               # None on timeout
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One committed message: its topic suffix, its JSON payload (decoded for each subscriber, so
    one cannot change what another sees) and its outbox row (increasing: a stable identity)."""

    topic: str
    payload: dict
    row_id: int

    @property
    def service(self) -> str:
        """The first level of the topic: `pager` for `pager/event`."""
        return self.topic.split("/", 1)[0]

    @property
    def type(self) -> str | None:
        """An event's `type` (`ticket_called` …); None for a state, status or result."""
        return self.payload.get("type") if self.topic.endswith("/event") else None


def check_pattern(pattern: str) -> list[str]:
    """The levels of a subscription pattern, or ValueError naming what is wrong with it."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"bus pattern must be a non-empty topic such as 'pager/event' or 'pager/#', got {pattern!r}")
    levels = pattern.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"bus pattern {pattern!r}: '#' must be a whole last level ('pager/#')")
        if "+" in level and level != "+":
            raise ValueError(f"bus pattern {pattern!r}: '+' must be a whole level ('+/event')")
    return levels


def topic_matches(levels: list[str], topic: str) -> bool:
    """MQTT matching: `+` matches one level, a last `#` the rest (also none: `pager/#` has `pager`)."""
    parts = topic.split("/")
    for i, level in enumerate(levels):
        if level == "#":
            return True
        if i >= len(parts) or (level != "+" and level != parts[i]):
            return False
    return len(parts) == len(levels)


class Subscription:
    """A callback bound to a pattern and an event loop; `close()` (or `bus.unsubscribe`) ends it."""

    def __init__(self, bus: "EventBus", pattern: str, callback: Callable[[Message], Any],
                 loop: asyncio.AbstractEventLoop):
        self.pattern = pattern
        self._levels = check_pattern(pattern)
        self._callback = callback
        self._bus = bus
        self.loop = loop
        self.closed = False

    def matches(self, topic: str) -> bool:
        return topic_matches(self._levels, topic)

    def close(self) -> None:
        self._bus.unsubscribe(self)

    def _deliver(self, batch: list[tuple[str, str, int]]) -> None:
        """On the loop: one transaction's matching messages, in order (none once closed)."""
        for topic, text, row_id in batch:
            if self.closed:
                return
            try:
                self._callback(Message(topic, json.loads(text), row_id))
            except Exception:  # one bad subscriber must not silence the others
                log.exception("bus: subscriber of %r failed on %s (row %d)", self.pattern, topic, row_id)


class Listener:
    """The messages of a pattern in an asyncio queue, for a loop that waits (an event stream).
    A reader that falls `maxsize` messages behind loses the oldest, never blocks a commit."""

    def __init__(self, bus: "EventBus", pattern: str, maxsize: int):
        self._queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=maxsize)
        self.subscription = bus.subscribe(pattern, self._put)

    def _put(self, message: Message) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(message)

    async def get(self, timeout_s: float | None = None) -> Message | None:
        """The next message, or None after `timeout_s` without one."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout_s)
        except asyncio.TimeoutError:
            return None

    def get_nowait(self) -> Message | None:
        return None if self._queue.empty() else self._queue.get_nowait()

    def close(self) -> None:
        self.subscription.close()

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EventBus:
    """One per store (`store.bus`, `ctx.bus`): the store publishes, services subscribe."""

    def __init__(self):
        # Replaced, never mutated: a committing thread iterates a snapshot without a lock. Writers
        # (loops subscribing, a commit dropping a closed loop's subscriber) take the lock, so two
        # of them at once cannot lose each other's change.
        self._subs: tuple[Subscription, ...] = ()
        self._write = threading.Lock()

    def subscribe(self, pattern: str, callback: Callable[[Message], Any], *,
                  loop: asyncio.AbstractEventLoop | None = None) -> Subscription:
        """Call `callback(message)` on `loop` (default: the running one) for every committed message
        whose topic matches `pattern`."""
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise RuntimeError("bus.subscribe needs an event loop: call it from a coroutine "
                                   "or pass loop=") from None
        sub = Subscription(self, pattern, callback, loop)
        with self._write:
            self._subs = (*self._subs, sub)
        return sub

    def listen(self, pattern: str, maxsize: int = 1000) -> Listener:
        """An asyncio queue of the messages matching `pattern` (call from the loop that reads it)."""
        return Listener(self, pattern, maxsize)

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to `sub`, including what a commit already scheduled for it."""
        sub.closed = True
        with self._write:
            self._subs = tuple(s for s in self._subs if s is not sub)

    def publish(self, messages: list[tuple[str, str, int]]) -> None:
        """Hand one committed transaction's (topic, JSON text, outbox row) to the subscribers.
        Called by the store after COMMIT, from whichever thread committed; never raises."""
        for sub in self._subs:
            batch = [m for m in messages if sub.matches(m[0])]
            if not batch:
                continue
            try:
                sub.loop.call_soon_threadsafe(sub._deliver, batch)
            except RuntimeError:  # its loop is closed: the subscriber is gone
                log.debug("bus: dropping a subscriber of %r whose event loop is closed", sub.pattern)
                self.unsubscribe(sub)

    def __len__(self) -> int:
        return len(self._subs)
