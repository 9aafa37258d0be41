"""The hardware tests themselves (hw-tests/): with nothing attached every one skips and says which
setting or device it needs; pointed at the simulators and pyserial's loop:// they pass, so their
code paths are exercised on every run, not only on a Pi."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_hw_tests(tmp_path, **settings) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_HW_")}
    env.update({f"EDGE_HW_{k.upper()}": v for k, v in settings.items()})
    # Without the dev plugins the hw tests never use (a Pi has neither): importing hypothesis's
    # alone costs about a second per run.
    return subprocess.run([sys.executable, "-m", "pytest", "-m", "hw", str(REPO / "hw-tests"), "-q", "-rs",
                           "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:hypothesispytest"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def counts(output: str) -> dict[str, int]:
    tail = output.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|skipped|failed|error)", tail)}


def test_without_hardware_everything_skips_with_a_reason(tmp_path):
    result = run_hw_tests(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    got = counts(result.stdout)
    assert got.get("skipped", 0) >= 8 and "failed" not in got and "passed" not in got, result.stdout[-2000:]
    reasons = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert reasons and all("EDGE_HW_" in line for line in reasons), reasons


def test_an_absent_device_is_named_in_the_skip(tmp_path):
    result = run_hw_tests(tmp_path, locker_port="/dev/ttyUSB-not-here")
    assert result.returncode == 0
    assert "/dev/ttyUSB-not-here is absent" in result.stdout


def test_against_simulators_the_serial_locker_and_pager_tests_pass(tmp_path):
    result = run_hw_tests(tmp_path, locker_port="sim", pager_port="sim", serial_loopback="loop://")
    assert result.returncode == 0, result.stdout[-3000:]
    assert counts(result.stdout).get("passed") == 5, result.stdout[-2000:]
