"""Locker fixtures: a pty simulator per protocol and a driver talking to it through pyserial."""

from __future__ import annotations

import pytest
import serial

from edge.locker.driver import SerialLockerDriver
from edge.locker.protocols import PROTOCOLS
from edge.locker.sim import BusSim, PtySim

FIRST_BOARD = {"kerong": 0, "8a": 1, "modbus": 1}


class Rig:
    """A BusSim on a pty behind a symlink, and a SerialLockerDriver on it."""

    def __init__(self, tmp_path, protocol_name: str, polarity: str = "open_high", retries: int = 1,
                 boards=None, timeout_s: float = 0.15):
        self.name = protocol_name
        self.board = FIRST_BOARD[protocol_name]
        self.bus = BusSim(protocol_name, boards=boards or [self.board], polarity=polarity)
        self.pty = PtySim(self.bus, link=tmp_path / f"tty-{protocol_name}").start()
        self.protocol = PROTOCOLS[protocol_name](polarity)
        self.driver = SerialLockerDriver(self.protocol, transport=self.open_port(), reply_timeout_s=timeout_s,
                                         retries=retries)

    def open_port(self):
        # Read in step with the boards (PacedPort): their thread scheduled late on a loaded machine
        # is not a lost reply; a reply never sent still times out for real.
        return self.pty.paced(serial.serial_for_url(self.pty.path, baudrate=self.protocol.baud, timeout=0.15))

    def kinds(self):
        return [r.kind for r in self.bus.requests]

    def close(self):
        self.driver.close()
        self.pty.stop()


@pytest.fixture
def rig(tmp_path):
    rigs = []

    def make(protocol_name: str, **kw) -> Rig:
        r = Rig(tmp_path, protocol_name, **kw)
        rigs.append(r)
        return r

    yield make
    for r in rigs:
        r.close()
