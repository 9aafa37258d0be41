"""Host → pager transmitter serial frames: JTECH/HME, LRS T74, WaveWare SPS, ESPA 4.4.4, OOK bridge.

Pure: bytes in, bytes out, no I/O and no imports from the rest of edge. Each transmitter is a
small class built from its settings (system id, capcode base, message) with `page_frame(card)`
for the driver and `decode(frame)` + `split(buffer)` for the simulator, which must refuse every
frame the real box would refuse. Frame layouts are from ../shared/pager.md §A.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

SOH, STX, ETX, EOT, ENQ, ACK, NAK, US, RS = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x15, 0x1F, 0x1E

# Pager numbers that mean "every card" on some systems: never page them by accident (§C).
BROADCAST_CARDS = frozenset({0, 999, 1005})
MAX_MESSAGE = 80
_PRINTABLE = re.compile(r"[ -~]*")


class FrameError(ValueError):
    """Error raised when a frame is malformed, out of range or fails its check (the box ignores it)."""


@dataclass(frozen=True)
class Page:
    """What a decoded frame asks the transmitter to do."""

    card: int
    system: int
    message: str = ""


def _check_card(card: int, top: int) -> None:
    if isinstance(card, bool) or not isinstance(card, int):
        raise FrameError(f"card must be an integer, found {card!r}")
    if card in BROADCAST_CARDS:
        raise FrameError(f"card {card} is a broadcast/all-off number on pager systems: refused")
    if not 1 <= card <= top:
        raise FrameError(f"card {card} out of range 1..{top}")


def _check_message(message: str) -> None:
    if len(message) > MAX_MESSAGE or not _PRINTABLE.fullmatch(message):
        raise FrameError(f"message must be at most {MAX_MESSAGE} printable ASCII characters, found {message!r}")


def _take_until(buffer: bytearray, end: bytes) -> list[bytes]:
    """Remove and return every complete `...end` chunk from the front of `buffer`."""
    frames = []
    while True:
        at = buffer.find(end)
        if at < 0:
            return frames
        frames.append(bytes(buffer[: at + len(end)]))
        del buffer[: at + len(end)]


class Transmitter:
    name: ClassVar[str] = ""
    baud: ClassVar[int] = 9600
    acked: ClassVar[bool] = False  # the box answers each page (ACK/NAK) over the wire
    max_card: ClassVar[int] = 99

    def page_frame(self, card: int) -> bytes:
        raise NotImplementedError

    def decode(self, frame: bytes) -> Page:
        raise NotImplementedError

    def split(self, buffer: bytearray) -> list[bytes]:
        raise NotImplementedError

    def parse_reply(self, reply: bytes) -> bool:
        """True for an acknowledgement, False for a refusal; FrameError if unreadable."""
        return True


class Jtech(Transmitter):
    """JTECH/HME J1901: `FF FF FF` fn base(3 ASCII) pager(4 ASCII) `03` [msg] `0D`, 19200 8N1."""

    name, baud, max_card = "jtech", 19200, 9999
    NUMERIC, ALPHA = 0x01, 0x03

    def __init__(self, system: int = 0, message: str = ""):
        if not 0 <= system <= 999:
            raise FrameError(f"jtech base id {system} out of range 0..999")
        _check_message(message)
        self.system, self.message = system, message

    def page_frame(self, card: int) -> bytes:
        _check_card(card, self.max_card)
        function = self.ALPHA if self.message else self.NUMERIC
        return (b"\xff\xff\xff" + bytes([function]) + b"%03d%04d" % (self.system, card) + b"\x03"
                + self.message.encode("ascii") + b"\r")

    def decode(self, frame: bytes) -> Page:
        if len(frame) < 13 or frame[:3] != b"\xff\xff\xff" or frame[-1:] != b"\r":
            raise FrameError(f"not a J1901 frame: {frame.hex(' ')}")
        function, digits, sep = frame[3], frame[4:11], frame[11]
        if function not in (0x01, 0x02, 0x03, 0x04):
            raise FrameError(f"J1901 function {function:#04x} is not a page")
        if not digits.isdigit() or sep != 0x03:
            raise FrameError(f"J1901 base/pager digits malformed: {frame.hex(' ')}")
        message = frame[12:-1]
        if function in (0x01, 0x02) and message and not message.isdigit():
            raise FrameError("J1901 numeric page carries non-digits")
        return Page(card=int(digits[3:]), system=int(digits[:3]), message=message.decode("ascii", "replace"))

    def split(self, buffer: bytearray) -> list[bytes]:
        return _take_until(buffer, b"\r")


def lrs_capcode(system: int, pager: int) -> int:
    """LRS capcode: base = 100000·S + 700000 for S ≤ 13; capcode = base + 8·pager."""
    if not 0 <= system <= 13:
        raise FrameError(f"LRS capcode formula holds for system id 0..13, found {system}")
    return 100000 * system + 700000 + 8 * pager


class Lrs(Transmitter):
    """LRS T74C232/T74USB: ASCII `PAGE,<pager>,<system>,<message>` + CR."""

    name, baud, max_card = "lrs", 9600, 998
    _LINE = re.compile(rb"PAGE,(\d{1,4}),(\d{1,4}),([ -~\x0c]*)\r")

    def __init__(self, system: int = 0, message: str = ""):
        if not 0 <= system <= 9999:
            raise FrameError(f"lrs system id {system} out of range 0..9999")
        if len(message) > MAX_MESSAGE or not re.fullmatch(r"[ -~\x0c]*", message):
            raise FrameError(f"lrs message must be printable ASCII (form feed allowed), found {message!r}")
        self.system, self.message = system, message

    def page_frame(self, card: int) -> bytes:
        _check_card(card, self.max_card)
        return b"PAGE,%d,%d,%s\r" % (card, self.system, self.message.encode("ascii"))

    def decode(self, frame: bytes) -> Page:
        match = self._LINE.fullmatch(frame.lstrip(b"\n"))
        if not match:
            raise FrameError(f"not an LRS PAGE line: {frame!r}")
        card = int(match[1])
        if card == 0:
            raise FrameError("LRS pager 0 pages every card")
        return Page(card=card, system=int(match[2]), message=match[3].decode("ascii"))

    def split(self, buffer: bytearray) -> list[bytes]:
        return _take_until(buffer, b"\r")

    # Anti-theft: with the cards' out-of-range alarm armed, a card alarms after 33 s without hearing
    # its base; a beep message `[0]` to the system capcode every 15 s is the keep-alive (pager.md §C).
    KEEPALIVE_MESSAGE = "[0]"
    _KEEPALIVE = re.compile(rb"CCPAGE,(\d{7}),(.*)\r")

    def keepalive_frame(self) -> bytes:
        return b"CCPAGE,%07d,%s\r" % (lrs_capcode(self.system, 0), self.KEEPALIVE_MESSAGE.encode("ascii"))

    def is_keepalive(self, frame: bytes) -> bool:
        """True for exactly our keep-alive; a CCPAGE to any other capcode is an error (FrameError)."""
        match = self._KEEPALIVE.fullmatch(frame.lstrip(b"\n"))
        if not match:
            return False
        if int(match[1]) != lrs_capcode(self.system, 0) or match[2] != self.KEEPALIVE_MESSAGE.encode("ascii"):
            raise FrameError(f"CCPAGE is not this base's keep-alive: {frame!r}")
        return True


class WaveWare(Transmitter):
    """WaveWare SPS: `SOH T,B,CAPCODE [STX msg ETX] EOT`; reply `SOH ACK …EOT` or `SOH NAK EE EOT`."""

    name, baud, acked, max_card = "waveware", 9600, True, 998
    RATES = {512: b"5", 1200: b"1", 2400: b"2"}
    _FRAME = re.compile(rb"\x01([AN1-4]),([512]),(\d{1,7})(?:\x02([ -~]*)\x03)?\x04")

    def __init__(self, system: int = 0, capcode_base: int = 0, beeps: int = 3, rate: int = 1200, message: str = ""):
        if rate not in self.RATES:
            raise FrameError(f"waveware rate {rate} not one of {sorted(self.RATES)}")
        if not 1 <= beeps <= 4:
            raise FrameError(f"waveware beeps {beeps} out of range 1..4")
        if not 0 <= capcode_base <= 9_999_999 - self.max_card:
            raise FrameError(f"waveware capcode_base {capcode_base} leaves no room for cards")
        _check_message(message)
        self.system, self.capcode_base, self.beeps, self.rate, self.message = system, capcode_base, beeps, rate, message

    def page_frame(self, card: int) -> bytes:
        _check_card(card, self.max_card)
        kind = b"A" if self.message else b"%d" % self.beeps
        body = b"\x02" + self.message.encode("ascii") + b"\x03" if self.message else b""
        return b"\x01%s,%s,%d%s\x04" % (kind, self.RATES[self.rate], self.capcode_base + card, body)

    def decode(self, frame: bytes) -> Page:
        match = self._FRAME.fullmatch(frame)
        if not match:
            raise FrameError(f"not a WaveWare page: {frame!r}")
        card = int(match[3]) - self.capcode_base
        if not 1 <= card <= self.max_card:
            raise FrameError(f"capcode {int(match[3])} is not a card of base {self.capcode_base}")
        return Page(card=card, system=self.system, message=(match[4] or b"").decode("ascii"))

    def split(self, buffer: bytearray) -> list[bytes]:
        return _take_until(buffer, b"\x04")

    @staticmethod
    def ack(queued: int = 0) -> bytes:
        return b"\x01ACK 1.0,%02d,1,1,00\x04" % min(queued, 99)

    @staticmethod
    def nak(code: int) -> bytes:
        return b"\x01NAK %02d\x04" % code

    def parse_reply(self, reply: bytes) -> bool:
        if reply.startswith(b"\x01ACK") and reply.endswith(b"\x04"):
            return True
        if reply.startswith(b"\x01NAK") and reply.endswith(b"\x04"):
            return False
        raise FrameError(f"unreadable WaveWare reply {reply!r}")


def bcc(data: bytes) -> int:
    """ISO 1745 block check: XOR of every byte after SOH up to and including ETX."""
    value = 0
    for byte in data:
        value ^= byte
    return value


class Espa(Transmitter):
    """ESPA 4.4.4 call record: `SOH 1 STX 1 US addr RS 2 US msg RS 3 US beep RS 4 US type RS
    5 US transmissions RS 6 US priority ETX BCC`, after a select `<station> ENQ` answered ACK."""

    name, baud, acked, max_card = "espa", 9600, True, 9999
    _RECORD = re.compile(rb"([1-6])\x1f([ -~]*)")

    def __init__(self, system: int = 0, station: str = "2", message: str = "", beep: int = 1,
                 transmissions: int = 3, priority: int = 3):
        if len(station) != 1 or not station.isdigit():
            raise FrameError(f"espa station must be one digit, found {station!r}")
        _check_message(message)
        if "\x1e" in message or "\x1f" in message:
            raise FrameError("espa message may not contain US/RS")
        self.system, self.station, self.message = system, station, message
        self.beep, self.transmissions, self.priority = beep, transmissions, priority

    def select(self) -> bytes:
        return self.station.encode() + b"\x05"

    def page_frame(self, card: int) -> bytes:
        _check_card(card, self.max_card)
        records = [(1, str(card)), (2, self.message or str(card)), (3, str(self.beep)), (4, "1"),
                   (5, str(self.transmissions)), (6, str(self.priority))]
        body = b"1\x02" + b"\x1e".join(b"%d\x1f%s" % (n, v.encode("ascii")) for n, v in records) + b"\x03"
        return b"\x01" + body + bytes([bcc(body)])

    def decode(self, frame: bytes) -> Page:
        if len(frame) < 6 or frame[0] != SOH or frame[1:3] != b"1\x02" or frame[-2] != ETX:
            raise FrameError(f"not an ESPA 4.4.4 call block: {frame!r}")
        if bcc(frame[1:-1]) != frame[-1]:
            raise FrameError(f"ESPA BCC {frame[-1]:#04x} wrong, expected {bcc(frame[1:-1]):#04x}")
        fields = {}
        for record in frame[3:-2].split(b"\x1e"):
            match = self._RECORD.fullmatch(record)
            if not match:
                raise FrameError(f"ESPA record malformed: {record!r}")
            fields[int(match[1])] = match[2].decode("ascii")
        if 1 not in fields or not fields[1].isdigit():
            raise FrameError("ESPA call record has no numeric address (record 1)")
        return Page(card=int(fields[1]), system=self.system, message=fields.get(2, ""))

    def split(self, buffer: bytearray) -> list[bytes]:
        """Blocks end one byte after ETX (the BCC); selects end with ENQ; EOT stands alone."""
        frames = []
        while buffer:
            if buffer[0] == SOH:
                at = buffer.find(bytes([ETX]))
                if at < 0 or len(buffer) < at + 2:
                    break
                end = at + 2
            elif buffer[0] == EOT:
                end = 1
            else:
                at = buffer.find(bytes([ENQ]))
                soh = buffer.find(bytes([SOH]))
                if at < 0 and soh < 0:
                    break
                end = at + 1 if at >= 0 and (soh < 0 or at < soh) else soh
            frames.append(bytes(buffer[:end]))
            del buffer[:end]
        return frames

    def parse_reply(self, reply: bytes) -> bool:
        if reply == b"\x06":
            return True
        if reply == b"\x15":
            return False
        raise FrameError(f"unreadable ESPA reply {reply!r}")


class OokBridge(Transmitter):
    """A serial microcontroller that replays an OOK pulse train with hardware timing.

    Frame: `'P' repeats(1) count(2, big-endian) pulses(count × 2, µs, big-endian) xor(1)`; reply
    `K` done or `E` refused. The pulses come from edge.pager.ook (pure encoders).
    """

    name, baud, acked, max_card = "ook", 115200, True, 998

    def __init__(self, system: int = 0, protocol: str = "retekess-t119", encoder=None):
        self.system, self.protocol, self.encoder = system, protocol, encoder

    def page_frame(self, card: int) -> bytes:
        _check_card(card, self.max_card)
        key = self.encoder(self.protocol, self.system, card)
        return self.pulse_frame(key["pulses_us"], key["repeats"])

    @staticmethod
    def pulse_frame(pulses: list[int], repeats: int) -> bytes:
        if not pulses or len(pulses) > 0xFFFF or any(not 0 < p <= 0xFFFF for p in pulses):
            raise FrameError("pulse train must hold 1..65535 durations of 1..65535 µs")
        body = b"P" + bytes([repeats]) + len(pulses).to_bytes(2, "big") + b"".join(p.to_bytes(2, "big") for p in pulses)
        return body + bytes([bcc(body)])

    def decode(self, frame: bytes) -> Page:
        pulses, _repeats = self.decode_pulses(frame)
        return Page(card=-1, system=self.system, message=",".join(map(str, pulses)))

    @staticmethod
    def decode_pulses(frame: bytes) -> tuple[list[int], int]:
        if len(frame) < 7 or frame[:1] != b"P":
            raise FrameError("not a bridge pulse frame")
        count = int.from_bytes(frame[2:4], "big")
        if len(frame) != 5 + 2 * count or bcc(frame[:-1]) != frame[-1]:
            raise FrameError("bridge pulse frame length or checksum wrong")
        pulses = [int.from_bytes(frame[4 + 2 * i: 6 + 2 * i], "big") for i in range(count)]
        return pulses, frame[1]

    def split(self, buffer: bytearray) -> list[bytes]:
        frames = []
        while len(buffer) >= 4:
            if buffer[0] != ord("P"):
                frames.append(bytes(buffer[:1]))
                del buffer[:1]
                continue
            size = 5 + 2 * int.from_bytes(buffer[2:4], "big")
            if len(buffer) < size:
                break
            frames.append(bytes(buffer[:size]))
            del buffer[:size]
        return frames

    def parse_reply(self, reply: bytes) -> bool:
        if reply == b"K":
            return True
        if reply == b"E":
            return False
        raise FrameError(f"unreadable bridge reply {reply!r}")


TRANSMITTERS: dict[str, type[Transmitter]] = {cls.name: cls for cls in (Jtech, Lrs, WaveWare, Espa, OokBridge)}


def transmitter(name: str, **settings) -> Transmitter:
    """Build a transmitter by its driver name with its settings; FrameError on a bad one."""
    if name not in TRANSMITTERS:
        raise FrameError(f"unknown transmitter {name!r}; expected one of {sorted(TRANSMITTERS)}")
    return TRANSMITTERS[name](**settings)
