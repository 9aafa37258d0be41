"""The locker's waits, taken from its clock, so that a test's clock makes them virtual.

Two kinds of wait, both injected through the service's context (edge.service.ServiceContext):
- the loops' async waits (the poll interval, `wait_door`'s timeout, the demo's pauses) go through
  `ctx.sleep` (asyncio.sleep on a device; a test's clock `wait`, which returns early when the test
  moves its clock on);
- the driver's blocking waits, in its thread (the coil window between two opens, a GPIO pulse),
  go through the clock's own `sleep` when it has one: a test's clock (edge.testing.FakeClock,
  tests/locker/lockerkit.Clock) advances instead of waiting. The real clock (`time.time`) has
  none: then time.sleep, with the coil window measured on time.monotonic, which no clock change
  can shorten.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]


def is_virtual(clock: Clock) -> bool:
    """True for a test's clock: one with its own `sleep`."""
    return callable(getattr(clock, "sleep", None))


def blocking_sleep(clock: Clock) -> Callable[[float], None]:
    """The sleep of a driver thread: the clock's own, else time.sleep."""
    return clock.sleep if is_virtual(clock) else time.sleep  # type: ignore[attr-defined]


def interval_clock(clock: Clock) -> Clock:
    """The clock of short intervals (the coil window): time.monotonic unless the clock is a test's."""
    return clock if is_virtual(clock) else time.monotonic


async def within(sleep: Sleep, seconds: float, awaitable: Awaitable[Any]) -> bool:
    """Await `awaitable` for at most `seconds` of `sleep`'s time: True if it finished, False if the
    time ran out first (it is then cancelled). A cancel of the caller cancels both."""
    work = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(sleep(seconds))
    try:
        await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not work.done():
            work.cancel()
    if work.done() and not work.cancelled():
        work.result()  # its exception, if any, is the caller's
        return True
    return False
