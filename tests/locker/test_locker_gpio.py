"""Relay HAT driver on gpiozero's MockFactory: safe pins, one relay at a time, capped pulses."""

import pytest
from gpiozero.pins.mock import MockFactory

from edge.errors import ConfigError
from edge.locker.driver import PULSE_HARD_CAP_MS
from edge.locker.gpio import DEFAULT_RELAY_PINS, GpioDoorSim, GpioLockerDriver


@pytest.fixture
def factory():
    f = MockFactory()
    try:
        yield f
    finally:
        f.reset()


def make(factory, **kw):
    sim = GpioDoorSim(factory, polarity=kw.get("polarity", "open_high"))
    asked = []
    driver = GpioLockerDriver(pin_factory=factory, sleep=asked.append, **kw)
    return driver, sim, asked


def test_relays_start_off(factory):
    driver, sim, _ = make(factory)
    assert all(not factory.pin(p).state for p in DEFAULT_RELAY_PINS)
    assert sim.pulses == []


def test_open_pulses_only_that_relay_and_the_door_reads_open(factory):
    driver, sim, asked = make(factory)
    result = driver.open(1, 3, 300)
    assert [lock for lock, _ in sim.pulses] == [3]
    assert asked == [0.3]
    assert result.door_open is True
    assert not factory.pin(DEFAULT_RELAY_PINS[2]).state  # off again after the pulse
    assert [n for n, s in driver.status(1).locks.items() if s.open] == [3]


def test_pulse_is_capped(factory):
    driver, _, asked = make(factory)
    driver.open(1, 1, 10_000)
    assert asked == [PULSE_HARD_CAP_MS / 1000]


def test_one_relay_at_a_time(factory):
    driver, sim, _ = make(factory)
    for lock in (1, 2, 3, 4, 1):
        driver.open(1, lock, 200)
    assert sim.overlaps == 0 and len(sim.pulses) == 5


def test_relay_is_switched_off_even_if_the_wait_is_interrupted(factory):
    def interrupted(_):
        raise KeyboardInterrupt

    GpioDoorSim(factory)
    driver = GpioLockerDriver(pin_factory=factory, sleep=interrupted)
    with pytest.raises(KeyboardInterrupt):
        driver.open(1, 2, 300)
    assert not factory.pin(DEFAULT_RELAY_PINS[1]).state


def test_stuck_door_reads_closed_after_its_pulse(factory):
    driver, sim, _ = make(factory)
    sim.stuck.add(5)
    assert driver.open(1, 5).door_open is False


@pytest.mark.parametrize("relays,sensors,match", [
    ([14, 16], [20, 21], "GPIO14 is not a safe pin"),
    ([4], [20], "GPIO4 is not a safe pin"),
    ([16, 16], [20, 21], "pins used twice"),
    ([16, 17], [20], "2 relay pins but 1 sensor pins"),
])
def test_unsafe_pin_layouts_are_refused(factory, relays, sensors, match):
    with pytest.raises(ConfigError, match=match):
        GpioLockerDriver(relay_pins=relays, sensor_pins=sensors, pin_factory=factory)


def test_close_turns_outputs_off(factory):
    driver, _, _ = make(factory)
    driver.relays[0].on()
    driver.close()
    assert not factory.pin(DEFAULT_RELAY_PINS[0]).state


def test_board_other_than_one_is_refused(factory):
    driver, sim, _ = make(factory)
    with pytest.raises(ValueError, match="board 2"):
        driver.open(2, 1)
    assert sim.pulses == []
