"""The physical "get result" button (gpiozero): a press does what the screen's start button does."""

from __future__ import annotations

import asyncio
from typing import Any, Callable


class GetResultButton:
    """A debounced gpiozero Button whose presses are handed to the event loop (gpiozero calls back on its own thread)."""

    def __init__(self, pin: str | int, on_press: Callable[[], None], *, loop: asyncio.AbstractEventLoop,
                 pin_factory: Any = None, bounce_s: float = 0.05):
        from gpiozero import Button  # imported here: no GPIO library is touched at import time

        self._loop = loop
        self._on_press = on_press
        self.presses = 0
        self.button = Button(pin, pull_up=True, bounce_time=bounce_s or None, pin_factory=pin_factory)
        self.button.when_pressed = self._pressed

    def _pressed(self) -> None:
        self.presses += 1
        self._loop.call_soon_threadsafe(self._on_press)

    def mock_pin(self):
        """The button's simulated pin under gpiozero's MockFactory (`edge demo`, tests), which can be
        driven low to press it; None on real GPIO."""
        from gpiozero.pins.mock import MockPin

        return self.button.pin if isinstance(self.button.pin, MockPin) else None

    def close(self) -> None:
        self.button.close()
