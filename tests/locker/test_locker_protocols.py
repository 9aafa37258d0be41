"""Byte-exact frames of the three serial locker protocols, including frames that must be refused."""

import pytest

from edge.locker.protocols import EightAProtocol, FrameError, KerongProtocol, ModbusProtocol
from edge.locker.protocols import kerong, modbus


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- Kerong ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("board,lock,frame", [
    (0, 1, "02 00 31 03 36"),    # design.md §5
    (0, 16, "02 0f 31 03 45"),
    (2, 5, "02 24 31 03 5a"),
    (15, 16, "02 ff 31 03 35"),  # sum wraps at 0xFF
])
def test_kerong_open_frames(board, lock, frame):
    assert KerongProtocol().open_request(board, lock) == h(frame)


def test_kerong_status_request_is_status_all_of_the_board():
    assert KerongProtocol().status_request(1) == h("02 10 32 03 47")


@pytest.mark.parametrize("board,lock", [(16, 1), (-1, 1), (0, 0), (0, 17)])
def test_kerong_refuses_out_of_range_addresses(board, lock):
    with pytest.raises(ValueError, match="out of range"):
        KerongProtocol().open_request(board, lock)


@pytest.mark.parametrize("polarity,lock_bits,expect_open", [
    ("open_high", "01 00", {1}),
    ("open_low", "fe ff", {1}),  # every bit set except lock 1's: only lock 1 open
])
def test_kerong_status_reply_polarity(polarity, lock_bits, expect_open):
    body = h("02 00 35") + h(lock_bits) + h("02 80 03")
    reply = body + bytes([sum(body) & 0xFF])
    parsed, used = KerongProtocol(polarity).take_reply("status", reply)
    assert used == 9
    assert {n for n, s in parsed.reading.locks.items() if s.open} == expect_open
    assert {n for n, s in parsed.reading.locks.items() if s.occupied} == {2, 16}


def test_kerong_reply_round_trip_and_noise_before_it():
    p = KerongProtocol()
    reply = p.status_reply(3, [n == 4 for n in range(1, 17)], [False] * 16)
    parsed, used = p.take_reply("status", b"\xff\x17" + reply)
    assert parsed.board == 3 and used == 2 + len(reply)
    assert [n for n, s in parsed.reading.locks.items() if s.open] == [4]


def test_kerong_incomplete_reply_waits_for_more():
    reply = KerongProtocol().status_reply(0, [False] * 16, [False] * 16)
    assert KerongProtocol().take_reply("status", reply[:6]) == (None, 0)


@pytest.mark.parametrize("bad", ["02 00 35 00 00 00 00 03 00", "02 00 35 00 00 00 00 04 3b", "02 00 31 03 36"])
def test_kerong_refuses_bad_replies(bad):
    with pytest.raises(FrameError):
        KerongProtocol().take_reply("status", h(bad))


def test_kerong_request_decoding_for_the_simulator():
    req, used = KerongProtocol().take_request(h("02 24 31 03 5a"))
    assert (req.kind, req.board, req.lock, used) == ("open", 2, 5, 5)
    with pytest.raises(FrameError, match="checksum"):
        KerongProtocol().take_request(h("02 24 31 03 5b"))
    assert kerong.checksum(h("02 00 31 03")) == 0x36


# -- 8A -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("board,lock,frame", [
    (1, 1, "8a 01 01 11 9b"),  # design.md §5
    (2, 24, "8a 02 18 11 81"),
    (64, 3, "8a 40 03 11 d8"),
])
def test_8a_open_frames(board, lock, frame):
    assert EightAProtocol().open_request(board, lock) == h(frame)


def test_8a_status_request():
    assert EightAProtocol().status_request(1) == h("80 01 00 33 b2")


def test_8a_board_zero_is_refused():
    with pytest.raises(ValueError, match="board 0 out of range"):
        EightAProtocol().open_request(0, 1)


@pytest.mark.parametrize("header", [0x8A, 0x80])
def test_8a_open_reply_with_either_header(header):
    p = EightAProtocol()
    parsed, _ = p.take_reply("open", p.open_reply(1, 7, True, header=header))
    assert parsed.board == 1 and parsed.reading.locks[7].open


def test_8a_status_reply_bits_and_polarity():
    frame = h("80 05 81 00 00 33")
    frame += bytes([0x80 ^ 0x05 ^ 0x81 ^ 0x33])
    high, _ = EightAProtocol("open_high").take_reply("status", frame)
    low, _ = EightAProtocol("open_low").take_reply("status", frame)
    assert [n for n, s in high.reading.locks.items() if s.open] == [1, 8]
    assert len([n for n, s in low.reading.locks.items() if s.open]) == 22
    assert high.reading.locks[1].occupied is None


def test_8a_refuses_bad_bcc():
    with pytest.raises(FrameError, match="BCC"):
        EightAProtocol().take_reply("open", h("8a 01 01 11 9c"))


# -- Modbus RTU ---------------------------------------------------------------------------------

@pytest.mark.parametrize("call,frame", [
    (lambda p: p.open_request(1, 1, 700), "01 05 02 00 00 07 8d b0"),  # flash-on 700 ms
    (lambda p: p.open_request(1, 1, 300), "01 05 02 00 00 03 8c 73"),
    (lambda p: p.status_request(1), "01 02 00 00 00 08 79 cc"),
    (lambda p: p.all_off_request(1), "01 05 00 ff 00 00 fd fa"),
])
def test_modbus_frames(call, frame):
    assert call(ModbusProtocol()) == h(frame)


@pytest.mark.parametrize("asked,units", [(1, 1), (250, 3), (1000, 10), (5000, 10), (60000, 10)])
def test_modbus_pulse_is_capped_on_the_wire(asked, units):
    frame = ModbusProtocol().open_request(1, 2, asked)
    assert (frame[4] << 8 | frame[5]) == units


def test_modbus_crc_known_vector():
    assert modbus.crc16(h("01 05 00 ff 00 00")) == 0xFAFD


def test_modbus_inputs_reply_and_exception_reply():
    p = ModbusProtocol()
    parsed, used = p.take_reply("status", p.status_reply(1, [False, True] + [False] * 6))
    assert used == 6 and [n for n, s in parsed.reading.locks.items() if s.open] == [2]
    exception = modbus.frame(1, 0x82, 0x02)
    with pytest.raises(FrameError, match="exception code 2"):
        p.take_reply("status", exception)


def test_modbus_refuses_bad_crc_and_decodes_requests():
    p = ModbusProtocol()
    with pytest.raises(FrameError, match="CRC"):
        p.take_reply("open", h("01 05 02 00 00 07 8d b1"))
    req, _ = p.take_request(h("01 05 02 02 00 03 2d b3"))
    assert (req.kind, req.board, req.lock, req.pulse_ms) == ("open", 1, 3, 300)
