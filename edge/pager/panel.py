"""Physical counter panel: gpiozero buttons (next, recall, skip, 1..5 rating), a "serving" LED and
a 7-segment "now serving" number (gpiozero's LEDCharDisplay, multiplexed by LEDMultiCharDisplay).

Destructive actions need a long press so a brushed key does no harm: a short press of `next`
calls the next ticket, of `recall` pages again; holding `recall` pauses/resumes the counter and
holding `skip` marks the called citizen a no-show. The pin factory is injected (MockFactory in
tests and in the demo), never chosen silently. `CounterPanels` wires an office's panels to the
pager service (presses become checked actions, LEDs and numbers follow the queue).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Awaitable, Callable

from edge.errors import CommandError

log = logging.getLogger(__name__)
service_log = logging.getLogger("edge.pager")  # a refused press is the pager service's line

_FACTORY_LOCK = threading.Lock()


def display_text(ticket: str | None, digits: int, font: Any) -> str:
    """What a `digits`-wide display shows for a ticket: "A012" -> "A012" on 4 digits, "012" on 3,
    "12" on 2; a prefix letter the 7-segment font cannot draw (K, M, V, W, X, Z) is left blank."""
    if not ticket:
        return " " * digits
    chars = [c if c in font else " " for c in ticket.upper()]
    if len(chars) > digits:
        chars = chars[-digits:]  # the number's last digits are what the citizen compares with the card
    return "".join(chars).rjust(digits)


class CounterPanel:
    def __init__(self, counter: str, pins: Any, *, on_action: Callable[..., None], pin_factory: Any = None,
                 bounce_s: float = 0.05, long_press_s: float = 1.5):
        from gpiozero import LED, Button  # imported here: gpiozero probes pins on import of a factory

        self.counter = counter
        self.on_action = on_action
        self.devices: list[Any] = []
        self.led = None
        self.display = None  # LEDCharDisplay (one digit) or LEDMultiCharDisplay
        self.char = None

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
        if pins.segment_pins:
            self._open_display(pins, pin_factory)

    def _open_display(self, pins: Any, pin_factory: Any) -> None:
        from gpiozero import Device, LEDCharDisplay, LEDMultiCharDisplay

        segments, dp = pins.segment_pins[:7], (pins.segment_pins[7:] or [None])[0]
        self.char = LEDCharDisplay(*segments, dp=dp, active_high=pins.active_high, pin_factory=pin_factory)
        self.display = self.char
        if pins.digit_pins:
            # gpiozero 2.0 builds the digit-select group without passing pin_factory on, so it would probe
            # for a default factory (and fail off a Pi); lend it ours for the duration of the constructor.
            with _FACTORY_LOCK:
                borrowed = Device.pin_factory is None and pin_factory is not None
                if borrowed:
                    Device.pin_factory = pin_factory
                try:
                    self.display = LEDMultiCharDisplay(self.char, *pins.digit_pins, active_high=pins.digit_active_high,
                                                       pin_factory=pin_factory)
                finally:
                    if borrowed:
                        Device.pin_factory = None
        # Closed first: the multiplexer's thread must stop before the segments it drives go away.
        self.devices.insert(0, self.display)
        if self.display is not self.char:
            self.devices.insert(1, self.char)
        self.show_ticket(None)

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

    def show_ticket(self, ticket: str | None) -> None:
        """Put the called ticket's number on the display, or blank it (idle, paused)."""
        if self.display is None:
            return
        width = len(self.display.plex) if self.display is not self.char else 1
        self.display.value = display_text(ticket, width, self.char.font)

    def close(self) -> None:
        for device in self.devices:
            device.close()
        self.devices = []


class CounterPanels:
    """The office's counter panels, wired to the pager: each press becomes the same checked action
    an MQTT command or the counter screen would run (`action(name, args)`, on the service's loop),
    and the LEDs and numbers follow the queue's view (`view()`). Counters without a panel are skipped."""

    def __init__(self, config: Any, *, pin_factory: Any, action: Callable[[str, dict], Awaitable[dict]],
                 view: Callable[[], dict]):
        self.config = config
        self.pin_factory = pin_factory
        self.action, self.view = action, view
        self.panels: list[CounterPanel] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handling: set = set()  # presses whose action has not finished yet

    def open(self) -> None:
        """On the service's loop: build a CounterPanel per `[pager.counters.N.panel]`."""
        self._loop = asyncio.get_running_loop()
        for name, counter in self.config.counters.items():
            if counter.panel is None:
                continue
            self.panels.append(CounterPanel(name, counter.panel, on_action=self._pressed,
                                            pin_factory=self.pin_factory, bounce_s=self.config.bounce_s,
                                            long_press_s=self.config.long_press_s))

    def close(self) -> None:
        for panel in self.panels:
            panel.close()
        self.panels = []

    def show(self) -> None:
        """Light the "serving" LEDs and show the called numbers as the queue has them now."""
        if not self.panels:
            return
        counters = self.view()["counters"]
        for panel in self.panels:
            state = counters[panel.counter]
            panel.show_serving(state["ticket"] is not None)
            panel.show_ticket(None if state["paused"] else state["ticket"])  # paused: no number to walk to

    def _pressed(self, counter: str, action: str, value: Any = None) -> None:
        """Called from gpiozero's thread: run the action on the service's loop."""
        handling = asyncio.run_coroutine_threadsafe(self._run(counter, action, value), self._loop)
        self._handling.add(handling)
        handling.add_done_callback(self._handling.discard)

    @property
    def busy(self) -> bool:
        """True while a press's action is still running (a test waits for it instead of sleeping)."""
        return bool(self._handling)

    async def _run(self, counter: str, action: str, value: Any) -> None:
        args: dict[str, Any] = {"counter": counter}
        if action == "pause_toggle":
            action, args["paused"] = "pause", not self.view()["counters"][counter]["paused"]
        elif action == "rate":
            args["score"] = value
        try:
            await self.action(action, args)
        except CommandError as err:  # a queue refusal (QueueError) or bad input
            service_log.info("pager: counter %s %s: %s", counter, action, err)
