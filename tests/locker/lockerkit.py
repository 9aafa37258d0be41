"""Helpers for the locker service tests: a fast config, a running service, the outbox's events."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
import time
from pathlib import Path

from edge.locker.config import CompartmentConfig, LockerConfig, SimConfig
from edge.locker.pins import hash_pin
from edge.locker.service import LockerService
from edge.service import ServiceContext
from edge.store import Store
from edge.testing import DEADLINE_S, until  # the locker tests import until from here too

# A test's wait for a door the poll loop will read (edge.testing's one deadline for real work: the
# simulator's pty, the poll rounds); wait_door returns as soon as the door reads so.
DOOR_S = DEADLINE_S
STAFF_PIN = "9021"
STAFF_HASH = hash_pin(STAFF_PIN)
BOARD = {"kerong": 0, "8a": 1, "modbus": 1, "gpio": 1}


class Clock:
    """Wall time plus an offset a test moves on. Real time still flows (the simulators' doors, the
    poll loop); `advance` jumps it ahead, and so does the driver's coil wait, which goes through
    `sleep` (edge.locker.timing): a rate limit, an open-detect timer, a coil window pass without
    the seconds. `wait` is the service loops' sleep (`ServiceContext.sleep`): it ends when this
    clock reaches its deadline, by real time or by an advance."""

    STEP_S = 0.005  # how often a waiting loop looks at the clock again

    def __init__(self):
        self.offset = 0.0
        self._lock = threading.Lock()  # the driver advances it from its thread

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.offset += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    async def wait(self, seconds: float) -> None:
        deadline = self() + seconds
        while (left := deadline - self()) > 0:
            await asyncio.sleep(min(left, self.STEP_S))


def config(driver: str = "kerong", **over) -> LockerConfig:
    board = BOARD[driver]
    sizes = {1: "S", 2: "M", 3: "M", 4: "L", 5: "M", 6: "XL"}
    comps = {str(n): CompartmentConfig(board=board, lock=n, size=s, accessible=n == 3) for n, s in sizes.items()}
    base = dict(driver=driver, port="sim", poll_interval_s=0.05, rate_limit_s=0.5, open_detect_s=0.6,
                reply_timeout_s=0.1, left_open_s=30.0, pulse_ms=100, staff_pins={"an": STAFF_HASH},
                compartments=comps, sim=SimConfig(auto_close_s=None))
    base.update(over)
    return LockerConfig(**base)


def service(tmp_path: Path, cfg: LockerConfig | None = None, *, store: Store | None = None,
            clock: Clock | None = None, pin_factory=None) -> LockerService:
    """A locker on its simulator with a store; on a `Clock` of its own unless given one (`svc.clock`).
    `clock=time.time` runs it on a device's clocks and sleeps (tests/locker/test_locker_timing.py)."""
    clock = clock or Clock()
    store = store or Store(tmp_path / "edge.db", clock=clock)
    # The kit's clock takes every wait: the loops' (wait) and the driver thread's (sleep, timed on it).
    waits = dict(sleep=clock.wait, thread_sleep=clock.sleep, monotonic=clock) if isinstance(clock, Clock) else {}
    ctx = ServiceContext(name="locker", site="hn", device="kiosk-01", store=store, config=cfg or config(),
                         data_dir=tmp_path, clock=clock, pin_factory=pin_factory, **waits)
    return LockerService(ctx)


@contextlib.asynccontextmanager
async def running(svc: LockerService):
    """The service started, its loop running (rounds counted for `polled`), stopped at the end."""
    check_timers = svc._check_timers

    def counted() -> None:  # the last step of each round of the poll loop
        check_timers()
        svc.poll_rounds += 1

    svc.poll_rounds = 0
    svc._check_timers = counted
    await svc.start()
    task = asyncio.create_task(svc.run())
    try:
        yield svc
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await svc.stop()


async def polled(svc: LockerService, rounds: int = 2) -> None:
    """Until the poll loop has read every door and run its timers `rounds` more times: what a
    door or a timer would still report has been reported (instead of a sleep before a last check)."""
    start = svc.poll_rounds
    await until(lambda: svc.poll_rounds >= start + rounds, what=f"{rounds} more poll rounds")


def events(store: Store, *types: str) -> list[dict]:
    rows = store.query("SELECT payload FROM outbox WHERE topic = 'locker/event' ORDER BY row_id")
    out = [json.loads(r["payload"]) for r in rows]
    return [e for e in out if not types or e["type"] in types]


def states(store: Store) -> list[dict]:
    rows = store.query("SELECT payload, retain FROM outbox WHERE topic = 'locker/state' ORDER BY row_id")
    assert all(r["retain"] for r in rows)
    return [json.loads(r["payload"]) for r in rows]


def bus(svc: LockerService):
    return svc.sim.bus


def replace(cfg: LockerConfig, **over) -> LockerConfig:
    return dataclasses.replace(cfg, **over)
