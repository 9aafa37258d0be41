""""8A" locker boards, RS485 9600 8N1; BCC = XOR of the preceding bytes; up to 64 boards.

Unlock `8A BOARD LOCK 11 BCC` (board and lock from 1, as on the wire: board 1 lock 1 =
`8A 01 01 11 9B`), answered `8A BOARD LOCK STATE BCC` (STATE 0x11 open, 0x00 closed; some
batches answer with header 0x80). Status of all `80 BOARD 00 33 BCC`, answered
`80 BOARD D1 D2 D3 33 BCC`: lock feedback bits of locks 1-24, D1 bit 0 = lock 1; polarity differs
between batches. No occupancy sensors. The board times its own pulse.
"""

from __future__ import annotations

from functools import reduce

from edge.locker.protocols.common import (
    BoardReading, FrameError, LockState, Polarity, Reply, Request,
    bit_is_open, check_range, open_to_bit, pack_bits, unpack_bits,
)

NAME = "8a"
BAUD = 9600
HDR_UNLOCK, HDR_STATUS, CMD_UNLOCK, CMD_STATUS = 0x8A, 0x80, 0x11, 0x33
STATE_OPEN, STATE_CLOSED = 0x11, 0x00
LOCKS = 24
DATA_BYTES = 3
REQUEST_LEN, OPEN_REPLY_LEN, STATUS_REPLY_LEN = 5, 5, 5 + DATA_BYTES - 1


def bcc(data: bytes) -> int:
    return reduce(lambda a, b: a ^ b, data, 0)


def frame(*body: int) -> bytes:
    data = bytes(body)
    return data + bytes([bcc(data)])


class EightAProtocol:
    name = NAME
    baud = BAUD
    locks_per_board = LOCKS
    board_range = (1, 64)
    board_timed_pulse = True
    pulse_on_wire = False  # the board chooses its own pulse length
    has_occupancy = False

    def __init__(self, polarity: Polarity = "open_high"):
        self.polarity = polarity

    def open_request(self, board: int, lock: int, pulse_ms: int | None = None) -> bytes:
        check_range("board", board, 1, 64)
        check_range("lock", lock, 1, LOCKS)
        return frame(HDR_UNLOCK, board, lock, CMD_UNLOCK)

    def status_request(self, board: int) -> bytes:
        check_range("board", board, 1, 64)
        return frame(HDR_STATUS, board, 0x00, CMD_STATUS)

    def all_off_request(self, board: int) -> bytes | None:
        return None

    def take_request(self, buf: bytes) -> tuple[Request | None, int]:
        start = _find(buf, (HDR_UNLOCK, HDR_STATUS))
        if start < 0:
            return None, len(buf)
        data = bytes(buf[start:start + REQUEST_LEN])
        if len(data) < REQUEST_LEN:
            return None, start
        _verify(data)
        if data[0] == HDR_UNLOCK and data[3] == CMD_UNLOCK:
            return Request("open", data[1], data[2]), start + REQUEST_LEN
        if data[0] == HDR_STATUS and data[3] == CMD_STATUS:
            return Request("status", data[1]), start + REQUEST_LEN
        raise FrameError(f"8a: unsupported request {data.hex(' ')}")

    def open_reply(self, board: int, lock: int, is_open: bool, header: int = HDR_UNLOCK) -> bytes:
        return frame(header, board, lock, STATE_OPEN if is_open else STATE_CLOSED)

    def status_reply(self, board: int, doors_open: list[bool], occupied: list[bool] | None = None) -> bytes:
        bits = pack_bits([open_to_bit(o, self.polarity) for o in doors_open], DATA_BYTES)
        return frame(HDR_STATUS, board, *bits, CMD_STATUS)

    def take_reply(self, kind: str, buf: bytes) -> tuple[Reply | None, int]:
        headers = (HDR_UNLOCK, HDR_STATUS) if kind == "open" else (HDR_STATUS,)
        start = _find(buf, headers)
        if start < 0:
            return None, len(buf)
        size = OPEN_REPLY_LEN if kind == "open" else STATUS_REPLY_LEN
        data = bytes(buf[start:start + size])
        if len(data) < size:
            return None, start
        _verify(data)
        board = data[1]
        if kind == "open":
            if data[3] not in (STATE_OPEN, STATE_CLOSED):
                raise FrameError(f"8a: unknown lock state 0x{data[3]:02x} in {data.hex(' ')}")
            reading = BoardReading(board, {data[2]: LockState(data[3] == STATE_OPEN)})
            return Reply(kind, board, data, reading), start + size
        if data[-2] != CMD_STATUS:
            raise FrameError(f"8a: status reply without 0x33 in {data.hex(' ')}")
        bits = unpack_bits(data[2:2 + DATA_BYTES], LOCKS)
        locks = {i + 1: LockState(bit_is_open(bits[i], self.polarity)) for i in range(LOCKS)}
        return Reply(kind, board, data, BoardReading(board, locks)), start + size


def _find(buf: bytes, headers: tuple[int, ...]) -> int:
    for i, b in enumerate(buf):
        if b in headers:
            return i
    return -1


def _verify(data: bytes) -> None:
    if bcc(data[:-1]) != data[-1]:
        raise FrameError(f"8a: BCC 0x{data[-1]:02x}, expected 0x{bcc(data[:-1]):02x} in {data.hex(' ')}")
