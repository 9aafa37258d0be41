"""The locker's waits, taken from the service's context, so that a test's clock makes them virtual.

Two kinds of wait, both injected through edge.service.ServiceContext:
- the loops' async waits (the poll interval, `wait_door`'s timeout, the demo's pauses) go through
  `ctx.sleep` (asyncio.sleep on a device; a test's clock `wait`, which returns early when the test
  moves its clock on);
- the driver's blocking waits, in its thread (the coil window between two opens, a GPIO pulse),
  go through `ctx.thread_sleep` timed on `ctx.monotonic`: time.sleep and time.monotonic on a
  device (no clock change can shorten a coil window), a test's clock's `sleep` and the clock
  itself in a test (edge.testing.FakeClock, tests/locker/lockerkit.Clock), which advance instead.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]


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
