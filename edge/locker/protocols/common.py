"""Shared value types of the locker wire protocols (pure: no I/O, nothing else from edge)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# Which level of a lock-feedback bit means "door open": boards differ (design.md §5).
Polarity = Literal["open_high", "open_low"]


class FrameError(ValueError):
    """Error raised when bytes that start like a frame fail its checksum, terminator or shape."""


@dataclass(frozen=True)
class LockState:
    open: bool
    occupied: bool | None = None  # infrared occupancy where the board has it


@dataclass(frozen=True)
class BoardReading:
    board: int
    locks: dict[int, LockState] = field(default_factory=dict)  # lock number (1-based) -> state


@dataclass(frozen=True)
class Request:
    """A decoded request (what the simulator sees)."""
    kind: Literal["open", "status", "all_off", "coil_off"]
    board: int
    lock: int | None = None
    pulse_ms: int | None = None


@dataclass(frozen=True)
class Reply:
    """A decoded reply; `reading` when the reply carries door states."""
    kind: str
    board: int
    frame: bytes
    reading: BoardReading | None = None
    lock: int | None = None  # the lock the reply is addressed to, where the frame carries one


def bit_is_open(bit: int, polarity: Polarity) -> bool:
    return bool(bit) if polarity == "open_high" else not bit


def open_to_bit(is_open: bool, polarity: Polarity) -> int:
    return int(is_open) if polarity == "open_high" else int(not is_open)


def pack_bits(values: list[int], nbytes: int) -> bytes:
    """values[0] is bit 0 of the first byte (lock 1), values[8] bit 0 of the second, …"""
    out = bytearray(nbytes)
    for i, v in enumerate(values[: nbytes * 8]):
        if v:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def unpack_bits(data: bytes, count: int) -> list[int]:
    return [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]


def check_range(name: str, value: int, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} {value!r} out of range: expected {lo}..{hi}")
    return value
