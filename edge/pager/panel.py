"""Physical counter panel: gpiozero buttons (next, recall, skip, 1..5 rating) and a "serving" LED.

Destructive actions need a long press so a brushed key does no harm: a short press of `next`
calls the next ticket, of `recall` pages again; holding `recall` pauses/resumes the counter and
holding `skip` marks the called citizen a no-show. The pin factory is injected (MockFactory in
tests and in the demo), never chosen silently.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

log = logging.getLogger(__name__)


class CounterPanel:
    def __init__(self, counter: str, pins: Any, *, on_action: Callable[..., None], pin_factory: Any = None,
                 bounce_s: float = 0.05, long_press_s: float = 1.5):
        from gpiozero import LED, Button  # imported here: gpiozero probes pins on import of a factory

        self.counter = counter
        self.on_action = on_action
        self.devices: list[Any] = []
        self.led = None

        def button(pin: int) -> Any:
            device = Button(pin, pull_up=True, bounce_time=bounce_s or None, hold_time=long_press_s,
                            pin_factory=pin_factory)
            self.devices.append(device)
            return device

        if pins.next_pin is not None:
            button(pins.next_pin).when_pressed = lambda: self._fire("call_next")
        if pins.recall_pin is not None:
            self._short_or_long(button(pins.recall_pin), short="recall", long="pause_toggle")
        if pins.skip_pin is not None:
            self._short_or_long(button(pins.skip_pin), short=None, long="no_show")
        for score, pin in enumerate(pins.rating_pins, start=1):
            button(pin).when_pressed = lambda score=score: self._fire("rate", score)
        if pins.serving_led_pin is not None:
            self.led = LED(pins.serving_led_pin, initial_value=False, pin_factory=pin_factory)
            self.devices.append(self.led)

    def _short_or_long(self, device: Any, *, short: str | None, long: str) -> None:
        held = {"flag": False}

        def on_held() -> None:
            held["flag"] = True
            self._fire(long)

        def on_released() -> None:
            if not held["flag"]:
                if short:
                    self._fire(short)
                else:
                    log.info("counter %s: hold the key %s to confirm", self.counter, long)
            held["flag"] = False

        device.when_held = on_held
        device.when_released = on_released

    def _fire(self, action: str, value: Any = None) -> None:
        self.on_action(self.counter, action, value)

    def show_serving(self, serving: bool) -> None:
        if self.led is not None:
            self.led.value = serving

    def close(self) -> None:
        for device in self.devices:
            device.close()
        self.devices = []
