"""Waveshare-style Modbus RTU relay boards: CRC16/Modbus (poly 0xA001, init 0xFFFF, low byte first).

Open = the board's own timed pulse: function 05 on register 0x0200 + channel with the time in
100 ms units (`01 05 02 00 00 03 CRC` = relay 1 on for 300 ms); the board answers with an echo.
All off: function 05 on 0x00FF with 0x0000. Door sensors on the digital inputs, read with
function 02 (`01 02 00 00 00 08 CRC` -> `01 02 01 BITS CRC`, bit 0 = input 1 = lock 1).
Unit address = board (1-247); channel = lock - 1. An exception reply (function | 0x80) is refused.
"""

from __future__ import annotations

from edge.locker.protocols.common import (
    BoardReading, FrameError, LockState, Polarity, Reply, Request,
    bit_is_open, check_range, open_to_bit, pack_bits, unpack_bits,
)

NAME = "modbus"
BAUD = 9600
FN_READ_INPUTS, FN_WRITE_COIL = 0x02, 0x05
FLASH_ON_BASE = 0x0200
ALL_COILS = 0x00FF
PULSE_UNIT_MS = 100
MAX_PULSE_UNITS = 10  # hard cap on the wire: 1000 ms, whatever the caller asked
CHANNELS = 8
WRITE_LEN = 8


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def frame(*body: int) -> bytes:
    data = bytes(body)
    crc = crc16(data)
    return data + bytes([crc & 0xFF, crc >> 8])


def pulse_units(pulse_ms: int) -> int:
    """Round up to 100 ms units, at least 1, never above the hard cap."""
    return max(1, min(MAX_PULSE_UNITS, -(-int(pulse_ms) // PULSE_UNIT_MS)))


class ModbusProtocol:
    name = NAME
    baud = BAUD
    locks_per_board = CHANNELS
    board_range = (1, 247)
    board_timed_pulse = True
    pulse_on_wire = True  # flash-on carries the pulse length (rounded up to 100 ms units)
    has_occupancy = False
    echoes_writes = True  # a write is answered with its exact echo; anything else is refused

    def __init__(self, polarity: Polarity = "open_high"):
        self.polarity = polarity

    def open_request(self, board: int, lock: int, pulse_ms: int | None = 300) -> bytes:
        check_range("board", board, 1, 247)
        check_range("lock", lock, 1, CHANNELS)
        reg = FLASH_ON_BASE + lock - 1
        units = pulse_units(pulse_ms or 300)
        return frame(board, FN_WRITE_COIL, reg >> 8, reg & 0xFF, units >> 8, units & 0xFF)

    def status_request(self, board: int) -> bytes:
        check_range("board", board, 1, 247)
        return frame(board, FN_READ_INPUTS, 0x00, 0x00, 0x00, CHANNELS)

    def all_off_request(self, board: int) -> bytes | None:
        check_range("board", board, 1, 247)
        return frame(board, FN_WRITE_COIL, ALL_COILS >> 8, ALL_COILS & 0xFF, 0x00, 0x00)

    def take_request(self, buf: bytes) -> tuple[Request | None, int]:
        if len(buf) < WRITE_LEN:
            return None, 0
        data = bytes(buf[:WRITE_LEN])
        _verify(data)
        board, fn, reg, value = data[0], data[1], (data[2] << 8) | data[3], (data[4] << 8) | data[5]
        if fn == FN_READ_INPUTS:
            return Request("status", board), WRITE_LEN
        if fn == FN_WRITE_COIL and reg == ALL_COILS and value == 0:
            return Request("all_off", board), WRITE_LEN
        if fn == FN_WRITE_COIL and FLASH_ON_BASE <= reg < FLASH_ON_BASE + CHANNELS:
            return Request("open", board, reg - FLASH_ON_BASE + 1, value * PULSE_UNIT_MS), WRITE_LEN
        if fn == FN_WRITE_COIL and reg < CHANNELS and value == 0:
            return Request("coil_off", board, reg + 1), WRITE_LEN
        raise FrameError(f"modbus: unsupported request {data.hex(' ')}")

    def status_reply(self, board: int, doors_open: list[bool], occupied: list[bool] | None = None) -> bytes:
        bits = pack_bits([open_to_bit(o, self.polarity) for o in doors_open], 1)
        return frame(board, FN_READ_INPUTS, 1, *bits)

    def echo_reply(self, request: bytes) -> bytes:
        return bytes(request)

    def take_reply(self, kind: str, buf: bytes) -> tuple[Reply | None, int]:
        fn = FN_READ_INPUTS if kind == "status" else FN_WRITE_COIL
        skipped = 0
        # Skip noise until a byte pair looks like "address, our function (or its exception)".
        while len(buf) - skipped >= 2 and buf[skipped + 1] not in (fn, fn | 0x80):
            skipped += 1
        data = bytes(buf[skipped:])
        if len(data) < 3:
            return None, skipped
        if data[1] == fn | 0x80:
            size = 5
        elif fn == FN_READ_INPUTS:
            size = 5 + data[2]
        else:
            size = WRITE_LEN
        if len(data) < size:
            return None, skipped
        data = data[:size]
        _verify(data)
        board = data[0]
        if data[1] & 0x80:
            raise FrameError(f"modbus: board {board} refused function 0x{fn:02x} with exception code {data[2]}")
        if kind != "status":
            return Reply(kind, board, data), skipped + size
        bits = unpack_bits(data[3:3 + data[2]], min(CHANNELS, data[2] * 8))
        locks = {i + 1: LockState(bit_is_open(b, self.polarity)) for i, b in enumerate(bits)}
        return Reply(kind, board, data, BoardReading(board, locks)), skipped + size


def _verify(data: bytes) -> None:
    crc = crc16(data[:-2])
    if data[-2:] != bytes([crc & 0xFF, crc >> 8]):
        raise FrameError(f"modbus: CRC {data[-2:].hex()} expected {crc & 0xFF:02x}{crc >> 8:02x} in {data.hex(' ')}")
