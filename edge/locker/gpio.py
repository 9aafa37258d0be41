"""Relay HAT locker driver through gpiozero (a pin factory is injected; MockFactory in tests).

Relay outputs are active-high on BCM pins 9-27 (pulled down at boot, so a lock cannot click
while the Pi boots), never 14/15 (UART, they float at boot); created with `initial_value=False`.
Door sensors are inputs with pull-downs; `polarity` says which level means open. The pulse is
timed here, capped, one relay at a time, and the relay is switched off in `finally`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterable

from edge.errors import ConfigError, DeviceNotReady
from edge.locker.driver import OpenResult, cap_pulse
from edge.locker.protocols import BoardReading, LockState

SAFE_PINS = frozenset(range(9, 28)) - {14, 15}
# A common 8-relay layout on safe pins, and door sensors on the remaining safe pins.
DEFAULT_RELAY_PINS = (16, 17, 18, 19, 20, 21, 22, 23)
DEFAULT_SENSOR_PINS = (24, 25, 26, 27, 9, 10, 11, 12)
GPIO_BOARD = 1  # one HAT per Pi: the only board number


def check_pins(relay_pins: Iterable[int], sensor_pins: Iterable[int]) -> list[str]:
    """Problems with a pin layout (empty when fine)."""
    relay_pins, sensor_pins = list(relay_pins), list(sensor_pins)
    problems = []
    for pin in relay_pins + sensor_pins:
        if pin not in SAFE_PINS:
            problems.append(f"GPIO{pin} is not a safe pin: expected BCM 9-27 except 14 and 15")
    both = relay_pins + sensor_pins
    dupes = sorted({p for p in both if both.count(p) > 1})
    if dupes:
        problems.append(f"pins used twice: {dupes}")
    if sensor_pins and len(sensor_pins) != len(relay_pins):
        problems.append(f"{len(relay_pins)} relay pins but {len(sensor_pins)} sensor pins")
    return problems


class GpioLockerDriver:
    """Same interface as SerialLockerDriver, for a relay HAT (board number 1)."""

    protocol = None
    has_occupancy = False

    def __init__(self, *, relay_pins: Iterable[int] = DEFAULT_RELAY_PINS,
                 sensor_pins: Iterable[int] = DEFAULT_SENSOR_PINS, pin_factory: Any = None,
                 polarity: str = "open_high", sleep: Callable[[float], None] = time.sleep):
        from gpiozero import DigitalInputDevice, DigitalOutputDevice, GPIOZeroError

        self.relay_pins, self.sensor_pins = list(relay_pins), list(sensor_pins)
        problems = check_pins(self.relay_pins, self.sensor_pins)
        if problems:
            raise ConfigError(problems)
        self.polarity = polarity
        self.sleep = sleep
        self._io = threading.Lock()
        self.relays, self.sensors = [], []
        try:
            for p in self.relay_pins:
                self.relays.append(DigitalOutputDevice(p, active_high=True, initial_value=False, pin_factory=pin_factory))
            for p in self.sensor_pins:
                self.sensors.append(DigitalInputDevice(p, pull_up=False, pin_factory=pin_factory))
        except GPIOZeroError as err:  # no GPIO here (not a Pi, no lgpio), or a pin already taken
            self.close()
            raise DeviceNotReady(f"GPIO unavailable: {type(err).__name__}: {err}") from err
        self.locks_per_board = len(self.relays)
        self.board_range = (GPIO_BOARD, GPIO_BOARD)

    def open(self, board: int, lock: int, pulse_ms: int | None = None) -> OpenResult:
        relay = self._relay(board, lock)
        with self._io:
            for other in self.relays:  # one coil at a time, even if something left one on
                other.off()
            relay.on()
            try:
                self.sleep(cap_pulse(pulse_ms) / 1000.0)
            finally:
                relay.off()
            door = self._door_open(lock) if self.sensors else None
        return OpenResult(board, lock, 1, door)

    def status(self, board: int) -> BoardReading:
        self._check_board(board)
        return BoardReading(board, {n: LockState(self._door_open(n)) for n in range(1, len(self.sensors) + 1)})

    def all_off(self, boards: Iterable[int] = (GPIO_BOARD,)) -> None:
        for relay in self.relays:
            relay.off()

    def scan(self, boards: Iterable[int] | None = None) -> list[int]:
        return [GPIO_BOARD]

    def attach(self, transport: Any) -> None:
        pass

    def close(self) -> None:
        self.all_off()
        for dev in self.relays + self.sensors:
            dev.close()

    def _door_open(self, lock: int) -> bool:
        level = bool(self.sensors[lock - 1].value)
        return level if self.polarity == "open_high" else not level

    def _relay(self, board: int, lock: int) -> Any:
        self._check_board(board)
        if not 1 <= lock <= len(self.relays):
            raise ValueError(f"lock {lock} out of range: expected 1..{len(self.relays)}")
        return self.relays[lock - 1]

    def _check_board(self, board: int) -> None:
        if board != GPIO_BOARD:
            raise ValueError(f"board {board} out of range: a relay HAT is board {GPIO_BOARD}")


class GpioDoorSim:
    """Doors wired to a MockFactory: a relay pulse opens its door's sensor; tests close it."""

    def __init__(self, factory: Any, *, relay_pins: Iterable[int] = DEFAULT_RELAY_PINS,
                 sensor_pins: Iterable[int] = DEFAULT_SENSOR_PINS, polarity: str = "open_high"):
        from gpiozero.pins.mock import MockPin

        sim = self
        self.factory, self.polarity = factory, polarity
        self.relay_pins, self.sensor_pins = list(relay_pins), list(sensor_pins)
        self.stuck: set[int] = set()
        self.pulses: list[tuple[int, float]] = []  # (lock, monotonic time of the rising edge)
        self.on_now: set[int] = set()
        self.overlaps = 0  # times a relay went on while another was on

        class RelayPin(MockPin):
            def _change_state(self, value):
                changed = super()._change_state(value)
                if changed and self._function == "output":
                    sim._relay_changed(self, bool(value))
                return changed

        for pin in self.relay_pins:
            factory.pin(pin, pin_class=RelayPin)
        for lock in range(1, len(self.sensor_pins) + 1):
            self._drive(lock, False)

    def _relay_changed(self, pin: Any, on: bool) -> None:
        lock = self.relay_pins.index(int(pin.info.name.replace("GPIO", ""))) + 1
        if on:
            if self.on_now:
                self.overlaps += 1
            self.on_now.add(lock)
            self.pulses.append((lock, time.monotonic()))
            if lock not in self.stuck:
                self._drive(lock, True)
        else:
            self.on_now.discard(lock)

    def close_door(self, lock: int) -> None:
        self._drive(lock, False)

    def force_open(self, lock: int) -> None:
        self._drive(lock, True)

    def _drive(self, lock: int, is_open: bool) -> None:
        pin = self.factory.pin(self.sensor_pins[lock - 1])
        if pin.function != "input":
            return
        high = is_open if self.polarity == "open_high" else not is_open
        pin.drive_high() if high else pin.drive_low()
