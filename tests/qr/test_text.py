"""Text as zxing-cpp gives it: every QR mode and charset, with and without ECI, decoded back
exactly; ZBar kept only where its bytes are UTF-8 or zxing-cpp read the same bytes; the QR
maximum accepted whole (segno makes the codes)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno

from edge.qr import decoder as dec
from edge.qr.decoder import Decoder, DecodeStats, _Raw


def qr(data, scale: int = 3, **options) -> np.ndarray:
    code = segno.make(data, micro=False, **options)
    buf = io.BytesIO()
    code.save(buf, kind="png", scale=scale, border=4)
    return cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)


ENCODINGS = [
    # (text, segno options, the QR mode segno must have chosen)
    ("0123456789012", {}, "numeric"),
    ("HELLO WORLD $%*+-./:", {}, "alphanumeric"),
    ("Café déjà vu, Ærø", {"encoding": "latin-1"}, "byte"),
    ("Café déjà vu, Ærø", {"encoding": "latin-1", "eci": True}, "byte"),
    ("Đăng ký khai sinh", {"encoding": "utf-8"}, "byte"),
    ("Đăng ký khai sinh", {"encoding": "utf-8", "eci": True}, "byte"),
    ("その駅では電報を扱う", {}, "kanji"),
    ("その駅では電報を扱う", {"encoding": "shift_jis", "eci": True}, "kanji"),
    ("その駅では電報を扱う", {"encoding": "utf-8", "eci": True}, "byte"),
    ("Съешь же ещё этих булок", {"encoding": "cp1251", "eci": True}, "byte"),
    ("Съешь же ещё этих булок", {"encoding": "iso-8859-5", "eci": True}, "byte"),
    ("计算机视觉", {"encoding": "gb18030", "eci": True}, "byte"),
]


@pytest.mark.parametrize("text, options, mode", ENCODINGS,
                         ids=[f"{m}-{o.get('encoding', 'default')}{'-eci' if o.get('eci') else ''}"
                              for _, o, m in ENCODINGS])
def test_every_mode_and_charset_is_decoded_exactly(text, options, mode):
    assert segno.make(text, micro=False, **options).mode == mode
    stats = DecodeStats()
    assert [s.text for s in Decoder().decode(qr(text, **options), stats)] == [text]
    assert stats.refused == []


def test_latin1_without_eci_was_refused_before_and_is_read_now():
    """The issue's main loss: ISO-8859-1 bytes are not UTF-8, yet zxing-cpp reads them right."""
    image = qr("Crème brûlée à la carte", encoding="latin-1")
    assert [s.text for s in Decoder(use_zbar=False).decode(image)] == ["Crème brûlée à la carte"]


@pytest.mark.parametrize("text, options", [
    ("1" * 7089, {}),                                   # numeric, version 40-L
    ("A" * 4296, {}),                                   # alphanumeric, version 40-L
    ("Đ" * 1476, {"encoding": "utf-8"}),                # 2,952 UTF-8 bytes
    ("x" * 2953, {}),                                   # 2,953 bytes: the byte-mode maximum
])
def test_the_largest_codes_are_read_whole_by_default(text, options):
    image = qr(text, scale=2, error="l", **options)
    assert [s.text for s in Decoder(budget_ms=2000).decode(image)] == [text]


def test_a_long_vcard_is_passed_on_for_the_parsers_to_judge():
    vcard = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Nguyễn Thị Bích Ngọc\r\n" + "NOTE:" + "ghi chú " * 180 + "\r\nEND:VCARD"
    (scan,) = Decoder().decode(qr(vcard, scale=2, encoding="utf-8", error="l"))
    assert scan.text == vcard and len(vcard) > 1024
    assert scan.kind == "unknown"


# -- which ZBar symbols are kept: the decoder's rule, fed with the passes' raw results ---------

SHIFT_JIS_READING = "Đăng ký".encode("utf-8").decode("shift_jis")  # ZBar's guess for this text


def decode_with(monkeypatch, passes) -> tuple[list[str], DecodeStats]:
    """Run Decoder.decode with these passes: [(name, [raw hits])]; returns texts and stats.

    Every pass but the last reports an unread QR-like symbol, so that the next one runs.
    """
    def fake_passes(self, gray, frame):
        for index, (name, hits) in enumerate(passes):
            unread = 1 if index < len(passes) - 1 else 0
            yield name, (lambda hits=hits, unread=unread: (hits, unread))
    monkeypatch.setattr(Decoder, "_passes", fake_passes)
    stats = DecodeStats()
    # the budget in this thread's CPU time: a stall of the process cannot end the passes early
    scans = Decoder(budget_ms=1000, clock=time.thread_time).decode(np.full((64, 64), 255, np.uint8), stats)
    return sorted(s.text for s in scans), stats


def test_the_shift_jis_trap_cannot_happen(monkeypatch):
    # Short Vietnamese is valid Shift_JIS: ZBar's own text would be mojibake...
    assert SHIFT_JIS_READING != "Đăng ký"
    # ...but we take ZBar's bytes, which are UTF-8: the right text.
    texts, _ = decode_with(monkeypatch, [("zbar", [_Raw("Đăng ký".encode(), (), "zbar")])])
    assert texts == ["Đăng ký"]


def test_zbar_bytes_that_are_not_utf8_are_refused_unless_zxing_read_them(monkeypatch):
    sjis = "その駅".encode("shift_jis")
    texts, stats = decode_with(monkeypatch, [("zbar", [_Raw(sjis, (), "zbar")])])
    assert texts == [] and any("ZBar only" in r for r in stats.refused)
    # zxing-cpp read the same bytes in a later pass: its text, once, and nothing refused.
    texts, stats = decode_with(monkeypatch, [("zxing", []), ("zbar", [_Raw(sjis, (), "zbar")]),
                                             ("zxing+clahe", [_Raw(sjis, (), "zxing+clahe", "その駅")])])
    assert texts == ["その駅"] and stats.refused == []


def test_zxing_text_wins_over_a_zbar_utf8_reading_of_the_same_bytes(monkeypatch):
    # An ECI ISO-8859-1 code whose bytes happen to be valid UTF-8: "Ã©" is C3 A9, "é" in UTF-8.
    data = "Ã©tat".encode("latin-1")
    texts, _ = decode_with(monkeypatch, [("zxing", []), ("zbar", [_Raw(data, (), "zbar")]),
                                         ("zxing+clahe", [_Raw(data, (), "zxing+clahe", "Ã©tat")])])
    assert texts == ["Ã©tat"]


def test_same_text_from_both_decoders_counts_once(monkeypatch):
    data = "1.001193".encode()
    texts, _ = decode_with(monkeypatch, [("zxing", [_Raw(data, (), "zxing", "1.001193")]),
                                         ("zbar", [_Raw(data, (), "zbar")])])
    assert texts == ["1.001193"]


def test_payload_larger_than_any_symbol_is_refused(monkeypatch):
    texts, stats = decode_with(monkeypatch, [("zxing", [_Raw(b"1" * 7090, (), "zxing", "1" * 7090)])])
    assert texts == [] and any("more than a QR symbol holds" in r for r in stats.refused)
    assert dec.MAX_SYMBOL_BYTES == 7089


# -- GS1: the GS separator is data in a GS1 symbol, a control character anywhere else ------------

PHOTOS = Path(__file__).resolve().parents[2] / "bench" / "qr-photos" / "zxing-cpp"
GS1_PHOTO = PHOTOS / "qrcode-2" / "gs1-figure-4.15.1-2.png"  # zxing-cpp's sample, symbology ]Q3


def test_a_gs1_code_is_read_with_its_gs_separators():
    """segno cannot make a GS1 (FNC1) code, so the committed GS1 sample is the test code."""
    label = GS1_PHOTO.with_suffix(".txt").read_bytes().decode("utf-8")
    assert label.count("\x1d") == 2  # two variable-length fields end with GS
    stats = DecodeStats()
    (scan,) = Decoder().decode(cv2.imread(str(GS1_PHOTO)), stats)
    assert scan.text == label
    assert stats.refused == []


def test_gs_outside_a_gs1_code_is_still_refused():
    text = "0109504000059101\x1d10ABC"  # the same separator in an ordinary byte-mode code
    assert segno.make(text, micro=False).mode == "byte"
    stats = DecodeStats()
    assert Decoder().decode(qr(text), stats) == []
    assert any("control character U+001D" in reason for reason in stats.refused)


def test_a_gs1_code_allows_gs_and_nothing_else(monkeypatch):
    gs1 = "0109504000059101\x1d10ABC"
    texts, stats = decode_with(monkeypatch, [("zxing", [_Raw(gs1.encode(), (), "zxing", gs1, gs1=True)])])
    assert texts == [gs1] and stats.refused == []
    escape = "0109504000059101\x1d10\x1b[2J"
    texts, stats = decode_with(monkeypatch, [("zxing", [_Raw(escape.encode(), (), "zxing", escape, gs1=True)])])
    assert texts == [] and any("control character U+001B" in reason for reason in stats.refused)


def test_zbar_bytes_with_gs_are_refused_as_zbar_cannot_tell_gs1(monkeypatch):
    data = b"0109504000059101\x1d10ABC"
    texts, stats = decode_with(monkeypatch, [("zbar", [_Raw(data, (), "zbar")])])
    assert texts == [] and any("U+001D" in reason for reason in stats.refused)
