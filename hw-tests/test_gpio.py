"""GPIO: a relay pulse opens a lock and its door sensor sees it; the buttons read idle and then
pressed. Uses gpiozero's default pin factory (lgpio on a Pi 5)."""

from __future__ import annotations

import time

import pytest

from hwutil import need_gpio

pytestmark = pytest.mark.hw

MAX_PULSE_MS = 1000  # motor locks take up to 1 s; never longer (design.md section 5)


def _active_high(hw, name: str, default: str) -> bool:
    return str(hw.get(name, default)).lower() in ("1", "true", "high", "yes")


def test_relay_click_and_door_sensor(hw):
    relay_pin = hw.need("relay_pin", "the relay's GPIO, e.g. GPIO17 (not 14/15: they float at boot)")
    need_gpio()
    from gpiozero import DigitalInputDevice, OutputDevice

    pulse_ms = min(int(hw.get("pulse_ms", 300)), MAX_PULSE_MS)
    relay = OutputDevice(relay_pin, active_high=_active_high(hw, "relay_active_high", "1"), initial_value=False)
    door = None
    door_pin = hw.get("door_pin")
    try:
        if door_pin:
            # The sensor reads "active" when the door is open (set EDGE_HW_DOOR_OPEN_LEVEL=low
            # for a sensor that pulls the line low when open).
            open_high = str(hw.get("door_open_level", "high")).lower() == "high"
            door = DigitalInputDevice(door_pin, pull_up=not open_high)
            assert not door.is_active, f"door sensor on {door_pin} reads open before the pulse: close the door first"
        relay.on()
        time.sleep(pulse_ms / 1000)
        relay.off()
        assert not relay.value, "relay still on after the pulse"
        if door is not None:
            opened = door.wait_for_active(timeout=5)
            assert opened, f"pulse of {pulse_ms} ms on {relay_pin} but the sensor on {door_pin} never saw the door open"
        hw.confirm(f"Did the relay on {relay_pin} click (and the lock release)?")
    finally:
        relay.off()
        relay.close()
        if door is not None:
            door.close()


def test_buttons_idle_then_pressed(hw):
    pins = hw.need("button_pins", "the buttons' GPIOs, e.g. GPIO5,GPIO6")
    need_gpio()
    from gpiozero import Button

    buttons = [Button(pin.strip(), pull_up=True, bounce_time=0.05) for pin in pins.split(",")]
    try:
        stuck = [str(b.pin) for b in buttons if b.is_pressed]
        assert not stuck, f"reads pressed while nobody touches it: {stuck} (wiring to GND? wrong pull?)"
        if not hw.interactive:
            pytest.skip("idle state checked; set EDGE_HW_INTERACTIVE=1 and run with -s to press each button")
        for button in buttons:
            print(f"\n>>> press the button on {button.pin} (15 s)")
            assert button.wait_for_press(timeout=15), f"no press seen on {button.pin}"
            assert button.wait_for_release(timeout=15), f"{button.pin} never released (stuck?)"
    finally:
        for button in buttons:
            button.close()
