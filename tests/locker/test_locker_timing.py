"""The locker's waits come from its clock (edge/locker/timing.py): real on a device, virtual in a test."""

import asyncio
import time

from .lockerkit import Clock, config, running, service

from edge.locker import timing
from edge.testing import FakeClock, until


def test_on_a_device_the_coil_window_is_monotonic_time_and_a_real_sleep(tmp_path):
    # A wall-clock step (NTP) must never shorten the wait between two coils.
    svc = service(tmp_path, config("modbus"), clock=time.time)

    async def body():
        async with running(svc):
            assert svc.driver.clock is time.monotonic and svc.driver.sleep is time.sleep

    asyncio.run(asyncio.wait_for(body(), 20))


def test_a_test_clock_takes_the_coil_wait_and_moves_on_by_it(tmp_path):
    svc = service(tmp_path, config("kerong"))

    async def body():
        async with running(svc):
            before = svc.clock()
            await svc.open_compartment(1)
            await svc.open_compartment(2)  # Kerong times its own pulse: the 1 s hard cap is waited out
            assert svc.clock() - before >= 1.0
            assert [p.lock for p in svc.sim.bus.pulses] == [1, 2]

    asyncio.run(asyncio.wait_for(body(), 20))


def test_within_ends_with_the_work_or_when_the_clock_has_moved_on():
    async def body():
        clock = FakeClock()
        done = asyncio.Event()
        waiting = asyncio.create_task(timing.within(clock.wait, 5, done.wait()))
        await until(lambda: clock.sleepers == 1, what="the wait on the clock")
        clock.advance(5)
        assert await waiting is False  # the time ran out on the clock, not in real seconds
        waiting = asyncio.create_task(timing.within(clock.wait, 5, done.wait()))
        done.set()
        assert await waiting is True

    asyncio.run(asyncio.wait_for(body(), 5))


def test_the_kit_clock_flows_with_real_time_and_jumps_on_advance():
    async def body():
        clock = Clock()
        start = clock()
        clock.advance(30)
        await clock.wait(0.01)  # real time alone ends a short wait
        assert clock() - start >= 30.01

    asyncio.run(asyncio.wait_for(body(), 5))
