"""The locker service on a relay HAT (gpiozero MockFactory), and the demo on the Kerong simulator."""

import asyncio
import dataclasses
import logging
from pathlib import Path

from gpiozero.pins.mock import MockFactory
from .lockerkit import DOOR_S, STAFF_PIN, config, events, running, service

import edge
from edge.config import load
from edge.locker.config import SimConfig
from edge.locker.gpio import DEFAULT_RELAY_PINS


def test_gpio_locker_load_pickup_and_stop_leaves_relays_off(tmp_path):
    factory = MockFactory()
    svc = service(tmp_path, config("gpio"), pin_factory=factory)

    async def body():
        async with running(svc):
            sim = svc.sim
            comp = (await svc.load(STAFF_PIN, "H29-261207-0031", "L"))["compartment"]
            assert await svc.wait_door(comp, "open", DOOR_S)
            sim.close_door(comp)
            assert await svc.wait_door(comp, "closed", DOOR_S)
            svc.clock.advance(0.55)  # past the rate limit, on the service's clock
            await svc.pickup("H29-261207-0031", {"method": "face", "ref": "s"}, actor="kiosk")
            assert await svc.wait_door(comp, "open", DOOR_S)
            sim.close_door(comp)
            assert await svc.wait_door(comp, "closed", DOOR_S)
            assert (await svc.lookup("H29-261207-0031"))["status"] == "collected"
            assert [lock for lock, _ in sim.pulses] == [comp, comp] and sim.overlaps == 0
            factory.pin(DEFAULT_RELAY_PINS[0]).state = True  # something left a relay on
        assert not any(factory.pin(p).state for p in DEFAULT_RELAY_PINS)  # stop(): all off

    try:
        asyncio.run(asyncio.wait_for(body(), 30))
    finally:
        factory.reset()


def test_demo_config_loads_and_collects_a_result(tmp_path, caplog):
    demo = load(Path(edge.__file__).parent / "demo.toml").services["locker"]
    fast = dataclasses.replace(demo, rate_limit_s=0.5, poll_interval_s=0.05, sim=SimConfig(auto_close_s=0.3))
    svc = service(tmp_path, fast)

    async def body():
        async with running(svc):
            task = asyncio.create_task(svc.demo())
            try:  # the demo's pauses run on the service's clock: it moves on ten times faster here
                async def move_time_until_collected() -> None:
                    while not events(svc.ctx.store, "collected"):
                        svc.clock.advance(0.1)
                        await asyncio.sleep(0.01)

                await asyncio.wait_for(move_time_until_collected(), 15)
            finally:
                task.cancel()
        return events(svc.ctx.store)

    with caplog.at_level(logging.INFO, logger="edge.locker"):
        evs = asyncio.run(asyncio.wait_for(body(), 40))
    types = [e["type"] for e in evs]
    assert types[:4] == ["loaded", "pulse_sent", "door_opened", "door_closed"]
    assert "collected" in types
    text = caplog.text
    assert "door 2 opened" in text and "door 2 closed" in text and "collected from compartment 2" in text


def test_compartments_outside_the_driver_ranges_are_refused_at_start(tmp_path):
    import pytest

    from edge.errors import ConfigError
    from edge.locker.config import CompartmentConfig

    bad = config("kerong", compartments={"1": CompartmentConfig(board=16, lock=1),
                                         "2": CompartmentConfig(board=0, lock=17)})
    with pytest.raises(ConfigError) as err:
        asyncio.run(service(tmp_path, bad).start())
    assert "compartments.1.board: found 16, expected 0..15 for driver 'kerong'" in str(err.value)
    assert "compartments.2.lock: found 17, expected 1..16" in str(err.value)
