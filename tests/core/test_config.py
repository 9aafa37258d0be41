"""Config loading: typed sections, every problem at once with its key path, `edge config check`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge import config
from edge.errors import ConfigError

GOOD = """
site = "hn-badinh"
device = "desk-01"
role = "desk"
data_dir = "/var/lib/edge"

[broker]
url = "mqtts://broker.example.vn:8883"
username = "desk-01"
keepalive_s = 30
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config_loads_into_typed_sections(tmp_path):
    cfg = config.load(write(tmp_path, GOOD))
    assert cfg.site == "hn-badinh" and cfg.role == "desk"
    assert cfg.broker.url.startswith("mqtts://") and cfg.broker.keepalive_s == 30
    assert cfg.supervisor.backoff_initial_s == 1.0  # defaults filled
    assert cfg.store_path == Path("/var/lib/edge/edge.db")


def test_every_problem_is_reported_at_once_with_path_value_and_expectation(tmp_path):
    bad = """
site = "HN Ba Dinh"
role = "reception"
langauge = "vi"

[broker]
url = "http://broker"
keepalive_s = "30"

[supervisor]
breaker_failures = 0
"""
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, bad))
    text = str(info.value)
    assert "site: found 'HN Ba Dinh'" in text
    assert "device: missing, expected a string" in text
    assert "role: found 'reception', expected one of 'desk', 'kiosk', 'central'" in text
    assert "langauge: unknown key (did you mean 'language'?)" in text
    assert "broker.url: found 'http://broker'" in text
    assert "broker.keepalive_s: found '30', expected an integer" in text
    assert "supervisor.breaker_failures: found 0, expected at least 1" in text
    assert len(info.value.problems) == 7


def test_ids_with_mqtt_wildcards_are_refused(tmp_path):
    # '+' or '#' in a device id would break topic ACL patterns (shared/mqtt.md).
    with pytest.raises(ConfigError, match="device: found 'desk/#'"):
        config.load(write(tmp_path, GOOD.replace('"desk-01"\nrole', '"desk/#"\nrole')))


def test_broken_toml_and_missing_file_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "site = \n"))
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "absent.toml")


def test_central_role_runs_no_device_services():
    with pytest.raises(ConfigError, match="role: 'central' runs no device services"):
        config.from_dict({"site": "hn", "device": "central-1", "role": "central", "kiosk": {}})


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=60)


def test_config_check_cli_exit_codes(tmp_path):
    good = run_cli("config", "check", str(write(tmp_path, GOOD)))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "OK" in good.stdout
    bad_path = tmp_path / "bad.toml"
    bad_path.write_text('site = "x"\nrole = "desk"\n[broker]\nurll = "mqtt://a"\n')
    bad = run_cli("config", "check", str(bad_path))
    assert bad.returncode == 1
    assert "device: missing" in bad.stdout and "broker.urll: unknown key (did you mean 'url'?)" in bad.stdout


@pytest.mark.parametrize("example", sorted(Path(__file__).parents[2].joinpath("examples").glob("*.toml")),
                         ids=lambda p: p.name)
def test_shipped_example_configs_are_valid(example):
    result = run_cli("config", "check", str(example))
    assert result.returncode == 0, result.stdout + result.stderr


def test_device_id_central_is_reserved_for_the_central_service():
    with pytest.raises(ConfigError, match="device: 'central' is reserved"):
        config.from_dict({"site": "hn", "device": "central", "role": "kiosk"})


def test_cross_key_problems_of_a_section_are_reported_by_config_check(tmp_path):
    # Kerong boards are 0..15 by DIP switch: board 16 is caught at check time, not at start.
    path = write(tmp_path, 'site = "hn"\ndevice = "kiosk-01"\nrole = "kiosk"\n[locker]\ndriver = "kerong"\n'
                           '[locker.compartments]\n1 = { board = 16, lock = 1 }\n')
    with pytest.raises(ConfigError, match=r"locker.compartments.1.board: found 16, expected 0..15"):
        config.load(path)


def test_cross_key_checks_run_on_the_valid_part_of_a_section_with_bad_keys(tmp_path):
    # One `config check` names everything: a technician should not need a round per mistake.
    path = write(tmp_path, 'site = "hn"\ndevice = "kiosk-01"\nrole = "kiosk"\n'
                           '[locker]\ndriver = "kerong"\npulse_ms = "x"\n'
                           '[locker.compartments]\n1 = { board = 16, lock = 1 }\n2 = { board = 0, lock = "a" }\n'
                           '[kiosk]\nhost = "0.0.0.0"\nport = "eighty"\n'
                           '[pager]\ncards = "many"\n[pager.services.a]\nprefix = "A"\nname = "A"\n'
                           '[pager.services.b]\nprefix = "A"\nname = "B"\n[pager.counters.1]\nservices = ["zz"]\n')
    with pytest.raises(ConfigError) as info:
        config.load(path)
    paths = [p.split(": ")[0] for p in info.value.problems]
    assert paths == ["locker.pulse_ms", "locker.compartments.2.lock", "locker.compartments.1.board",
                     "kiosk.port", "kiosk.staff_pins", "pager.cards", "pager.services.b.prefix",
                     "pager.counters.1.services"]
