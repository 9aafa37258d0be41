"""SIGTERM to `edge run`: the locker turns its outputs off before the process exits."""

import signal
import subprocess
import sys
from pathlib import Path

from edge.locker.sim import BusSim, PtySim
from edge.testing import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_turns_relay_outputs_off(tmp_path, mosquitto):
    bus = BusSim("modbus", boards=[1])
    pty = PtySim(bus, link=tmp_path / "ttyRS485").start()
    config = tmp_path / "edge.toml"
    config.write_text(f"""
site = "hn"
device = "kiosk-01"
role = "kiosk"
data_dir = "{tmp_path / 'data'}"
[broker]
url = "{mosquitto.url}"
[locker]
driver = "modbus"
port = "{pty.path}"
poll_interval_s = 0.1
[locker.compartments]
1 = {{ board = 1, lock = 1 }}
2 = {{ board = 1, lock = 2 }}
""")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: sum(r.kind == "status" for r in bus.requests) >= 3, timeout_s=30,
                   what="the locker booted: outputs off, doors read, polling")
        kinds = [r.kind for r in bus.requests]
        assert kinds[0] == "all_off" and "status" in kinds, kinds
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pty.stop()
    assert proc.returncode == 0, out
    assert bus.requests[-1].kind == "all_off", [r.kind for r in bus.requests[-5:]]
    assert bus.pulses == []
