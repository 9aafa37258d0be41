"""The pager transmitter accepts a page for one card, through `edge pager page`.
EDGE_HW_PAGER_PORT=sim checks this test against the built-in simulator."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hwutil import need_device

pytestmark = pytest.mark.hw


def test_pager_transmitter_pages_a_card(hw):
    port = hw.need("pager_port", "the transmitter's serial port, e.g. /dev/ttyUSB0 (or 'sim')")
    need_device(port)
    card = str(hw.get("pager_card", 1))
    args = ["--driver", hw.get("pager_driver", "jtech"), "--port", port, "--card", card,
            "--system", str(hw.get("pager_system", 0))]
    result = subprocess.run([sys.executable, "-m", "edge", "pager", "page", *args, "--json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"edge pager page {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}"
    reply = json.loads(result.stdout)
    assert reply["ok"] is True, reply
    hw.confirm(f"Did card {card} vibrate/beep?")
