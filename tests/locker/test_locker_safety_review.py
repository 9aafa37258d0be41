"""Safety review: what the locker reports when the port dies part-way through an open."""

from __future__ import annotations

import pytest

from edge.locker.driver import OpenUncertain, SerialLockerDriver
from edge.locker.protocols import PROTOCOLS
from edge.locker.sim import BusSim, SimTransport


class DiesAfterWrites(SimTransport):
    """An adapter that is unplugged after `writes` frames went out."""

    def __init__(self, bus, writes):
        super().__init__(bus)
        self.writes_left = writes

    def write(self, data):
        if self.writes_left == 0:
            self.is_open = False
        self.writes_left -= 1
        return super().write(data)


def test_port_gone_before_a_retry_is_reported_uncertain_not_as_nothing_sent():
    bus = BusSim("kerong", boards=[0])
    bus.door(0, 6).stuck = True  # the first pulse does not move the bolt: a retry will be wanted
    bus.inject("no_reply")  # the first open's reply is lost
    driver = SerialLockerDriver(PROTOCOLS["kerong"](), transport=DiesAfterWrites(bus, 2), retries=1,
                                sleep=lambda s: None)
    # open (lands, reply lost), status (door closed), then the port dies before the retry.
    with pytest.raises(OpenUncertain, match="open sent"):
        driver.open(0, 6)
    assert bus.pulses_for(0, 6) == 1
