"""Serial ports: bytes written come back unchanged (a TX-RX jumper, or two RS485 adapters
wired A-A/B-B), at the rates the lock boards and pager transmitters use."""

from __future__ import annotations

import os

import pytest

from hwutil import need_device

pytestmark = pytest.mark.hw

RATES = (9600, 19200)


def _roundtrip(tx_port: str, rx_port: str | None, baud: int) -> tuple[bytes, bytes]:
    import serial  # pyserial, imported here so collection works without it

    payload = os.urandom(64)
    with serial.serial_for_url(tx_port, baudrate=baud, timeout=2) as tx:
        if rx_port is None:
            tx.reset_input_buffer()
            tx.write(payload)
            tx.flush()
            return payload, tx.read(len(payload))
        with serial.serial_for_url(rx_port, baudrate=baud, timeout=2) as rx:
            rx.reset_input_buffer()
            tx.write(payload)
            tx.flush()
            return payload, rx.read(len(payload))


@pytest.mark.parametrize("baud", RATES)
def test_serial_loopback(hw, baud):
    port = hw.need("serial_loopback", "a serial port whose TX is jumpered to RX, e.g. /dev/ttyUSB0")
    need_device(port)
    sent, got = _roundtrip(port, None, baud)
    assert got == sent, f"{port} at {baud}: sent {len(sent)} bytes, got {len(got)} back " \
                        f"({'nothing: check the jumper' if not got else 'garbled: check the baud rate and wiring'})"


@pytest.mark.parametrize("baud", RATES)
def test_rs485_pair(hw, baud):
    pair = hw.need("serial_pair", "two RS485 adapters wired A-A and B-B, e.g. /dev/ttyUSB0,/dev/ttyUSB1")
    ports = [p.strip() for p in pair.split(",")]
    if len(ports) != 2:
        pytest.fail(f"EDGE_HW_SERIAL_PAIR={pair!r}: expected two ports separated by a comma")
    for port in ports:
        need_device(port)
    for tx, rx in (ports, ports[::-1]):
        sent, got = _roundtrip(tx, rx, baud)
        assert got == sent, f"{tx} -> {rx} at {baud}: sent {len(sent)}, got {len(got)} (A/B swapped? termination?)"
