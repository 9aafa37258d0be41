"""Drivers against their pty simulators: the exact bytes, acks, retransmission, dead ports."""

import pytest

from edge.errors import DeviceNotReady
from edge.pager.driver import PagerDriver, TransmitterError, make_transmitter, open_transport
from edge.pager.protocol import FrameError
from edge.pager.sim import ANSWER_WAIT_S, TransmitterSim
from edge.testing import wait_until

DRIVERS = ["jtech", "lrs", "waveware", "espa", "ook"]


@pytest.fixture
def rig(tmp_path):
    made = []

    def build(name, *, system=10, retries=2, ack_timeout_s=ANSWER_WAIT_S, **sim_settings):
        # ANSWER_WAIT_S: a late ACK from the simulator's thread must not become a retry (a second page)
        sim = TransmitterSim(name, link_dir=tmp_path, system=system, **sim_settings)
        path = sim.start()
        codec = make_transmitter(name, system=system)
        driver = PagerDriver(open_transport(path, baud=codec.baud, timeout_s=ack_timeout_s), codec, retries=retries,
                             ack_timeout_s=ack_timeout_s)
        made.append((sim, driver))
        return sim, driver

    yield build
    for sim, driver in made:
        driver.close()
        sim.stop()


@pytest.mark.parametrize("name", DRIVERS)
def test_page_vibrates_the_card(rig, name):
    sim, driver = rig(name)
    result = driver.page(7)
    assert result.attempts == 1
    assert sim.wait_for(1)
    driver.page(42)
    assert sim.wait_for(2)
    assert sim.vibrated == [7, 42]
    assert sim.rejected == []


@pytest.mark.parametrize("name", ["waveware", "espa", "ook"])
def test_refused_page_is_retransmitted(rig, name):
    sim, driver = rig(name, retries=2)
    sim.nak_next = 2
    assert driver.page(5).attempts == 3
    assert sim.vibrated == [5]


@pytest.mark.parametrize("name", ["waveware", "espa"])
def test_box_that_keeps_refusing_raises_after_retries(rig, name):
    sim, driver = rig(name, retries=1)
    sim.nak_next = 5
    with pytest.raises(TransmitterError, match="after 2 attempts"):
        driver.page(5)
    assert sim.vibrated == []


def test_silent_box_times_out(rig):
    sim, driver = rig("waveware", retries=0, ack_timeout_s=0.3)  # silent for sure: a short wait is exact
    sim.silent = True
    with pytest.raises(TransmitterError, match="no answer"):
        driver.page(5)


def test_sim_refuses_another_bases_system_id(tmp_path):
    sim = TransmitterSim("jtech", link_dir=tmp_path, system=10)
    path = sim.start()
    try:
        codec = make_transmitter("jtech", system=11)
        driver = PagerDriver(open_transport(path, baud=19200), codec)
        driver.page(3)  # JTECH has no ack: the host cannot know, the simulator records the refusal
        driver.close()
        wait_until(lambda: sim.rejected, what="the simulator refusing the frame")
        assert sim.vibrated == []
        assert "system id 11" in sim.rejected[0][1]
    finally:
        sim.stop()


def test_bad_card_never_reaches_the_wire(rig):
    sim, driver = rig("jtech")
    for card in (0, 999, 10000):
        with pytest.raises(FrameError):
            driver.page(card)
    driver.page(1)
    assert sim.wait_for(1)
    assert sim.vibrated == [1] and sim.rejected == []


def test_unplugged_port_fails_and_returns(rig, tmp_path):
    sim, driver = rig("jtech")
    sim.unplug()
    with pytest.raises(TransmitterError):
        driver.page(1)
        driver.page(2)  # a pty may swallow one write after the far end closed
    driver.close()
    with pytest.raises(DeviceNotReady):
        open_transport(sim.path, baud=19200)
    sim.replug()
    again = PagerDriver(open_transport(sim.path, baud=19200), make_transmitter("jtech", system=10))
    again.page(9)
    assert sim.wait_for(1)
    assert sim.vibrated == [9]
    again.close()


class FakeCtsPort:
    """A port whose CTS line drops while the transmitter's buffer is full."""

    def __init__(self, cts_pattern):
        self.cts_pattern = list(cts_pattern)
        self.written = bytearray()
        self.timeout = 0.1
        self.checks = 0

    @property
    def cts(self):
        self.checks += 1
        return self.cts_pattern.pop(0) if self.cts_pattern else True

    def write(self, data):
        self.written += data

    def flush(self):
        pass

    def close(self):
        pass


def test_cts_flow_control_waits_for_cts():
    port = FakeCtsPort([False, False, True])
    driver = PagerDriver(port, make_transmitter("jtech", system=10, message="X" * 20), cts_flow=True)
    driver.page(4)
    assert port.written == make_transmitter("jtech", system=10, message="X" * 20).page_frame(4)
    assert port.checks >= 4  # waited through two lows, then checked before each chunk


def test_cts_held_low_is_reported():
    clock = iter(range(100))
    port = FakeCtsPort([False] * 1000)
    driver = PagerDriver(port, make_transmitter("jtech", system=10), cts_flow=True, cts_wait_s=2,
                         monotonic=lambda: next(clock))
    with pytest.raises(TransmitterError, match="CTS low"):
        driver.page(4)
    assert port.written == b""


@pytest.mark.parametrize("name", ["waveware", "espa", "ook"])
def test_garbled_reply_is_a_failed_attempt_not_a_crash(rig, name):
    sim, driver = rig(name, retries=2)
    sim.garble_next = 1
    assert driver.page(6).attempts == 2
    assert sim.vibrated == [6]
