"""edge.testing.FakeClock as the sleep of service loops: only the test moves time, loops share it."""

import asyncio

import pytest

from edge.testing import FakeClock


def test_a_wait_returns_only_when_the_test_moves_the_clock():
    clock = FakeClock(100.0)

    async def scenario():
        woke = []

        async def loop(name, period):
            while True:
                await clock.wait(period)
                woke.append((name, clock()))

        tasks = [asyncio.create_task(loop("fast", 1)), asyncio.create_task(loop("slow", 5))]
        try:
            await asyncio.sleep(0)
            assert clock.sleepers == 2
            await clock.settle()  # nothing woken yet: settled at once
            for _ in range(3):
                await asyncio.sleep(0)
            assert woke == []  # real time passing moves nothing
            clock.advance(1)
            await clock.settle()
            assert woke == [("fast", 101.0)]
            clock.sleep(4)  # a blocking sleep of the test's clock wakes the loops too
            await clock.settle()
            assert sorted(woke[1:]) == [("fast", 105.0), ("slow", 105.0)]
            assert clock.sleepers == 2
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert clock.sleepers == 0  # a cancelled wait leaves nothing behind

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_settle_names_a_loop_that_never_waits_again():
    clock = FakeClock()

    async def scenario():
        async def stuck():
            await clock.wait(1)
            await asyncio.Event().wait()  # never back on the clock

        task = asyncio.create_task(stuck())
        await asyncio.sleep(0)
        clock.advance(1)
        with pytest.raises(AssertionError, match="loops woken by the clock"):
            await clock.settle(timeout_s=0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(asyncio.wait_for(scenario(), 10))
