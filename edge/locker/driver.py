"""Serial locker-board driver: one request at a time over a transport it is given, never opened.

Safety lives here because it must hold for the CLI as well as the service:
- one coil at a time: requests are serialised, and a board-timed pulse is waited out before the
  next open is sent, so two coils are never energised together;
- the pulse length is capped (`PULSE_HARD_CAP_MS`) whatever the caller asks;
- every valid open is sent even when the door already reads open;
- after a timeout or a garbled/wrong-address reply the input is flushed and the board's status
  is read again before any retry: a lost reply never causes a blind resend, and a retry is only
  sent when a fresh status shows that door still closed.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from edge.errors import DeviceError, DeviceNotReady, ProtocolError
from edge.locker.protocols import BoardReading, FrameError, Reply

log = logging.getLogger(__name__)

try:  # pyserial's flush on a vanished pty raises termios.error, which is not an OSError
    import termios
    PORT_ERRORS: tuple[type[BaseException], ...] = (OSError, termios.error)
except ImportError:  # pragma: no cover - not POSIX
    PORT_ERRORS = (OSError,)

PULSE_HARD_CAP_MS = 1000  # motor locks need up to 1000 ms; solenoids 200-500 ms (design.md §5)
REPLY_TIMEOUT_S = 0.3
COIL_RELEASE_S = 0.05  # margin after a board-timed pulse for the relay to drop out


class NoReply(DeviceNotReady):
    """Error raised when a board does not answer within the reply timeout."""


class BoardOffline(DeviceNotReady):
    """Error raised when a board cannot be read (no reply, bad replies, or the port is gone)."""


class OpenUncertain(DeviceError):
    """Error raised when an open was sent but neither its reply nor a status re-read came back."""


@dataclass(frozen=True)
class OpenResult:
    board: int
    lock: int
    frames_sent: int  # open frames written (1, or more after a status-checked retry)
    door_open: bool | None  # what the reply or the status re-read says, None if unknown
    reply: bytes = b""
    note: str = ""  # e.g. "reply lost; status re-read shows the door open"


def cap_pulse(pulse_ms: int | None) -> int:
    if pulse_ms is None:
        return 300
    return max(1, min(int(pulse_ms), PULSE_HARD_CAP_MS))


class SerialLockerDriver:
    """Drives the boards on one RS485 bus through `protocol` (see edge.locker.protocols)."""

    def __init__(self, protocol: Any, *, transport: Any, reply_timeout_s: float = REPLY_TIMEOUT_S,
                 retries: int = 1, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.protocol = protocol
        self.transport = transport
        self.reply_timeout_s = reply_timeout_s
        self.retries = max(0, min(int(retries), 3))
        self.clock = clock
        self.sleep = sleep
        self._io = threading.Lock()
        self._coil_busy_until = 0.0
        self._wrote = False
        self.stats = {"timeouts": 0, "bad_frames": 0, "wrong_address": 0, "noise_bytes": 0}

    # -- transport ----------------------------------------------------------------------------
    def attach(self, transport: Any) -> None:
        """Use a new transport (the port came back); the old one is closed."""
        with self._io:
            self._close_transport()
            self.transport = transport

    def close(self) -> None:
        with self._io:
            self._close_transport()

    def _close_transport(self) -> None:
        if self.transport is not None:
            try:
                self.transport.close()
            except OSError:
                pass
        self.transport = None

    # -- commands -----------------------------------------------------------------------------
    def open(self, board: int, lock: int, pulse_ms: int | None = None) -> OpenResult:
        """Pulse one lock. Raises OpenUncertain if the outcome cannot be known (never resends)."""
        pulse_ms = cap_pulse(pulse_ms)
        frame = self.protocol.open_request(board, lock, pulse_ms)
        with self._io:
            sent, note = 0, ""
            for attempt in range(self.retries + 1):
                self._wait_coil_free()
                try:
                    sent += 1
                    reply = self._open_once(frame, board, lock, pulse_ms, sent)
                    door = _door(reply.reading, lock)
                    return OpenResult(board, lock, sent, door, reply.frame, note)
                except (NoReply, ProtocolError) as err:
                    reading = self._recheck(board, lock, err, sent)
                    door = reading.locks[lock].open if lock in reading.locks else None
                    note = f"{err}; status re-read shows the door {_word(door)}"
                    if door or attempt == self.retries:
                        return OpenResult(board, lock, sent, door, b"", note)
                    log.warning("locker board %s lock %s: %s; sending the open again", board, lock, note)
        raise AssertionError("unreachable")

    def status(self, board: int) -> BoardReading:
        with self._io:
            try:
                return self._transact(self.protocol.status_request(board), "status", board).reading
            except (NoReply, ProtocolError) as err:
                raise BoardOffline(f"board {board}: {err}") from err

    def all_off(self, boards: Iterable[int]) -> None:
        """Outputs to their safe state; boards that time their own pulse hold nothing on."""
        with self._io:
            for board in boards:
                frame = self.protocol.all_off_request(board)
                if frame is None:
                    continue
                try:
                    self._transact(frame, "all_off", board)
                except (NoReply, ProtocolError) as err:
                    log.warning("locker board %s: all-off not confirmed: %s", board, err)

    def scan(self, boards: Iterable[int] | None = None) -> list[int]:
        """Board addresses that answer a status request."""
        lo, hi = self.protocol.board_range
        found = []
        for board in boards if boards is not None else range(lo, hi + 1):
            try:
                self.status(board)
                found.append(board)
            except DeviceNotReady:
                continue
        return found

    # -- internals ----------------------------------------------------------------------------
    def _open_once(self, frame: bytes, board: int, lock: int, pulse_ms: int, sent: int) -> Reply:
        self._wrote = False
        try:
            reply = self._transact(frame, "open", board, pulse_ms=pulse_ms)
            if getattr(self.protocol, "echoes_writes", False) and reply.frame != frame:
                raise ProtocolError(f"echo {reply.frame.hex(' ')} differs from the request {frame.hex(' ')}")
            locks = reply.reading.locks if reply.reading is not None else {}
            if len(locks) == 1 and lock not in locks:  # an answer about another lock
                raise ProtocolError(f"open reply is about lock {next(iter(locks))}, expected lock {lock}")
            if reply.lock is not None and reply.lock != lock:  # e.g. a late Kerong reply to another unlock
                raise ProtocolError(f"open reply is about lock {reply.lock}, expected lock {lock}")
            return reply
        except DeviceNotReady as err:
            out = sent if self._wrote else sent - 1  # open frames that really went out
            if isinstance(err, NoReply) or out == 0:
                raise
            # A frame went out (this one, or an earlier attempt's), then the port vanished: the door
            # may be open, so this is not "nothing was sent". Never resend.
            raise OpenUncertain(f"board {board}: open sent {out}x, then {err}") from err

    def _recheck(self, board: int, lock: int, err: Exception, sent: int) -> BoardReading:
        """After a lost or bad reply: flush, then read the status (never resend blindly)."""
        try:
            self._flush()
            return self._transact(self.protocol.status_request(board), "status", board).reading
        except (DeviceNotReady, ProtocolError) as err2:
            raise OpenUncertain(
                f"board {board} lock {lock}: open sent {sent}x, {err}; status re-read failed: {err2}"
            ) from err2

    def coil_wait_s(self) -> float:
        """Seconds until the last pulse's coil window ends (0 when free)."""
        return max(0.0, self._coil_busy_until - self.clock())

    def _wait_coil_free(self) -> None:
        wait = self._coil_busy_until - self.clock()
        if wait > 0:
            self.sleep(wait)

    def _transact(self, frame: bytes, kind: str, board: int, *, pulse_ms: int | None = None) -> Reply:
        t = self._port()
        self._flush()
        try:
            t.write(frame)
            self._wrote = True
        except PORT_ERRORS as err:
            self._close_transport()
            raise DeviceNotReady(f"serial port gone while writing: {err}") from err
        if kind == "open":
            # Counted from the write: the board starts its timed pulse when the frame lands. A board
            # that chooses its own pulse length (Kerong, 8A) is not told our pulse_ms, so the next
            # coil waits out the longest pulse any lock may take (the hard cap): never two at once.
            told = getattr(self.protocol, "pulse_on_wire", True)
            window_ms = -(-(pulse_ms or 0) // 100) * 100 if told else PULSE_HARD_CAP_MS
            self._coil_busy_until = self.clock() + window_ms / 1000.0 + COIL_RELEASE_S
        reply = self._read_reply(kind)
        if reply.board != board:
            self.stats["wrong_address"] += 1
            raise ProtocolError(f"reply from board {reply.board}, expected board {board} ({reply.frame.hex(' ')})")
        return reply

    def _read_reply(self, kind: str) -> Reply:
        t = self._port()
        buf = bytearray()
        deadline = self.clock() + self.reply_timeout_s
        while True:
            try:
                reply, used = self.protocol.take_reply(kind, bytes(buf))
            except FrameError as err:
                self.stats["bad_frames"] += 1
                raise ProtocolError(str(err)) from err
            if reply is not None:
                if used > len(reply.frame):
                    self.stats["noise_bytes"] += used - len(reply.frame)
                return reply
            if used:
                self.stats["noise_bytes"] += used
                del buf[:used]
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            t.timeout = remaining
            try:
                chunk = t.read(max(1, t.in_waiting or 1))
            except PORT_ERRORS as err:
                self._close_transport()
                raise DeviceNotReady(f"serial port gone while reading: {err}") from err
            if not chunk:
                break
            buf += chunk
        self.stats["timeouts"] += 1
        got = f", got {bytes(buf).hex(' ')}" if buf else ""
        raise NoReply(f"no {kind} reply within {self.reply_timeout_s:g} s{got}")

    def _flush(self) -> None:
        t = self._port()
        try:
            t.reset_input_buffer()
        except PORT_ERRORS as err:
            self._close_transport()
            raise DeviceNotReady(f"serial port gone: {err}") from err

    def _port(self) -> Any:
        if self.transport is None:
            raise DeviceNotReady("serial port is not open")
        return self.transport


def _door(reading: BoardReading | None, lock: int) -> bool | None:
    if reading is None or lock not in reading.locks:
        return None
    return reading.locks[lock].open


def _word(door: bool | None) -> str:
    return {True: "open", False: "closed", None: "unknown"}[door]
