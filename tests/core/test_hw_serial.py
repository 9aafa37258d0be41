"""edge.hw.serial, the one place ports are opened: a device path is locked for one user at a time."""

from __future__ import annotations

import pytest

from edge.errors import DeviceNotReady
from edge.hw.pty import open_raw_pty
from edge.hw.serial import open_serial


def test_a_second_opener_of_a_device_path_is_refused_by_name_until_the_first_closes():
    pty = open_raw_pty()
    try:
        first = open_serial(pty.tty_path, baud=19200, timeout_s=0.1, what="locker bus")
        with pytest.raises(DeviceNotReady, match=f"^locker bus {pty.tty_path}: .*lock"):
            open_serial(pty.tty_path, baud=19200, timeout_s=0.1, what="locker bus")
        first.write(b"\x02")
        assert first.baudrate == 19200 and first.timeout == 0.1
        first.close()
        open_serial(pty.tty_path, baud=19200, timeout_s=0.1).close()  # released with the first
    finally:
        pty.close()


def test_a_missing_port_is_a_clear_error():
    with pytest.raises(DeviceNotReady, match="^pager transmitter port /dev/nonexistent-edge: "):
        open_serial("/dev/nonexistent-edge", baud=9600, timeout_s=0.1, what="pager transmitter port")
