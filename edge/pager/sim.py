"""Transmitter simulators on a pty: they decode every byte as the real box does and record pages.

`TransmitterSim("jtech", system=10).start()` returns a stable path (a symlink to the pty, like a
udev name) for the driver to open. A wrong checksum, frame or system id is refused (and NAKed
where the protocol answers); an accepted page appends the card to `vibrated`. `unplug()` and
`replug()` simulate a dead and returning USB transmitter at the same path.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from edge.hw.pty import RawPty, open_raw_pty
from edge.pager import ook, protocol

log = logging.getLogger(__name__)

# How long a host should wait for this simulator's answer (an ACK, a decoded page). It answers from a
# thread of the host's own process, so a loaded machine delays it: 0.46 s was seen on a busy 2-core CI
# machine, where a real box's 0.5 s ack timeout made a late ACK a retry and a second page. A waiter
# returns as soon as the answer is there; only a test of a silent box waits it out, with its own wait.
ANSWER_WAIT_S = 5.0


class TransmitterSim:
    """One simulated transmitter; thread-based so sync drivers and asyncio services both use it."""

    def __init__(self, transmitter: str, *, link_dir: str | Path | None = None,
                 on_page: Callable[[int], None] | None = None, clock: Callable[[], float] = time.time,
                 ook_protocol: str = "retekess-t119", **settings):
        if transmitter == "ook":
            settings = {"system": settings.get("system", 0), "protocol": ook_protocol, "encoder": ook.encode}
        self.codec = protocol.transmitter(transmitter, **settings)
        self.ook_protocol = ook_protocol
        self.on_page = on_page
        self.clock = clock
        self.vibrated: list[int] = []
        self.pages: list[tuple[float, int, str]] = []
        self.rejected: list[tuple[bytes, str]] = []
        self.keepalives: list[float] = []  # clock() of each LRS anti-theft keep-alive received
        self.last_byte_at: float | None = None  # perf_counter of the last byte received
        self.nak_next = 0  # fault injection: refuse the next N frames
        self.silent = False  # fault injection: never answer
        self.garble_next = 0  # fault injection: answer the next N frames with noise
        self._own_dir = link_dir is None
        self._dir = Path(link_dir or tempfile.mkdtemp(prefix="pager-sim-"))
        self.path = str(self._dir / f"{transmitter}-tx")
        self._cond = threading.Condition()
        self._master = self._slave = -1
        self._thread: threading.Thread | None = None
        self._running = False
        self._buffer = bytearray()
        self._wake_r, self._wake_w = os.pipe()
        self._unplug_asked = False
        self._unplug_done = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> str:
        self._open_pty()
        self._running = True
        self._thread = threading.Thread(target=self._serve, name=f"sim-{self.codec.name}", daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        self._running = False
        os.write(self._wake_w, b"x")
        if self._thread:
            # Ended by the wake byte at once; a generous wait because a thread still alive after it
            # would go on using descriptor numbers closed below, which the process may reuse.
            self._thread.join(timeout=ANSWER_WAIT_S)
        self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        if self._own_dir:
            shutil.rmtree(self._dir, ignore_errors=True)
        Path(self.path).unlink(missing_ok=True)

    def unplug(self) -> None:
        """The transmitter disappears: its port goes away and writes to it fail."""
        with self._cond:
            Path(self.path).unlink(missing_ok=True)
            if self._master < 0:
                return
            if self._thread is None or not self._thread.is_alive():
                self._close_pty()
                return
            # The serve thread closes the pty itself: while it sits in select() the kernel keeps
            # the master open, and the driver's side would not see the hang-up until it returns.
            self._unplug_done.clear()
            self._unplug_asked = True
            os.write(self._wake_w, b"x")
        self._unplug_done.wait(timeout=ANSWER_WAIT_S)

    def replug(self) -> None:
        """The transmitter comes back at the same path (a fresh pty, like a re-enumerated USB device)."""
        with self._cond:
            self._open_pty()

    @property
    def plugged(self) -> bool:
        return self._master >= 0

    def _open_pty(self) -> None:
        pty = open_raw_pty(self.path, nonblocking_master=True)
        self._master, self._slave = pty.master, pty.slave
        self._buffer.clear()

    def _close_pty(self) -> None:
        if self._master >= 0:
            RawPty(self._master, self._slave, "").close()
        self._master = self._slave = -1

    # -- waiting (tests) --------------------------------------------------------------------
    def wait_for(self, count: int, timeout_s: float = ANSWER_WAIT_S) -> bool:
        """Block until `count` pages were accepted in total; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.vibrated) >= count, timeout=timeout_s)

    # -- serving ----------------------------------------------------------------------------
    def _serve(self) -> None:
        while self._running:
            master = self._master
            if master < 0:
                time.sleep(0.01)
                continue
            try:
                ready, _, _ = select.select([master, self._wake_r], [], [], 0.5)
                if self._wake_r in ready:
                    os.read(self._wake_r, 64)
                    if self._unplug_asked:
                        with self._cond:
                            self._unplug_asked = False
                            self._close_pty()
                        self._unplug_done.set()
                    continue
                if not ready:
                    continue
                data = os.read(master, 4096)
            except (OSError, ValueError):
                time.sleep(0.01)  # unplugged under us, or the driver closed its side
                continue
            self.last_byte_at = time.perf_counter()
            with self._cond:
                self._buffer += data
                for frame in self.codec.split(self._buffer):
                    self._handle(frame)
                self._cond.notify_all()

    def _handle(self, frame: bytes) -> None:
        if isinstance(self.codec, protocol.Espa) and frame in (self.codec.select(), bytes([protocol.EOT])):
            if frame != bytes([protocol.EOT]):
                self._reply(b"\x06")
            return
        try:
            if isinstance(self.codec, protocol.Lrs) and self.codec.is_keepalive(frame):
                self.keepalives.append(self.clock())  # the T74 answers nothing, as for a page
                return
            card = self._decode(frame)
        except protocol.FrameError as err:
            self.rejected.append((frame, str(err)))
            log.warning("pager sim: refused frame %r: %s", frame[:40], err)
            self._reply(self._nak())
            return
        if self.nak_next > 0:
            self.nak_next -= 1
            self.rejected.append((frame, "fault injected: NAK"))
            self._reply(self._nak())
            return
        if self.garble_next > 0 and self.codec.acked:
            self.garble_next -= 1
            self.rejected.append((frame, "fault injected: garbled reply"))
            self._reply(b"\x01\x7f?\x04" if self.codec.name == "waveware" else b"\x7f")
            return
        self.vibrated.append(card)
        self.pages.append((self.clock(), card, self.codec.name))
        self._reply(self._ack())
        if self.on_page:
            self.on_page(card)

    def _decode(self, frame: bytes) -> int:
        if isinstance(self.codec, protocol.OokBridge):
            pulses, _repeats = self.codec.decode_pulses(frame)
            station, card = ook.decode(self.ook_protocol, pulses)
        else:
            page = self.codec.decode(frame)
            station, card = page.system, page.card
        if station != self.codec.system:
            raise protocol.FrameError(f"system id {station} is not this base's {self.codec.system}")
        if card in protocol.BROADCAST_CARDS or card < 1:
            raise protocol.FrameError(f"card {card} would page every card")
        return card

    def _ack(self) -> bytes:
        return {"waveware": protocol.WaveWare.ack(), "espa": b"\x06", "ook": b"K"}.get(self.codec.name, b"")

    def _nak(self) -> bytes:
        return {"waveware": protocol.WaveWare.nak(1), "espa": b"\x15", "ook": b"E"}.get(self.codec.name, b"")

    def _reply(self, data: bytes) -> None:
        if data and not self.silent and self._master >= 0:
            try:
                os.write(self._master, data)
            except OSError:
                pass
