"""Kerong KR-CU16/CU12 lock boards, RS485 19200 8N1: `02 ADDR CMD 03 SUM`, SUM = byte sum & 0xFF.

ADDR = (board << 4) | (lock - 1): boards 0-15 by DIP switch, locks 1-16 as labelled (0-15 on the
wire). Commands: 0x30 status of one lock, 0x31 unlock one, 0x32 status of all, 0x33 unlock all
(never sent by edge: opening is one coil at a time). The board times the unlock pulse itself.
Every command is answered with the status frame `02 ADDR 35 D1 D2 D3 D4 03 SUM`: D1 = lock
feedback bits of locks 1-8 (bit 0 = lock 1), D2 = locks 9-16, D3/D4 = infrared occupancy bits in
the same order. Lock-bit polarity differs between board batches (`polarity`).
"""

from __future__ import annotations

from edge.locker.protocols.common import (
    BoardReading, FrameError, LockState, Polarity, Reply, Request,
    bit_is_open, check_range, open_to_bit, pack_bits, unpack_bits,
)

NAME = "kerong"
BAUD = 19200
STX, ETX = 0x02, 0x03
CMD_STATUS_ONE, CMD_UNLOCK_ONE, CMD_STATUS_ALL, CMD_UNLOCK_ALL, CMD_STATUS_REPLY = 0x30, 0x31, 0x32, 0x33, 0x35
REQUEST_LEN, REPLY_LEN = 5, 9


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def frame(addr: int, cmd: int, payload: bytes = b"") -> bytes:
    body = bytes([STX, addr, cmd, *payload, ETX])
    return body + bytes([checksum(body)])


def address(board: int, lock: int) -> int:
    check_range("board", board, 0, 15)
    check_range("lock", lock, 1, 16)
    return (board << 4) | (lock - 1)


class KerongProtocol:
    name = NAME
    baud = BAUD
    locks_per_board = 16
    board_range = (0, 15)
    board_timed_pulse = True  # the board times the coil; pulse_ms is not on the wire
    pulse_on_wire = False
    has_occupancy = True

    def __init__(self, polarity: Polarity = "open_high"):
        self.polarity = polarity

    # -- requests ----------------------------------------------------------------------------
    def open_request(self, board: int, lock: int, pulse_ms: int | None = None) -> bytes:
        return frame(address(board, lock), CMD_UNLOCK_ONE)

    def status_request(self, board: int) -> bytes:
        return frame(address(board, 1), CMD_STATUS_ALL)

    def all_off_request(self, board: int) -> bytes | None:
        return None  # nothing is held on: the board ends its own pulse

    def take_request(self, buf: bytes) -> tuple[Request | None, int]:
        start = _find(buf, STX)
        if start < 0:
            return None, len(buf)
        data = buf[start:start + REQUEST_LEN]
        if len(data) < REQUEST_LEN:
            return None, start
        _verify(data)
        board, lock = data[1] >> 4, (data[1] & 0x0F) + 1
        kinds = {CMD_UNLOCK_ONE: "open", CMD_STATUS_ONE: "status", CMD_STATUS_ALL: "status"}
        if data[2] not in kinds:
            raise FrameError(f"kerong: unsupported command 0x{data[2]:02x}")
        kind = kinds[data[2]]
        return Request(kind, board, lock if kind == "open" else None), start + REQUEST_LEN

    # -- replies -----------------------------------------------------------------------------
    def status_reply(self, board: int, doors_open: list[bool], occupied: list[bool], lock: int = 1) -> bytes:
        lock_bits = [open_to_bit(o, self.polarity) for o in doors_open]
        return frame(address(board, lock), CMD_STATUS_REPLY, pack_bits(lock_bits, 2) + pack_bits([int(o) for o in occupied], 2))

    def take_reply(self, kind: str, buf: bytes) -> tuple[Reply | None, int]:
        start = _find(buf, STX)
        if start < 0:
            return None, len(buf)
        data = buf[start:start + REPLY_LEN]
        if len(data) < 3 or (data[2] == CMD_STATUS_REPLY and len(data) < REPLY_LEN):
            return None, start
        if data[2] != CMD_STATUS_REPLY:
            raise FrameError(f"kerong: reply command 0x{data[2]:02x}, expected 0x35 ({data.hex(' ')})")
        _verify(data)
        board = data[1] >> 4
        bits = unpack_bits(data[3:5], 16)
        ir = unpack_bits(data[5:7], 16)
        locks = {i + 1: LockState(bit_is_open(bits[i], self.polarity), bool(ir[i])) for i in range(16)}
        # An unlock is answered at the unlocked lock's address; a status-all reply's lock nibble means nothing.
        addressed = (data[1] & 0x0F) + 1 if kind == "open" else None
        return Reply(kind, board, bytes(data), BoardReading(board, locks), addressed), start + REPLY_LEN


def _find(buf: bytes, header: int) -> int:
    return bytes(buf).find(bytes([header]))


def _verify(data: bytes) -> None:
    if data[-2] != ETX:
        raise FrameError(f"kerong: no ETX in {data.hex(' ')}")
    if checksum(data[:-1]) != data[-1]:
        raise FrameError(f"kerong: checksum 0x{data[-1]:02x}, expected 0x{checksum(data[:-1]):02x} in {data.hex(' ')}")
