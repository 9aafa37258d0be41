"""The serial driver against the pty simulators: exact bytes, faults, and the no-blind-resend rule."""

import pytest

from edge.errors import DeviceNotReady
from edge.locker.driver import PULSE_HARD_CAP_MS, BoardOffline, OpenUncertain
from edge.testing import FakeClock

PROTOCOLS = ["kerong", "8a", "modbus"]


@pytest.mark.parametrize("name", PROTOCOLS)
def test_open_pulses_exactly_that_lock(rig, name):
    r = rig(name)
    result = r.driver.open(r.board, 3, 300)
    assert r.bus.pulses_for(r.board, 3) == 1
    assert [(p.board, p.lock) for p in r.bus.pulses] == [(r.board, 3)]
    assert result.frames_sent == 1
    assert r.driver.status(r.board).locks[3].open
    assert not r.driver.status(r.board).locks[2].open


@pytest.mark.parametrize("name", PROTOCOLS)
@pytest.mark.parametrize("polarity", ["open_high", "open_low"])
def test_status_reads_doors_with_either_polarity(rig, name, polarity):
    r = rig(name, polarity=polarity)
    r.bus.force_open(r.board, 2)
    reading = r.driver.status(r.board)
    assert [n for n, s in reading.locks.items() if s.open] == [2]


def test_kerong_reports_occupancy(rig):
    r = rig("kerong")
    r.bus.set_occupied(0, 5, True)
    assert r.driver.status(0).locks[5].occupied is True
    assert r.driver.status(0).locks[4].occupied is False


@pytest.mark.parametrize("name", PROTOCOLS)
@pytest.mark.parametrize("fault", ["no_reply", "garbled", "wrong_address"])
def test_lost_or_bad_reply_is_followed_by_a_status_read_not_a_resend(rig, name, fault):
    r = rig(name)
    r.bus.inject(fault)
    result = r.driver.open(r.board, 4, 300)
    # The open landed (the door is open), its reply was lost or bad: flush, re-read, no resend.
    assert r.kinds() == ["open", "status"]
    assert r.bus.pulses_for(r.board, 4) == 1
    assert result.door_open is True and result.frames_sent == 1
    assert "status re-read shows the door open" in result.note


@pytest.mark.parametrize("name", PROTOCOLS)
def test_retry_only_after_a_status_read_shows_the_door_still_closed(rig, name):
    r = rig(name)
    clock = FakeClock(1000.0)  # the coil window before the retry passes on this clock, not in real time
    r.driver.clock, r.driver.sleep = clock, clock.sleep
    r.bus.door(r.board, 6).stuck = True
    r.bus.inject("no_reply")
    result = r.driver.open(r.board, 6, 300)
    assert r.kinds() == ["open", "status", "open"]
    assert result.frames_sent == 2 and result.door_open is not True  # Modbus echoes carry no door bit


def test_no_retry_when_retries_is_zero(rig):
    r = rig("kerong", retries=0)
    r.bus.door(0, 6).stuck = True
    r.bus.inject("no_reply")
    result = r.driver.open(0, 6)
    assert r.kinds() == ["open", "status"] and result.frames_sent == 1


@pytest.mark.parametrize("name", PROTOCOLS)
def test_open_with_no_reply_and_no_status_is_uncertain_and_never_resent(rig, name):
    r = rig(name)
    r.bus.inject("no_reply", 5)
    with pytest.raises(OpenUncertain, match="status re-read failed"):
        r.driver.open(r.board, 1, 300)
    assert r.kinds() == ["open", "status"]
    assert r.bus.pulses_for(r.board, 1) == 1


@pytest.mark.parametrize("name", PROTOCOLS)
def test_noise_before_a_reply_is_skipped(rig, name):
    r = rig(name)
    r.bus.inject("noise")
    r.bus.force_open(r.board, 1)
    # Noise may or may not look like a frame start; either way the result is never wrong.
    try:
        reading = r.driver.status(r.board)
    except BoardOffline:
        return
    assert reading.locks[1].open


@pytest.mark.parametrize("name", PROTOCOLS)
def test_wrong_address_status_is_refused(rig, name):
    r = rig(name)
    r.bus.inject("wrong_address")
    with pytest.raises(BoardOffline, match="expected board"):
        r.driver.status(r.board)


def test_offline_board_and_scan(rig):
    r = rig("8a", boards=[1, 3])
    r.bus.offline.add(3)
    with pytest.raises(BoardOffline, match="no status reply"):
        r.driver.status(3)
    assert r.driver.scan([1, 2, 3]) == [1]


def test_modbus_pulse_is_capped_and_coils_never_overlap(rig):
    r = rig("modbus")
    clock = FakeClock(1000.0)  # one clock for the board and the driver: the test does not depend on speed
    r.bus.clock = clock
    r.driver.clock, r.driver.sleep = clock, clock.sleep
    for lock in (1, 2, 3):
        r.driver.open(1, lock, 60_000)
    assert [p.pulse_ms for p in r.bus.pulses] == [PULSE_HARD_CAP_MS] * 3
    # The board times each pulse: the next open is only sent once the previous coil is off.
    for before, after in zip(r.bus.pulses, r.bus.pulses[1:]):
        assert after.t >= before.t + before.pulse_ms / 1000.0


def test_modbus_all_off_frame_reaches_the_board(rig):
    r = rig("modbus")
    r.driver.all_off([1])
    assert r.kinds() == ["all_off"]


def test_unplugged_port_then_back(rig):
    r = rig("kerong")
    assert r.driver.status(0)
    r.pty.unplug()
    with pytest.raises(DeviceNotReady):
        r.driver.status(0)
    with pytest.raises(DeviceNotReady):  # the driver dropped the dead port; it never reopens by itself
        r.driver.open(0, 1)
    assert r.bus.pulses == []
    r.pty.replug()  # a new /dev/pts behind the same symlink
    r.driver.attach(r.open_port())
    r.driver.open(0, 1)
    assert r.bus.pulses_for(0, 1) == 1 and r.driver.status(0).locks[1].open


def test_an_open_reply_about_another_lock_is_refused_then_checked(rig):
    r = rig("8a")
    real_open_reply = r.bus.protocol.open_reply
    r.bus.protocol.open_reply = lambda board, lock, is_open, header=0x8A: real_open_reply(board, lock + 1, is_open)
    result = r.driver.open(1, 4)
    assert r.kinds() == ["open", "status"] and result.door_open is True  # re-read, not trusted, not resent
    assert r.bus.pulses_for(1, 4) == 1 and r.bus.pulses_for(1, 5) == 0


def test_a_modbus_echo_that_differs_is_refused_then_checked(rig):
    r = rig("modbus")
    from edge.locker.protocols.modbus import frame

    # A well-formed echo (good CRC) of a different request: another channel's pulse.
    r.bus.protocol.echo_reply = lambda request: frame(*request[:3], request[3] + 1, *request[4:6])
    result = r.driver.open(1, 2)
    assert r.kinds() == ["open", "status"] and result.frames_sent == 1
    assert "differs from the request" in result.note
