"""Pager transmitter driver: writes protocol frames to a transport it is given, reads acks.

The driver never opens a port: `open_transport(url)` does (edge.hw.serial: pyserial
`serial_for_url`, so a pty path, `/dev/ttyUSB0`, `socket://…` and `spy://…` all work), and the
service hands the result in.
One page at a time: the cheap systems have no over-the-air acknowledgement, so reliability is the
box's own repetition plus our retransmission of frames the box refused or did not answer.
"""

from __future__ import annotations

import logging
import termios
import time
from dataclasses import dataclass
from typing import Any, Callable

from edge.errors import DeviceError, DeviceNotReady, ProtocolError
from edge.hw.serial import open_serial
from edge.pager import protocol

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 0.5
CTS_WAIT_S = 2.0
CTS_CHUNK = 16  # bytes written between CTS checks: the JTECH Premises buffer is small


class TransmitterError(DeviceError):
    """Error raised when the transmitter refuses a page after every retry, or its port fails."""


def open_transport(url: str, *, baud: int, rtscts: bool = False, timeout_s: float = ACK_TIMEOUT_S) -> Any:
    """Open the transmitter's port by URL or device path (edge.hw.serial); DeviceNotReady when absent."""
    return open_serial(url, baud=baud, timeout_s=timeout_s, write_timeout_s=2.0, rtscts=rtscts,
                       what="pager transmitter port")


@dataclass
class PageResult:
    card: int
    frame: bytes
    attempts: int


class PagerDriver:
    """Send pages through `transport` (a pyserial-like object: write, read, flush, cts)."""

    def __init__(self, transport: Any, transmitter: protocol.Transmitter, *, retries: int = 2,
                 ack_timeout_s: float = ACK_TIMEOUT_S, cts_flow: bool = False, cts_wait_s: float = CTS_WAIT_S,
                 monotonic: Callable[[], float] = time.monotonic):
        self.transport = transport
        self.transmitter = transmitter
        self.retries = retries
        self.ack_timeout_s = ack_timeout_s
        self.cts_flow = cts_flow
        self.cts_wait_s = cts_wait_s
        self.monotonic = monotonic

    def page(self, card: int) -> PageResult:
        """Page one card; raises FrameError for a bad card, TransmitterError when the box fails."""
        frame = self.transmitter.page_frame(card)  # FrameError (a ValueError) before any I/O
        return self._deliver(frame, card, f"the page to card {card}")

    def keepalive(self) -> PageResult:
        """LRS anti-theft keep-alive to the system capcode (card 0 in the result)."""
        keepalive_frame = getattr(self.transmitter, "keepalive_frame", None)
        if keepalive_frame is None:
            raise protocol.FrameError(f"the {self.transmitter.name} transmitter has no keep-alive")
        return self._deliver(keepalive_frame(), 0, "the keep-alive")

    def _deliver(self, frame: bytes, card: int, what: str) -> PageResult:
        last_problem = ""
        for attempt in range(1, self.retries + 2):
            try:
                if self._send(frame):
                    return PageResult(card, frame, attempt)
                last_problem = "refused (NAK)"
            except ProtocolError as err:
                last_problem = str(err)
            except (OSError, termios.error) as err:  # tcdrain on a vanished pty raises termios.error
                raise TransmitterError(f"{self.transmitter.name} port failed: {err}") from err
            log.info("pager: %s %s %s, attempt %d", self.transmitter.name, what, last_problem, attempt)
        raise TransmitterError(f"{self.transmitter.name} did not accept {what} after "
                               f"{self.retries + 1} attempts: {last_problem}")

    def _send(self, frame: bytes) -> bool:
        if self.transmitter.acked and hasattr(self.transport, "reset_input_buffer"):
            self.transport.reset_input_buffer()  # a late reply to an earlier attempt must not answer this one
        try:
            if isinstance(self.transmitter, protocol.Espa):
                return self._send_espa(frame)
            self._write(frame)
            if not self.transmitter.acked:
                return True
            return self.transmitter.parse_reply(self._read_reply())
        except protocol.FrameError as err:  # garbled reply: a failed attempt, not a bad card
            raise ProtocolError(f"garbled reply from the {self.transmitter.name} transmitter: {err}") from err

    def _send_espa(self, frame: bytes) -> bool:
        # ISO 1745 select: the base station must agree (ACK) before it takes the block.
        self._write(self.transmitter.select())
        if not self.transmitter.parse_reply(self._read_exact(1)):
            return False
        self._write(frame)
        accepted = self.transmitter.parse_reply(self._read_exact(1))
        self._write(bytes([protocol.EOT]))
        return accepted

    def _write(self, data: bytes) -> None:
        if not self.cts_flow:
            self.transport.write(data)
            self.transport.flush()
            return
        for start in range(0, len(data), CTS_CHUNK):
            self._wait_for_cts()
            self.transport.write(data[start:start + CTS_CHUNK])
            self.transport.flush()

    def _wait_for_cts(self) -> None:
        # JTECH Premises drops CTS while its buffer is full: bytes written then are lost.
        deadline = self.monotonic() + self.cts_wait_s
        while not self.transport.cts:
            if self.monotonic() > deadline:
                raise DeviceNotReady(f"transmitter held CTS low for {self.cts_wait_s} s")
            time.sleep(0.005)

    def _read_reply(self) -> bytes:
        """Read one `SOH … EOT` reply (WaveWare) or a single ACK/NAK byte (bridge)."""
        first = self._read_exact(1)
        if first != b"\x01":
            return first
        reply = bytearray(first)
        deadline = self.monotonic() + self.ack_timeout_s
        while not reply.endswith(b"\x04"):
            if self.monotonic() > deadline or len(reply) > 64:
                raise ProtocolError(f"reply not terminated: {bytes(reply)!r}")
            reply += self.transport.read(1)
        return bytes(reply)

    def _read_exact(self, count: int) -> bytes:
        old = self.transport.timeout
        self.transport.timeout = self.ack_timeout_s
        try:
            data = self.transport.read(count)
        finally:
            self.transport.timeout = old
        if len(data) < count:
            raise ProtocolError(f"no answer from the {self.transmitter.name} transmitter within {self.ack_timeout_s} s")
        return data

    def close(self) -> None:
        try:
            self.transport.close()
        except OSError:
            pass


def make_transmitter(name: str, *, system: int = 0, ook_protocol: str = "retekess-t119", **settings) -> protocol.Transmitter:
    """Build a transmitter codec by driver name (the OOK bridge gets the pure encoder injected)."""
    if name == "ook":
        from edge.pager import ook

        return protocol.OokBridge(system=system, protocol=ook_protocol, encoder=ook.encode)
    return protocol.transmitter(name, system=system, **settings)
