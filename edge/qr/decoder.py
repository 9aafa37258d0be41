"""Finding QR codes in a camera frame: zxing-cpp first, ZBar second, harder passes on a budget.

Text is taken the way zxing-cpp gives it: it honours an ECI charset, reads kanji mode as
Shift_JIS and, without an ECI, picks UTF-8 whenever the bytes are valid UTF-8, so ISO-8859-1,
Shift_JIS and Vietnamese UTF-8 codes all come back right. ZBar guesses Shift_JIS before UTF-8
and turns short Vietnamese into mojibake (shared/qr.md §6), so it is asked for raw bytes only
and its symbol is kept only where zxing-cpp read the same bytes (then zxing-cpp's text wins) or
the bytes are valid UTF-8. A symbol is refused only when its text is unsafe (a control
character other than TAB/CR/LF, or GS outside a GS1 symbol) or longer than any QR symbol can
hold; what a text means is for the parsers (edge.qr.codes) to decide.
"""

from __future__ import annotations

import ctypes
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np
import zxingcpp

from edge.qr.errors import QrInputError
from edge.qr.codes import DEFAULT_ALLOWED_HOSTS, MAX_TEXT_CHARS, ParsedCode, parse
from edge.qr.codes import safe_repr

log = logging.getLogger(__name__)

DEFAULT_BUDGET_MS = 150.0
MAX_FRAME_PIXELS = 40_000_000  # larger frames are refused: bounded time and memory
# In zxing-cpp 3 `QRCode` is a family that includes Micro QR, whose smallest versions have
# almost no error correction: clutter decoded as Micro QR gave false texts in the bench, and
# office codes are never Micro QR. Searching the family finds more full codes than asking for
# model 2 alone, so search the family and drop every symbol that is not a full QR code.
_ZX_FORMATS = zxingcpp.BarcodeFormat.QRCode
_ZX_FULL_QR = {zxingcpp.BarcodeFormat.QRCodeModel1, zxingcpp.BarcodeFormat.QRCodeModel2,
               zxingcpp.BarcodeFormat.QRCode}
# Control characters (C0, DEL and C1) have no place in an office code: they can clear a
# terminal or a log line. TAB/CR/LF may appear in free text (vCards, addresses).
_CONTROL = frozenset({c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)} | set(range(0x7F, 0xA0)))
# GS (U+001D) is the GS1 field separator: in a symbol that declares itself GS1 (FNC1 in first
# position: symbology identifier ]Q3, or ]Q4 with an ECI) it ends a variable-length field and is
# part of the data. Anywhere else it stays refused as a control character.
GS = "\x1d"
_GS1_IDENTIFIERS = frozenset({"]Q3", "]Q4"})
# The most any QR symbol holds (version 40-L): 7,089 digits, 4,296 alphanumerics, 2,953 bytes or
# 1,817 kanji (3,634 Shift_JIS bytes). More than this cannot have come from one symbol.
MAX_SYMBOL_BYTES = 7089


@dataclass(frozen=True)
class Scan:
    """One decoded QR code: `.text` (str), `.kind` (see edge.qr.codes.KINDS) and its meaning."""

    text: str
    kind: str
    fields: dict = field(default_factory=dict)
    reason: str | None = None
    decoder: str = ""  # which pass found it, e.g. "zxing", "zbar", "zxing+clahe"
    points: tuple[tuple[int, int], ...] = ()  # corners in frame pixels (may be empty)

    @property
    def code(self) -> str | None:
        return self.fields.get("code") or self.fields.get("uuid")

    def as_dict(self) -> dict:
        return {"text": self.text, "kind": self.kind}

    def __repr__(self) -> str:  # a citizen ID card's text must not reach a log through a repr
        return (f"Scan(text={safe_repr(self.text, self.kind)}, kind={self.kind!r}, "
                f"decoder={self.decoder!r})")


@dataclass
class _Raw:
    data: bytes
    points: tuple[tuple[int, int], ...]
    decoder: str
    text: str | None = None  # zxing-cpp's text (ECI honoured); None from ZBar (bytes only)
    gs1: bool = False  # zxing-cpp reports the symbol as GS1 (FNC1 first): GS separators allowed

    @property
    def from_zbar(self) -> bool:
        return self.text is None


@dataclass
class DecodeStats:
    """What one `Decoder.decode` call did: the passes it ran and why symbols were refused."""

    passes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # reasons for refused symbols


class Decoder:
    """QR decoding with a per-frame time budget; thread-safe (no state between frames)."""

    def __init__(self, *, budget_ms: float = DEFAULT_BUDGET_MS, max_text_chars: int = MAX_TEXT_CHARS,
                 allowed_hosts: tuple[str, ...] | list[str] = DEFAULT_ALLOWED_HOSTS,
                 use_zbar: bool = True, clock: Callable[[], float] = time.perf_counter):
        self.budget_s = budget_ms / 1000.0
        self.max_text_chars = max_text_chars
        self.allowed_hosts = tuple(allowed_hosts)
        self.use_zbar = use_zbar and _zbar_available()
        self.clock = clock

    # -- public -------------------------------------------------------------------------------
    def decode(self, frame: np.ndarray, stats: DecodeStats | None = None) -> list[Scan]:
        """Every readable QR code in `frame`, one Scan per distinct text; QrInputError for bad frames."""
        gray = to_gray(frame)
        stats = stats if stats is not None else DecodeStats()
        if min(gray.shape) < 8:
            return []  # smaller than one module of the smallest code: nothing to find
        deadline = self.clock() + self.budget_s
        frame = _Frame()
        found = frame.found
        hopeless = 0
        searched_regions = False
        for name, run in self._passes(gray, frame):
            if name != "zxing" and self.clock() > deadline:
                break  # the fast path always runs; harder passes only while time is left
            stats.passes.append(name)
            hits, candidates = run()
            for raw in hits:
                self._accept(raw, frame, stats)
            if candidates == 0 and not hits:
                hopeless += 1
            # Stop when this pass saw no QR-like symbol left unread and something was found, or
            # when EMPTY_PASSES passes saw nothing QR-like at all (most likely a frame without a
            # code: the bench's no-code frames would otherwise pay for every pass).
            if found and candidates == 0 and not searched_regions and self.search_regions:
                # Everything zxing-cpp saw is read; finder patterns outside those codes mean
                # another code it did not even detect (several codes in one view).
                searched_regions = True
                self._search_unread_regions(gray, frame, stats, deadline)
            if (found and candidates == 0) or (not found and hopeless >= self.EMPTY_PASSES):
                break
        frame.refuse_unconfirmed_zbar(stats)
        return list(found.values())

    EMPTY_PASSES = 3
    search_regions = True  # the multi-code search (edge.qr.regions); off to measure without it

    def _search_unread_regions(self, gray: np.ndarray, frame: "_Frame", stats: DecodeStats,
                               deadline: float) -> None:
        """Crop each region of unread finder patterns, upscale a small one, and decode it."""
        from edge.qr.regions import unread_regions

        for region in unread_regions(gray, [s.points for s in frame.found.values()]):
            if self.clock() > deadline:
                return
            stats.passes.append("region")
            for raw in _decode_region(gray, region):
                self._accept(raw, frame, stats)

    # -- passes -------------------------------------------------------------------------------
    def _passes(self, gray: np.ndarray, frame: "_Frame"):
        """(name, thunk) in escalating cost; each thunk returns (raw hits, unread QR-like symbols).

        Order and set chosen on the bench (`edge bench qr`, three seeds): each pass recovers codes
        the ones before it miss for the time it costs. Harder passes skip zxing's inverted
        search (the fast path did it) and upscaled images skip its downscaled search.
        """
        yield "zxing", lambda: _zxing(gray, "zxing", harder=False)
        yield "zxing+sharpen", lambda: _zxing(_sharpen(gray, 2.0), "zxing+sharpen")
        small = max(gray.shape) <= 1280  # upscaling a big frame costs more than it finds
        if small:
            yield "zxing+median+upscale", lambda: _zxing(_upscale(cv2.medianBlur(gray, 3)), "zxing+median+upscale",
                                                         scale=2.0)
        yield "zxing+sharpen3", lambda: _zxing(_sharpen(gray, 3.0), "zxing+sharpen3")
        if small:
            yield "zxing+upscale+sharpen", lambda: _zxing(_sharpen(_upscale(gray), 3.0), "zxing+upscale+sharpen",
                                                          scale=2.0)
            yield "zxing+blur+upscale", lambda: _zxing(_upscale(cv2.GaussianBlur(gray, (0, 0), 1.0)),
                                                       "zxing+blur+upscale", scale=2.0)
        yield "zxing+adaptive", lambda: _zxing(_adaptive(gray), "zxing+adaptive")
        if self.use_zbar:
            yield "zbar", lambda: _zbar(gray, "zbar")
            yield "zbar+sharpen", lambda: _zbar(_sharpen(gray, 2.0), "zbar+sharpen")
        yield "zxing+clahe", lambda: _zxing(_clahe(gray), "zxing+clahe")

    # -- text ---------------------------------------------------------------------------------
    def _accept(self, raw: _Raw, frame: "_Frame", stats: DecodeStats) -> None:
        """Keep one decoded symbol's text, or count why not (see the module docstring)."""
        if frame.known(raw):
            return
        if raw.from_zbar:
            text, why = bytes_to_text(raw.data, self.max_text_chars)
            if text is None:
                if why.startswith("not UTF-8"):
                    frame.unconfirmed_zbar[raw.data] = why  # zxing-cpp may still read it this frame
                else:
                    stats.refused.append(why)
                return
        else:
            text, why = check_text(raw.text, len(raw.data), self.max_text_chars, gs1=raw.gs1)
            if text is None:
                stats.refused.append(why)
                log.debug("refused a QR symbol from %s: %s", raw.decoder, why)
                return
        if text in frame.found:
            frame.by_bytes[raw.data] = (text, raw.from_zbar)
            return
        parsed: ParsedCode = parse(text, allowed_hosts=self.allowed_hosts, max_chars=self.max_text_chars)
        frame.add(raw, Scan(text, parsed.kind, parsed.fields, parsed.reason, raw.decoder, raw.points))


@dataclass
class _Frame:
    """What one frame's passes have read so far: texts, and which bytes gave which text."""

    found: dict[str, Scan] = field(default_factory=dict)
    by_bytes: dict[bytes, tuple[str, bool]] = field(default_factory=dict)  # bytes -> (text, from ZBar)
    unconfirmed_zbar: dict[bytes, str] = field(default_factory=dict)  # non-UTF-8 ZBar bytes -> why

    def known(self, raw: _Raw) -> bool:
        """True when these bytes were already read; zxing-cpp's text replaces a ZBar one."""
        seen = self.by_bytes.get(raw.data)
        if seen is None:
            return False
        text, seen_from_zbar = seen
        if seen_from_zbar and not raw.from_zbar and raw.text != text:
            del self.found[text]  # the same symbol: its ECI/charset as zxing-cpp read it wins
            del self.by_bytes[raw.data]
            return False
        return True

    def add(self, raw: _Raw, scan: Scan) -> None:
        self.found[scan.text] = scan
        self.by_bytes[raw.data] = (scan.text, raw.from_zbar)
        self.unconfirmed_zbar.pop(raw.data, None)

    def refuse_unconfirmed_zbar(self, stats: DecodeStats) -> None:
        for data, why in self.unconfirmed_zbar.items():
            if data not in self.by_bytes:
                stats.refused.append(f"ZBar only: {why}; its charset would be a guess")


def check_text(text: str | None, size: int, max_chars: int = MAX_TEXT_CHARS, *,
               gs1: bool = False) -> tuple[str | None, str]:
    """(text, "") when `text` is safe to pass on, else (None, why): size, emptiness, controls.

    `gs1`: the symbol is a GS1 code (as zxing-cpp reports it), so GS separators are data.
    """
    if text is None:
        return None, "no text"
    if size > MAX_SYMBOL_BYTES:
        return None, f"payload of {size} bytes is more than a QR symbol holds ({MAX_SYMBOL_BYTES})"
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte order mark is harmless
    if not text:
        return None, "empty payload"
    if len(text) > max_chars:
        return None, f"text of {len(text)} characters exceeds the limit of {max_chars}"
    bad = next((c for c in text if ord(c) in _CONTROL and not (gs1 and c == GS)), None)
    if bad is not None:
        return None, f"control character U+{ord(bad):04X} in the text"
    return text, ""


def bytes_to_text(data: bytes, max_chars: int = MAX_TEXT_CHARS) -> tuple[str | None, str]:
    """Strict UTF-8 text of raw symbol bytes (ZBar's), or (None, why it was refused)."""
    if len(data) > MAX_SYMBOL_BYTES:  # cheap check before decoding a huge payload
        return None, f"payload of {len(data)} bytes is more than a QR symbol holds ({MAX_SYMBOL_BYTES})"
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as err:
        return None, f"not UTF-8 text ({err.reason} at byte {err.start})"
    return check_text(text, len(data), max_chars)


# -- frames ------------------------------------------------------------------------------------

def to_gray(frame) -> np.ndarray:
    """A contiguous H×W uint8 view of a gray, BGR or BGRA frame; QrInputError for anything else."""
    if not isinstance(frame, np.ndarray):
        raise QrInputError(f"frame must be a numpy array, found {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise QrInputError(f"frame must be uint8 (gray or BGR), found dtype {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise QrInputError(f"frame must be H×W (gray) or H×W×3 (BGR), found shape {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise QrInputError(f"frame is empty (shape {frame.shape})")
    if frame.shape[0] * frame.shape[1] > MAX_FRAME_PIXELS:
        raise QrInputError(f"frame of {frame.shape[1]}×{frame.shape[0]} pixels is larger than "
                           f"{MAX_FRAME_PIXELS} pixels: downscale it first")
    if frame.ndim == 3:
        code = cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        frame = cv2.cvtColor(frame, code)
    return np.ascontiguousarray(frame)


def _clahe(gray: np.ndarray) -> np.ndarray:
    return cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(gray)


def _upscale(gray: np.ndarray) -> np.ndarray:
    return cv2.resize(gray, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)


def _sharpen(gray: np.ndarray, sigma: float) -> np.ndarray:
    """Unsharp mask: undoes some of the blur of a defocused or moving camera."""
    blurred = cv2.GaussianBlur(gray, (0, 0), sigma)
    return cv2.addWeighted(gray, 2.5, blurred, -1.5, 0)


def _adaptive(gray: np.ndarray) -> np.ndarray:
    block = max(15, (min(gray.shape) // 16) | 1)
    return cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block, 5)


def _decode_region(gray: np.ndarray, region) -> list[_Raw]:
    """zxing-cpp on one region: upscaled to about 4 px per module, then sharpened if unread."""
    crop = cv2.copyMakeBorder(region.crop(gray), 8, 8, 8, 8, cv2.BORDER_REPLICATE)
    scale = float(min(4.0, max(1.0, 4.0 / max(region.module_px, 0.5))))
    if scale > 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    for image in (crop, _sharpen(crop, 3.0)):
        hits, _ = _zxing(image, "region", scale=scale)
        if hits:
            shift = (region.x0 - 8, region.y0 - 8)
            return [_Raw(h.data, tuple((x + shift[0], y + shift[1]) for x, y in h.points), h.decoder, h.text,
                         h.gs1) for h in hits]
    return []


# -- the two decoders --------------------------------------------------------------------------

def _zxing(gray: np.ndarray, name: str, *, scale: float = 1.0, harder: bool = True,
           binarizer=zxingcpp.Binarizer.LocalAverage) -> tuple[list[_Raw], int]:
    """zxing-cpp raw bytes, and how many QR-like symbols it found but could not decode."""
    results = zxingcpp.read_barcodes(gray, formats=_ZX_FORMATS, binarizer=binarizer,
                                     text_mode=zxingcpp.TextMode.Plain, return_errors=True,
                                     try_invert=not harder, try_downscale=scale <= 1.0)
    hits, failed = [], 0
    for r in results:
        if r.error or not r.valid:
            failed += 1  # a QR-like symbol seen but not read: worth a harder pass
            continue
        if r.format not in _ZX_FULL_QR:
            continue
        pos = r.position
        corners = (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left)
        points = tuple((int(p.x / scale), int(p.y / scale)) for p in corners)
        hits.append(_Raw(bytes(r.bytes), points, name, r.text, gs1=_is_gs1(r)))
    return hits, failed


def _is_gs1(result) -> bool:
    """True when zxing-cpp read the symbol as GS1: FNC1 in first position (]Q3, ]Q4)."""
    return result.content_type == zxingcpp.ContentType.GS1 or result.symbology_identifier in _GS1_IDENTIFIERS


_ZBAR_CFG_BINARY = 4  # zbar >= 0.23: return raw bytes instead of a charset guess


def _zbar_available() -> bool:
    try:
        from pyzbar import wrapper  # noqa: F401  (loads libzbar)
    except (ImportError, OSError) as err:
        log.warning("ZBar unavailable, decoding with zxing-cpp only: %s", err)
        return False
    return True


def _zbar(gray: np.ndarray, name: str, *, scale: float = 1.0) -> tuple[list[_Raw], int]:
    """ZBar through pyzbar's ctypes bindings, in binary mode, with the full data length.

    pyzbar.decode() cannot do this: it returns ZBar's charset guess and cuts at the first NUL.
    """
    from pyzbar import wrapper as zb

    hits: list[_Raw] = []
    scanner = zb.zbar_image_scanner_create()
    try:
        zb.zbar_image_scanner_set_config(scanner, 0, zb.ZBarConfig.CFG_ENABLE, 0)
        zb.zbar_image_scanner_set_config(scanner, zb.ZBarSymbol.QRCODE, zb.ZBarConfig.CFG_ENABLE, 1)
        if zb.zbar_image_scanner_set_config(scanner, zb.ZBarSymbol.QRCODE, _ZBAR_CFG_BINARY, 1) != 0:
            return hits, 0  # an old ZBar without binary mode would guess charsets: do not use it
        zb.zbar_image_scanner_set_config(scanner, 0, zb.ZBarConfig.CFG_POSITION, 1)
        image = zb.zbar_image_create()
        try:
            zb.zbar_image_set_format(image, 0x30303859)  # fourcc 'Y800': 8-bit gray
            zb.zbar_image_set_size(image, gray.shape[1], gray.shape[0])
            zb.zbar_image_set_data(image, ctypes.cast(gray.ctypes.data, ctypes.c_void_p), gray.size, None)
            if zb.zbar_scan_image(scanner, image) < 0:
                return hits, 0
            symbol = zb.zbar_image_first_symbol(image)
            while symbol:
                length = zb.zbar_symbol_get_data_length(symbol)
                data = ctypes.string_at(zb.zbar_symbol_get_data(symbol), length)
                points = tuple(
                    (int(zb.zbar_symbol_get_loc_x(symbol, i) / scale), int(zb.zbar_symbol_get_loc_y(symbol, i) / scale))
                    for i in range(zb.zbar_symbol_get_loc_size(symbol))
                )
                hits.append(_Raw(data, points, name))
                symbol = zb.zbar_symbol_next(symbol)
        finally:
            zb.zbar_image_destroy(image)
    finally:
        zb.zbar_image_scanner_destroy(scanner)
    return hits, 0


_default: Decoder | None = None


def decode(frame: np.ndarray) -> list[Scan]:
    """Every QR code in a gray (H×W) or BGR (H×W×3) uint8 frame, with the default settings."""
    global _default
    if _default is None:
        _default = Decoder()
    return _default.decode(frame)
