"""`edge doctor`: a technician's first look, failing clearly on what is wrong."""

from __future__ import annotations

import json
import subprocess
import sys


def doctor(*args):
    return subprocess.run([sys.executable, "-m", "edge", "doctor", "--json", *args],
                          capture_output=True, text=True, timeout=60)


def test_doctor_reports_a_reachable_broker_and_a_missing_serial_port(tmp_path, mosquitto):
    config = tmp_path / "edge.toml"
    config.write_text(f'site = "hn"\ndevice = "kiosk-01"\nrole = "kiosk"\ndata_dir = "{tmp_path}"\n'
                      f'[broker]\nurl = "{mosquitto.url}"\n'
                      '[locker]\nport = "/dev/ttyEDGE-absent"\n[locker.compartments]\n1 = { board = 0, lock = 1 }\n')
    result = doctor("--config", str(config))
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["config"]["status"] == "ok"
    assert checks["broker"]["status"] == "ok"
    assert checks["serial /dev/ttyEDGE-absent"]["status"] == "fail"
    assert result.returncode == 1  # a failed check fails the command


def test_doctor_names_an_unreachable_broker_unless_offline(tmp_path):
    config = tmp_path / "edge.toml"
    config.write_text(f'site = "hn"\ndevice = "desk-01"\nrole = "desk"\ndata_dir = "{tmp_path}"\n'
                      '[broker]\nurl = "mqtt://127.0.0.1:1"\n')
    down = {c["name"]: c for c in json.loads(doctor("--config", str(config)).stdout)}
    assert down["broker"]["status"] == "fail" and "127.0.0.1:1" in down["broker"]["detail"]
    offline = {c["name"]: c for c in json.loads(doctor("--config", str(config), "--offline").stdout)}
    assert offline["broker"]["status"] == "warn"


def test_doctor_warns_when_a_service_runs_on_its_simulator(tmp_path):
    config = tmp_path / "edge.toml"
    config.write_text(f'site = "hn"\ndevice = "kiosk-01"\nrole = "kiosk"\ndata_dir = "{tmp_path}"\n'
                      '[broker]\nurl = "mqtt://127.0.0.1:1"\n'
                      '[locker]\nport = "sim"\n[locker.compartments]\n1 = { board = 0, lock = 1 }\n')
    checks = {c["name"]: c for c in json.loads(doctor("--config", str(config), "--offline").stdout)}
    assert checks["simulators"]["status"] == "warn" and "locker.port" in checks["simulators"]["detail"]
