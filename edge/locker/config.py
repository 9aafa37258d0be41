"""The `[locker]` config section: bus and driver, compartments -> (board, lock), safety limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge.config import opt
from edge.locker.gpio import DEFAULT_RELAY_PINS, DEFAULT_SENSOR_PINS, check_pins
from edge.locker.pins import check_staff_pins

PULSE_HARD_CAP_MS = 1000
# driver -> ((first board, last board), (first lock, last lock)), as numbered on the boards
BOARD_RANGES = {"kerong": ((0, 15), (1, 16)), "8a": ((1, 64), (1, 24)), "modbus": ((1, 247), (1, 8)),
                "gpio": ((1, 1), (1, 8))}
SIZES = ("S", "M", "L", "XL")


@dataclass(frozen=True)
class CompartmentConfig:
    board: int = opt(min=0, max=247, help="board address as set on its switches (Kerong 0-15, 8A 1-64, Modbus 1-247, GPIO 1)")
    lock: int = opt(min=1, max=64, help="lock number as labelled on the board, from 1")
    size: Literal["S", "M", "L", "XL"] = opt("M")
    accessible: bool = opt(False, help="low enough for a wheelchair user")


@dataclass(frozen=True)
class GpioPins:
    relay_pins: list[int] = opt(list(DEFAULT_RELAY_PINS), check=lambda v: "; ".join(check_pins(v, [])) or None)
    sensor_pins: list[int] = opt(list(DEFAULT_SENSOR_PINS), check=lambda v: "; ".join(check_pins([], v)) or None)


@dataclass(frozen=True)
class SimConfig:
    auto_close_s: float | None = opt(4.0, min=0.1, max=3600, help="the simulated citizen closes a door after this long")


def _check_compartments(comps: dict) -> str | None:
    problems, seen = [], {}
    for key, c in comps.items():
        # Exactly str(n): the service looks compartments up as str(int), so "07" or "７" could never be found.
        if not (key.isascii() and key.isdigit()) or key != str(int(key)) or int(key) < 1:
            problems.append(f"compartment key {key!r} must be a number from 1, written without leading zeros")
        where = (c.board, c.lock)
        if where in seen:
            problems.append(f"compartments {seen[where]} and {key} both use board {c.board} lock {c.lock}")
        seen[where] = key
    return "; ".join(problems) or None


@dataclass(frozen=True)
class LockerConfig:
    enabled: bool = opt(True)
    driver: Literal["kerong", "8a", "modbus", "gpio"] = opt("kerong")
    port: str = opt("sim", help="serial device or pyserial URL (spy://, socket://); 'sim' runs the simulator on a pty")
    baud: int | None = opt(None, min=1200, max=115200, help="default: the board's (Kerong 19200, 8A/Modbus 9600)")
    polarity: Literal["open_high", "open_low"] = opt("open_high", help="lock-bit level that means 'door open'")
    reply_timeout_s: float = opt(0.3, min=0.01, max=5.0)
    retries: int = opt(1, min=0, max=3, help="opens re-sent after a status re-read shows the door still closed")
    pulse_ms: int = opt(300, min=50, max=PULSE_HARD_CAP_MS, help="coil pulse (Modbus/GPIO; Kerong/8A time their own)")
    rate_limit_s: float = opt(3.0, min=0.5, max=3600, help="minimum time between two pulses of one compartment")
    open_detect_s: float = opt(3.0, min=0.2, max=60, help="door must read open within this after a pulse")
    left_open_s: float = opt(120.0, min=1, max=86400, help="alarm when a door stays open longer")
    poll_interval_s: float = opt(0.5, min=0.05, max=60, help="door status polling period")
    offline_after: int = opt(3, min=1, max=100, help="failed polls before a board is reported offline")
    flap_limit: int = opt(8, min=3, max=1000, help="door changes within flap_window_s that raise sensor_fault")
    flap_window_s: float = opt(10.0, min=1, max=3600)
    pickup_deadline_days: int = opt(14, min=1, max=365)
    pin_attempts: int = opt(5, min=1, max=20, help="wrong PINs before a receipt is locked for PIN pickup")
    pin_valid_s: float = opt(300.0, min=10, max=3600, help="a verified PIN allows a pickup for this long")
    staff_pins: dict[str, str] = opt({}, check=check_staff_pins, help="staff id -> PIN hash")
    compartments: dict[str, CompartmentConfig] = opt({}, check=_check_compartments)
    gpio: GpioPins = opt(GpioPins())
    sim: SimConfig = opt(SimConfig())

    def problems(self) -> list[str]:
        """Cross-key checks the per-key rules cannot make: board and lock ranges of the driver."""
        boards, locks = BOARD_RANGES[self.driver]
        if self.driver == "gpio":
            locks = (1, len(self.gpio.relay_pins))
        out = []
        for key, c in sorted(self.compartments.items()):
            if not boards[0] <= c.board <= boards[1]:
                out.append(f"locker.compartments.{key}.board: found {c.board}, expected {boards[0]}..{boards[1]} "
                           f"for driver '{self.driver}'")
            if not locks[0] <= c.lock <= locks[1]:
                out.append(f"locker.compartments.{key}.lock: found {c.lock}, expected {locks[0]}..{locks[1]} "
                           f"for driver '{self.driver}'")
        if self.driver == "gpio" and len(self.gpio.sensor_pins) != len(self.gpio.relay_pins):
            out.append(f"locker.gpio: {len(self.gpio.relay_pins)} relay pins but {len(self.gpio.sensor_pins)} sensor pins")
        return out

    def compartment_ids(self) -> list[int]:
        return sorted(int(k) for k in self.compartments)

    def where(self, compartment: int) -> CompartmentConfig:
        return self.compartments[str(compartment)]

    def boards(self) -> list[int]:
        return sorted({c.board for c in self.compartments.values()})
