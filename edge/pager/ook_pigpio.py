"""Direct 433 MHz OOK from a Pi GPIO with pigpio waves (hardware-timed DMA, not Python sleeps).

`port = "pigpio:17"` with `driver = "ook"` drives a transmitter module's data pin on BCM 17.
pigpio works on the Pi 4 and earlier; on a Pi 5 use the serial bridge (`protocol.OokBridge`).
The pi object is injected (`pigpio.pi()` on the device, a fake in tests).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from edge.errors import DeviceError, DeviceNotReady
from edge.pager import ook
from edge.pager.driver import PageResult, TransmitterError
from edge.pager.protocol import BROADCAST_CARDS, FrameError

WAVE_DONE_TIMEOUT_S = 10.0
PREFIX = "pigpio:"


def parse_port(port: str) -> int:
    """'pigpio:17' -> 17 (BCM numbering)."""
    pin = port[len(PREFIX):]
    if not pin.isdigit() or not 2 <= int(pin) <= 27:
        raise DeviceNotReady(f"pager port {port!r}: expected pigpio:<BCM pin 2..27>")
    return int(pin)


def open_pi() -> tuple[Any, Callable[..., Any]]:
    """Connect to the pigpio daemon; DeviceNotReady when pigpio or pigpiod is absent."""
    try:
        import pigpio
    except ImportError as err:
        raise DeviceNotReady("pigpio is not installed (apt install pigpio python3-pigpio)") from err
    pi = pigpio.pi()
    if not pi.connected:
        raise DeviceNotReady("pigpiod is not running (systemctl enable --now pigpiod)")
    return pi, pigpio.pulse


class PigpioOokTransmitter:
    """Same interface as PagerDriver (`page`, `close`, `retries`), for OOK keys on a GPIO."""

    retries = 0  # no acknowledgement over the air: the repeats in the wave are the reliability

    def __init__(self, pi: Any, gpio: int, *, protocol: str, system: int, pulse: Callable[..., Any],
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic):
        self.pi, self.gpio, self.protocol, self.system = pi, gpio, protocol, system
        self.pulse, self.sleep, self.monotonic = pulse, sleep, monotonic
        self.pi.set_mode(gpio, 1)  # output
        self.pi.write(gpio, 0)  # carrier off between pages

    def page(self, card: int) -> PageResult:
        if card in BROADCAST_CARDS:
            raise FrameError(f"card {card} is a broadcast/all-off number: refused")
        key = ook.encode(self.protocol, self.system, card)  # FrameError before any I/O
        mask = 1 << self.gpio
        pulses = [self.pulse(mask, 0, us) if i % 2 == 0 else self.pulse(0, mask, us)
                  for i, us in enumerate(key["pulses_us"])]
        try:
            self.pi.wave_clear()
            self.pi.wave_add_generic(pulses)
            wave = self.pi.wave_create()
            repeats = key["repeats"]
            # pigpio chain: loop start, the wave, loop end repeated x + 256·y times.
            self.pi.wave_chain([255, 0, wave, 255, 1, repeats % 256, repeats // 256])
            deadline = self.monotonic() + WAVE_DONE_TIMEOUT_S
            while self.pi.wave_tx_busy():
                if self.monotonic() > deadline:
                    self.pi.wave_tx_stop()
                    raise TransmitterError("pigpio wave still busy after 10 s: stopped")
                self.sleep(0.005)
            self.pi.wave_delete(wave)
        except (OSError, AttributeError) as err:
            raise TransmitterError(f"pigpio on GPIO{self.gpio}: {err}") from err
        finally:
            self.pi.write(self.gpio, 0)
        return PageResult(card, bytes(), 1)

    def close(self) -> None:
        try:
            self.pi.write(self.gpio, 0)
            self.pi.stop()
        except (OSError, DeviceError, AttributeError):
            pass
