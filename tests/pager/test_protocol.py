"""Byte-exact transmitter frames and OOK keys (test vectors from ../shared/pager.md)."""

import pytest

from edge.pager import ook, protocol
from edge.pager.protocol import FrameError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize("codec, card, frame", [
    # J1901 data sheet: numeric page, base 010, pager 0001.
    (protocol.Jtech(system=10), 1, h("FF FF FF 01 30 31 30 30 30 30 31 03 0D")),
    # Alpha page, base 010, pager 0004, "ABCDEFG".
    (protocol.Jtech(system=10, message="ABCDEFG"), 4,
     h("FF FF FF 03 30 31 30 30 30 30 34 03 41 42 43 44 45 46 47 0D")),
    (protocol.Lrs(system=3), 23, b"PAGE,23,3,\r"),
    (protocol.Lrs(system=3, message="\fF30Vv5"), 23, b"PAGE,23,3,\x0cF30Vv5\r"),
    # WaveWare manual: three beeps to capcode 145678 at 1200 bps.
    (protocol.WaveWare(capcode_base=145600, beeps=3, rate=1200), 78, b"\x013,1,145678\x04"),
    (protocol.WaveWare(capcode_base=100, rate=512, message="A012"), 7, b"\x01A,5,107\x02A012\x03\x04"),
])
def test_page_frames_are_exact(codec, card, frame):
    assert codec.page_frame(card) == frame
    assert codec.decode(frame).card == card


def test_espa_block_has_records_and_xor_bcc():
    codec = protocol.Espa(message="A012")
    frame = codec.page_frame(7)
    body = b"1\x021\x1f7\x1e2\x1fA012\x1e3\x1f1\x1e4\x1f1\x1e5\x1f3\x1e6\x1f3\x03"
    expected_bcc = 0
    for byte in body:
        expected_bcc ^= byte
    assert frame == b"\x01" + body + bytes([expected_bcc])
    assert codec.decode(frame) == protocol.Page(card=7, system=0, message="A012")
    assert codec.select() == b"2\x05"


@pytest.mark.parametrize("codec, frame, reason", [
    (protocol.Jtech(system=10), h("FF FF 01 30 31 30 30 30 30 31 03 0D"), "not a J1901"),
    (protocol.Jtech(system=10), h("FF FF FF 07 30 31 30 30 30 30 31 03 0D"), "not a page"),
    (protocol.Jtech(system=10), h("FF FF FF 01 30 31 30 30 30 3A 31 03 0D"), "malformed"),
    (protocol.Lrs(system=3), b"PAGE,0,3,\r", "every card"),
    (protocol.Lrs(system=3), b"PAGE,x,3,\r", "not an LRS"),
    (protocol.WaveWare(capcode_base=100), b"\x013,9,107\x04", "not a WaveWare"),
    (protocol.WaveWare(capcode_base=100), b"\x013,1,99\x04", "not a card"),
    (protocol.Espa(), b"\x011\x021\x1f7\x03\x00", "BCC"),
    (protocol.Espa(), b"\x011\x021\x1fx\x03" + bytes([ord("1") ^ 2 ^ ord("1") ^ 0x1F ^ ord("x") ^ 3]), "numeric address"),
])
def test_bad_frames_are_refused(codec, frame, reason):
    with pytest.raises(FrameError, match=reason):
        codec.decode(frame)


@pytest.mark.parametrize("card", [0, 100 * 100, 999, 1005, -1, True, "7"])
def test_bad_cards_are_refused_before_any_byte(card):
    with pytest.raises(FrameError):
        protocol.Jtech(system=10).page_frame(card)


def test_lrs_capcode_formula():
    assert protocol.lrs_capcode(3, 23) == 1000184
    with pytest.raises(FrameError):
        protocol.lrs_capcode(14, 1)


def test_waveware_replies():
    codec = protocol.WaveWare()
    assert codec.parse_reply(b"\x01ACK 1.0,02,1,1,00\x04") is True
    assert codec.parse_reply(b"\x01NAK 03\x04") is False
    with pytest.raises(FrameError):
        codec.parse_reply(b"garbage")


def test_split_keeps_partial_frames_for_later():
    codec = protocol.Jtech(system=10)
    buffer = bytearray(codec.page_frame(1) + codec.page_frame(2)[:5])
    assert codec.split(buffer) == [codec.page_frame(1)]
    buffer += codec.page_frame(2)[5:]
    assert codec.split(buffer) == [codec.page_frame(2)]


# -- OOK ------------------------------------------------------------------------------------------

def test_t119_vector():
    bits = ook.t119_bits(1234, 5)
    assert bits == "010010110010010100000000"
    assert int(bits, 2) == 0x4B2500


def test_td157_vectors():
    assert ook.td157_bits(100, 5) == "000110010000000001010010"
    assert int(ook.td157_bits(100, 5), 2) == 0x190052
    assert int(ook.td157_bits(100, 999, 0b1111, allow_all_off=True), 2) == 0x193E7F


def test_all_off_is_never_sent_by_accident():
    for pager in (0, 999, 1005):
        with pytest.raises(FrameError):
            ook.td157_bits(100, pager)
    with pytest.raises(FrameError):
        ook.t119_bits(1, 999)


def test_td161_nibbles_lsb_first():
    bits = ook.td161_bits(123, 45)
    nibbles = [int(bits[i:i + 4][::-1], 2) for i in range(0, 36, 4)]
    assert nibbles == [5, 4, 0, 0, 3, 2, 1, 0, 0]


def test_princeton_pulses():
    pulses = ook.princeton_pulses("10", 100)
    assert pulses == [300, 100, 100, 300, 100, 3000]


def test_td161_pulses_chip_grid():
    pulses = ook.td161_pulses("01")
    # 0 = chips 1000, 1 = chips 1110, then 28 off chips: high 1, low 3, high 3, low 1 + 28.
    assert pulses == [200, 600, 600, 200 + 28 * 200]


@pytest.mark.parametrize("name", sorted(ook.REPEATS))
def test_encode_roundtrip(name):
    key = ook.encode(name, 100, 42)
    assert set(key) == {"protocol", "bits", "pulses_us", "repeats"}
    assert ook.decode(name, key["pulses_us"]) == (100, 42)


def test_out_of_range_fields():
    with pytest.raises(FrameError, match="13 bits"):
        ook.t119_bits(1 << 13, 1)
    with pytest.raises(FrameError, match="0..999"):
        ook.td161_bits(1000, 1)
    with pytest.raises(FrameError, match="unknown OOK"):
        ook.encode("retekess-x", 1, 1)


# -- properties -------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CARDS = st.integers(1, 998).filter(lambda c: c not in protocol.BROADCAST_CARDS)


@settings(max_examples=200, deadline=None)
@given(system=st.integers(0, 999), card=CARDS, message=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20))
def test_serial_frames_roundtrip(system, card, message):
    for codec in (protocol.Jtech(system=system, message=message), protocol.Lrs(system=system, message=message),
                  protocol.WaveWare(system=system, capcode_base=1000, message=message),
                  protocol.Espa(system=system, message=message)):
        frame = codec.page_frame(card)
        buffer = bytearray(frame)
        assert codec.split(buffer) == [frame] and not buffer  # one whole frame, nothing left over
        page = codec.decode(frame)
        assert page.card == card and page.system == system


@settings(max_examples=200, deadline=None)
@given(system=st.integers(0, 999), card=CARDS, protocol_name=st.sampled_from(sorted(ook.REPEATS)))
def test_ook_keys_roundtrip(system, card, protocol_name):
    key = ook.encode(protocol_name, system, card)
    assert len(key["bits"]) == (36 if protocol_name == "retekess-td161" else 24)
    assert ook.decode(protocol_name, key["pulses_us"]) == (system, card)


@settings(max_examples=300, deadline=None)
@given(noise=st.binary(max_size=64))
def test_decoders_never_crash_on_noise(noise):
    for codec in (protocol.Jtech(), protocol.Lrs(), protocol.WaveWare(), protocol.Espa(),
                  protocol.OokBridge(encoder=ook.encode)):
        buffer = bytearray(noise)
        for frame in codec.split(buffer):
            try:
                codec.decode(frame)
            except protocol.FrameError:
                pass


def test_lrs_keepalive_frame_is_for_the_system_capcode():
    lrs = protocol.transmitter("lrs", system=3)
    assert lrs.keepalive_frame() == b"CCPAGE,1000000,[0]\r"  # base = 100000*3 + 700000, pager 0
    assert lrs.is_keepalive(b"CCPAGE,1000000,[0]\r")
    assert not lrs.is_keepalive(b"PAGE,1,3,\r")
    with pytest.raises(protocol.FrameError, match="not this base's keep-alive"):
        lrs.is_keepalive(b"CCPAGE,1000184,[0]\r")
