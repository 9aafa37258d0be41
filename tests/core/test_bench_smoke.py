"""Every `edge bench` runs end to end at a small size and reports its fields (never timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def bench(*args, timeout=300):
    result = subprocess.run([sys.executable, "-m", "edge", "bench", *args, "--json"],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_bench_mqtt_smoke():
    out = bench("mqtt", "--events", "300", "--settle-seconds", "0.5", "--idle-seconds", "0.5")
    assert out["drain"]["events"] == 300 and out["drain"]["events_per_s"] > 0
    assert out["raw_paho"]["events"] == 300
    assert out["idle"]["rss_mb"] > 0 and out["help"]["help_s"] > 0


def test_bench_pager_smoke():
    out = bench("pager", "--presses", "20", "--tickets", "200")
    assert out["press_to_last_byte"]["n"] == 20 and out["bare_serial_write"]["n"] == 20
    assert out["queue"]["tickets"] == 200 and out["queue"]["ops_per_s"] > 0


@pytest.mark.parametrize("driver", ["kerong", "8a", "modbus"])
def test_bench_locker_smoke(driver):
    # Two cycles: the first open, and one after the previous pulse's coil window (up to the 1 s
    # hard cap on Kerong/8A); a third would only repeat the second.
    out = bench("locker", "--driver", driver, "--rounds", "10", "--cycles", "2")
    assert out["driver"] == driver
    assert out["open_to_first_byte"]["n"] == 10 and out["bare_pty_round_trip"]["n"] == 10
    assert out["open_and_confirm"]["n"] == 2  # every cycle confirmed the door open


def test_bench_names_are_all_registered():
    from edge.cli import BENCHES

    assert {"match", "qr", "embed", "pager", "mqtt"} <= set(BENCHES)  # the design's contract
