"""Locker board simulators that speak the exact bytes of each protocol, on a pty or in-process.

`BusSim` is the boards behind one RS485 bus (doors, occupancy, pulses received, injectable
faults); `PtySim` serves it on a pseudo-terminal like a USB-RS485 adapter (optionally behind a
stable symlink, like /dev/serial/by-id, so it can be unplugged and plugged back); `SimTransport`
is an in-process transport with pyserial's read/write API for fast tests.
"""

from __future__ import annotations

import logging
import os
import random
import select
import threading
import time

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from edge.hw.pty import RawPty, open_raw_pty
from edge.locker.protocols import PROTOCOLS, FrameError, Request

log = logging.getLogger(__name__)

FAULTS = ("no_reply", "garbled", "wrong_address", "noise")


@dataclass
class DoorSim:
    open: bool = False
    occupied: bool = False
    stuck: bool = False  # a pulse does not open it (jammed bolt, dead coil)
    opened_at: float | None = None


@dataclass
class Pulse:
    board: int
    lock: int
    t: float
    pulse_ms: int | None


@dataclass
class BusSim:
    """The boards on one bus. Thread-safe: the test thread moves doors while the sim answers."""

    protocol_name: str = "kerong"
    boards: Iterable[int] = (0,)
    polarity: str = "open_high"
    auto_close_s: float | None = None  # a simulated citizen closes the door after this long
    default_pulse_ms: int = 300
    clock: Callable[[], float] = time.monotonic
    seed: int | None = None
    doors: dict[tuple[int, int], DoorSim] = field(default_factory=dict)
    pulses: list[Pulse] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    offline: set[int] = field(default_factory=set)  # boards that neither act nor answer
    on_pulse: Callable[[Pulse], None] | None = None  # called as a pulse lands (tests: kill -9 here)

    def __post_init__(self):
        self.protocol = PROTOCOLS[self.protocol_name](self.polarity)
        self.boards = list(self.boards)
        self._lock = threading.RLock()
        self._faults: dict[str, int] = {f: 0 for f in FAULTS}
        self._rng = random.Random(self.seed)
        for board in self.boards:
            for lock in range(1, self.protocol.locks_per_board + 1):
                self.doors[(board, lock)] = DoorSim()

    # -- what a test or the demo does to the world -------------------------------------------
    def inject(self, fault: str, count: int = 1) -> None:
        """Make the next `count` replies suffer `fault` (one of FAULTS); the command still acts."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")
        with self._lock:
            self._faults[fault] += count

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = {f: 0 for f in FAULTS}
            self.offline.clear()

    def door(self, board: int, lock: int) -> DoorSim:
        return self.doors[(board, lock)]

    def force_open(self, board: int, lock: int) -> None:
        """Someone pries a door open without a command."""
        with self._lock:
            self._set_open(self.doors[(board, lock)], True)

    def close_door(self, board: int, lock: int) -> None:
        with self._lock:
            self._set_open(self.doors[(board, lock)], False)

    def set_occupied(self, board: int, lock: int, occupied: bool) -> None:
        with self._lock:
            self.doors[(board, lock)].occupied = occupied

    def pulses_for(self, board: int, lock: int) -> int:
        with self._lock:
            return sum(1 for p in self.pulses if (p.board, p.lock) == (board, lock))

    # -- the wire ----------------------------------------------------------------------------
    def handle(self, data: bytes) -> bytes:
        """Feed request bytes (one or more whole frames); return the reply bytes."""
        out, buf = bytearray(), bytes(data)
        while buf:
            try:
                request, used = self.protocol.take_request(buf)
            except FrameError as err:
                log.debug("sim %s: ignoring bad frame: %s", self.protocol_name, err)
                break  # a real board stays silent on a bad frame
            if request is None:
                break
            buf = buf[used:]
            out += self.answer(request)
        return bytes(out)

    def answer(self, request: Request) -> bytes:
        with self._lock:
            self._tick()
            self.requests.append(request)
            if request.board not in self.boards or request.board in self.offline:
                return b""
            self._act(request)
            reply = self._reply(request, request.board)
            return self._apply_faults(request, reply)

    def _act(self, request: Request) -> None:
        if request.kind == "open":
            if (request.board, request.lock) not in self.doors:
                return
            pulse = Pulse(request.board, request.lock, self.clock(), request.pulse_ms)
            self.pulses.append(pulse)
            if self.on_pulse is not None:
                self.on_pulse(pulse)
            door = self.doors[(request.board, request.lock)]
            if not door.stuck:
                self._set_open(door, True)

    def _reply(self, request: Request, board: int) -> bytes:
        p, name = self.protocol, self.protocol_name
        states = [self.doors.get((request.board, n), DoorSim()) for n in range(1, p.locks_per_board + 1)]
        doors_open, occupied = [d.open for d in states], [d.occupied for d in states]
        if name == "kerong":
            return p.status_reply(board, doors_open, occupied, lock=request.lock or 1)
        if name == "8a":
            if request.kind == "open":
                return p.open_reply(board, request.lock, doors_open[request.lock - 1])
            return p.status_reply(board, doors_open)
        if request.kind == "status":
            return p.status_reply(board, doors_open)
        return p.echo_reply(self._request_bytes(request, board))

    def _request_bytes(self, request: Request, board: int) -> bytes:
        p = self.protocol
        if request.kind == "open":
            return p.open_request(board, request.lock, request.pulse_ms)
        if request.kind == "all_off":
            return p.all_off_request(board)
        from edge.locker.protocols.modbus import frame
        return frame(board, 0x05, 0x00, request.lock - 1, 0x00, 0x00)

    def _apply_faults(self, request: Request, reply: bytes) -> bytes:
        f = self._faults
        if f["no_reply"]:
            f["no_reply"] -= 1
            return b""
        if f["wrong_address"]:
            f["wrong_address"] -= 1
            return self._reply(request, self._other_board(request.board))
        if f["garbled"]:
            f["garbled"] -= 1
            bad = bytearray(reply)
            bad[len(bad) // 2] ^= 0x5A
            return bytes(bad)
        if f["noise"]:
            f["noise"] -= 1
            return bytes(self._rng.randrange(256) for _ in range(self._rng.randrange(1, 6))) + reply
        return reply

    def _other_board(self, board: int) -> int:
        lo, hi = self.protocol.board_range
        return lo + (board - lo + 1) % (hi - lo + 1)

    def _set_open(self, door: DoorSim, is_open: bool) -> None:
        door.open = is_open
        door.opened_at = self.clock() if is_open else None

    def _tick(self) -> None:
        if self.auto_close_s is None:
            return
        now = self.clock()
        for door in self.doors.values():
            if door.open and door.opened_at is not None and now - door.opened_at >= self.auto_close_s:
                self._set_open(door, False)


class SimTransport:
    """In-process transport with the part of pyserial's API the driver uses; no pty, no waiting."""

    def __init__(self, bus: BusSim):
        self.bus = bus
        self.timeout: float | None = 0.1
        self.is_open = True
        self._rx = bytearray()
        self.written = bytearray()

    def write(self, data: bytes) -> int:
        if not self.is_open:
            raise OSError(5, "simulated port closed")
        self.written += data
        self._rx += self.bus.handle(bytes(data))
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise OSError(5, "simulated port closed")
        chunk = bytes(self._rx[:size])
        del self._rx[:size]
        return chunk  # empty = the reply timed out (nothing more will come)

    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def reset_input_buffer(self) -> None:
        self._rx.clear()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.is_open = False


class PtySim:
    """Serve a BusSim on a pseudo-terminal; `path` is what a driver opens (the symlink if given)."""

    def __init__(self, bus: BusSim, *, link: str | Path | None = None):
        self.bus = bus
        self.link = Path(link) if link else None
        self._master = self._slave = -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.tty_path = ""
        self.served = 0  # request frames handled: acted on, and the reply (if any) written back
        self.sent = 0  # reply bytes written back in all
        self._served_cond = threading.Condition()

    @property
    def path(self) -> str:
        return str(self.link) if self.link else self.tty_path

    def start(self) -> "PtySim":
        self._open_pty()
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"locker-sim-{self.bus.protocol_name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._served_cond:  # a PacedPort waiting for a reply: the port is gone
            self._served_cond.notify_all()
        if self._thread:
            self._thread.join(timeout=2)
            self._thread = None
        self._close_pty()
        if self.link and self.link.is_symlink():
            self.link.unlink()

    def unplug(self) -> None:
        """The USB adapter is pulled: the pty goes away under the driver."""
        self.stop()

    def replug(self) -> None:
        """Plugged back: a new pty (new /dev/pts number) behind the same symlink."""
        self.start()

    def paced(self, port: Any, *, silence_at_once: bool = False) -> "PacedPort":
        """`port` (opened on `path`) read in step with these boards: see PacedPort."""
        return PacedPort(port, self, silence_at_once=silence_at_once)

    def counts(self) -> tuple[int, int]:
        """(request frames served, reply bytes sent) so far."""
        with self._served_cond:
            return self.served, self.sent

    def wait_served(self, frames: int, timeout_s: float = 10.0) -> int | None:
        """Until `frames` request frames in all have been handled (their replies, if any, written to
        the pty); returns the reply bytes written so far, or None once unplugged (nothing more will
        be served). TimeoutError naming the counts after `timeout_s`."""
        with self._served_cond:
            done = self._served_cond.wait_for(lambda: self.served >= frames or self._stop.is_set(), timeout_s)
            if not done:
                raise TimeoutError(f"pty sim: {self.served} of {frames} request frames handled within {timeout_s} s")
            return None if self.served < frames else self.sent

    def __enter__(self) -> "PtySim":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _open_pty(self) -> None:
        pty = open_raw_pty(self.link)
        self._master, self._slave, self.tty_path = pty.master, pty.slave, pty.tty_path

    def _close_pty(self) -> None:
        if self._master >= 0:
            RawPty(self._master, self._slave, "").close()
        self._master = self._slave = -1

    def _serve(self) -> None:
        buf = bytearray()
        master = self._master
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(master, 4096)
            except (OSError, ValueError):
                return
            buf += data
            buf = self._answer_all(master, buf)

    def _answer_all(self, master: int, buf: bytearray) -> bytearray:
        p = self.bus.protocol
        while buf:
            try:
                request, used = p.take_request(bytes(buf))
            except FrameError as err:
                log.debug("pty sim: dropping bad frame: %s", err)
                return bytearray()
            if request is None:
                del buf[:used]
                return buf
            del buf[:used]
            reply = self.bus.answer(request)
            if reply:
                try:
                    os.write(master, reply)
                except OSError:
                    return bytearray()
            with self._served_cond:  # counted once its reply is on the wire (wait_served)
                self.served += 1
                self.sent += len(reply)
                self._served_cond.notify_all()
        return buf


class PacedPort:
    """A serial port on a PtySim, read in step with its boards: a read (or a flush of the input)
    first waits until the boards have handled every frame written and their reply bytes have come
    through the pty (the kernel passes them on from a worker thread). The simulated boards answer
    at once, like real ones; without this, on a loaded machine the boards' thread or the kernel's
    worker could be scheduled after the driver's reply timeout: the driver rightly took the reply
    for lost, then met the late bytes with its next request, and a test charged a late pulse to
    the next command. A reply the boards never send still times out in real time, or at once with
    `silence_at_once` (a long fault run). One port per simulator at a time; what the simulator
    served before this port was made is not waited for. The service and `edge locker` read their
    `port = "sim"` through one (edge.locker.hardware, edge.locker.cli), the tests' rigs too.
    """

    SETTLE_S = 10.0  # generous: it ends as soon as the bytes are through

    def __init__(self, port: Any, sim: PtySim, *, silence_at_once: bool = False):
        self.port, self.sim = port, sim
        self.silence_at_once = silence_at_once
        self._frames, self._taken = sim.counts()  # frames written, reply bytes read or flushed, from here on

    def write(self, data: bytes) -> int:
        written = self.port.write(data)
        self._frames += 1  # the driver writes one whole frame at a time
        return written

    def read(self, size: int = 1) -> bytes:
        self._settle()
        if self.silence_at_once and not self.port.in_waiting:
            return b""  # the boards sent nothing more: the reply timeout, without waiting it out
        data = self.port.read(size)
        self._taken += len(data)
        return data

    def reset_input_buffer(self) -> None:
        self._settle()
        self._taken += self.port.in_waiting
        self.port.reset_input_buffer()

    def _settle(self) -> None:
        sent = self.sim.wait_served(self._frames, self.SETTLE_S)
        if sent is None:
            return  # unplugged: the port itself says so
        deadline = time.monotonic() + self.SETTLE_S
        while self._taken + self.port.in_waiting < sent:
            if time.monotonic() > deadline:
                raise TimeoutError(f"pty sim: {sent - self._taken} reply bytes never reached the port")
            time.sleep(0.001)

    @property
    def timeout(self) -> float | None:
        return self.port.timeout

    @timeout.setter
    def timeout(self, seconds: float | None) -> None:
        self.port.timeout = seconds

    @property
    def in_waiting(self) -> int:
        # Settled first: the driver asks before it reads, and so reads a whole reply in one go (a
        # reply must not wait for a second read whose turn the driver's deadline may have passed).
        self._settle()
        return self.port.in_waiting

    @property
    def is_open(self) -> bool:
        return self.port.is_open

    def flush(self) -> None:
        self.port.flush()

    def close(self) -> None:
        self.port.close()
