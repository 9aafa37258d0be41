"""A lock control board (Kerong, 8A, Modbus relay) answers status and opens one lock, through
`edge locker` exactly as the technician would run it. EDGE_HW_LOCKER_PORT=sim checks this test
against the built-in simulator."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hwutil import need_device

pytestmark = pytest.mark.hw


def _edge(*args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "edge", "locker", *args, "--json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"edge locker {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}"
    return json.loads(result.stdout)


@pytest.fixture
def board(hw):
    port = hw.need("locker_port", "the lock board's serial port, e.g. /dev/ttyUSB1 (or 'sim')")
    need_device(port)
    return {"driver": hw.get("locker_driver", "kerong"), "port": port, "board": str(hw.get("locker_board", 0))}


def test_lock_board_status(board):
    status = _edge("status", "--driver", board["driver"], "--port", board["port"], "--board", board["board"])
    assert status["ok"] is True
    assert status["locks"], "the board answered but reported no locks"


def test_lock_board_opens_one_lock(board, hw):
    lock = str(hw.get("locker_lock", 1))
    opened = _edge("open", "--driver", board["driver"], "--port", board["port"], "--board", board["board"],
                   "--lock", lock)
    assert opened["ok"] is True, opened
    hw.confirm(f"Did lock {lock} on board {board['board']} open?")
