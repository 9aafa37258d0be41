"""`edge pager page|encode` (the §D contract) and the `[pager]` config section."""

import json
import subprocess
import sys

import pytest

from edge import config as config_module
from edge.errors import ConfigError
from edge.pager import config as pager_config


def edge(*args):
    return subprocess.run([sys.executable, "-m", "edge", "pager", *args], capture_output=True, text=True, timeout=60)


def test_encode_json_matches_the_vector():
    out = edge("encode", "--protocol", "retekess-t119", "--system", "1234", "--card", "5", "--json")
    assert out.returncode == 0, out.stderr
    key = json.loads(out.stdout)
    assert set(key) == {"protocol", "bits", "pulses_us"}
    assert key["protocol"] == "retekess-t119" and key["bits"] == "010010110010010100000000"
    assert key["pulses_us"][:4] == [271, 813, 813, 271] and len(key["pulses_us"]) == 50


def test_encode_refuses_all_off():
    out = edge("encode", "--protocol", "retekess-td157", "--system", "100", "--card", "999", "--json")
    assert out.returncode == 2
    assert "all off" in json.loads(out.stdout)["error"]


@pytest.mark.parametrize("driver", ["jtech", "waveware", "espa"])
def test_page_against_the_simulator(driver):
    out = edge("page", "--driver", driver, "--port", "sim", "--card", "7", "--system", "10", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["ok"] and result["card"] == 7 and result["attempts"] == 1


def test_page_bad_card_and_missing_port(tmp_path):
    out = edge("page", "--driver", "jtech", "--port", "sim", "--card", "100000")
    assert out.returncode == 2 and "out of range" in out.stderr
    out = edge("page", "--driver", "lrs", "--port", str(tmp_path / "ttyUSB9"), "--card", "3", "--json")
    assert out.returncode == 1 and "ttyUSB9" in json.loads(out.stdout)["error"]


BASE = {"site": "s", "device": "d", "role": "desk"}


def test_pager_section_parses():
    cfg = config_module.from_dict({**BASE, "pager": {
        "driver": "waveware", "port": "/dev/ttyUSB0", "capcode_base": 1000,
        "services": {"ho-tich": {"prefix": "A", "name": "Hộ tịch"}},
        "counters": {"1": {"services": ["ho-tich"], "panel": {"next_pin": 5, "rating_pins": [20, 21, 22, 23, 24]}}},
    }}).services["pager"]
    assert cfg.counters["1"].panel.next_pin == 5
    assert pager_config.problems(cfg) == []


def test_pager_section_errors_name_the_key():
    with pytest.raises(ConfigError) as err:
        config_module.from_dict({**BASE, "pager": {
            "driver": "pocsag", "cards": 100, "broken_cards": [0], "sytem_id": 3,
            "counters": {"1": {"services": ["a"], "panel": {"rating_pins": [1, 2]}}}}})
    text = str(err.value)
    for expected in ("pager.driver", "pager.cards", "pager.broken_cards", "did you mean 'system_id'",
                     "pager.counters.1.panel.rating_pins"):
        assert expected in text


def test_cross_references_are_checked(tmp_path):
    with pytest.raises(ConfigError) as err:
        pager_config.PagerConfig(
            services={"a": pager_config.ServiceDef(prefix="A"), "b": pager_config.ServiceDef(prefix="A")},
            counters={"1": pager_config.CounterDef(services=["a", "zz"])})
    assert any("pager.services.b.prefix" in p for p in err.value.problems)
    assert any("pager.counters.1.services: found 'zz'" in p for p in err.value.problems)
    bad = tmp_path / "edge.toml"
    bad.write_text('site = "s"\ndevice = "d"\nrole = "desk"\n[pager.counters.1]\nservices = ["nope"]\n')
    out = subprocess.run([sys.executable, "-m", "edge", "config", "check", str(bad)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1 and "pager.counters.1.services: found 'nope'" in out.stdout


@pytest.mark.parametrize("settings, message", [
    ({"driver": "jtech", "system_id": 1000}, "base id 1000 out of range"),
    ({"driver": "ook", "ook_protocol": "retekess-td157", "system_id": 2000}, "does not fit in 10 bits"),
    ({"driver": "waveware", "message": "xin chào"}, "printable ASCII"),
])
def test_transmitter_settings_are_checked_at_load(settings, message):
    with pytest.raises(ConfigError, match=message):
        config_module.from_dict({**BASE, "pager": settings})


def test_display_pins_are_checked():
    with pytest.raises(ConfigError) as err:
        config_module.from_dict({**BASE, "pager": {
            "services": {"a": {"prefix": "A"}},
            "counters": {"1": {"services": ["a"], "panel": {"segment_pins": [2, 3, 4, 14, 8, 9, 10]}},
                         "2": {"services": ["a"], "panel": {"segment_pins": [2, 3, 4]}}}}})
    text = str(err.value)
    assert "pager.counters.1.panel.segment_pins" in text and "other than 14/15 (bad: [14])" in text
    assert "pager.counters.2.panel.segment_pins" in text and "0 or 7 or 8 pins" in text
    with pytest.raises(ConfigError, match=r"pager.counters.3.panel.digit_pins: .*segment_pins too"):
        config_module.from_dict({**BASE, "pager": {
            "services": {"a": {"prefix": "A"}},
            "counters": {"3": {"services": ["a"], "panel": {"digit_pins": [16, 17]}}}}})


def test_a_pin_drives_one_thing():
    with pytest.raises(ConfigError) as err:
        config_module.from_dict({**BASE, "pager": {
            "services": {"a": {"prefix": "A"}},
            "counters": {"1": {"services": ["a"], "panel": {"next_pin": 5, "segment_pins": [2, 3, 4, 5, 8, 9, 10]}},
                         "2": {"services": ["a"], "panel": {"segment_pins": [2, 3, 4, 7, 8, 9, 11]}}}}})
    text = str(err.value)
    assert "pager.counters.1.panel: pin 5 is used twice (counter 1 and counter 1)" in text
    assert "pager.counters.2.panel: pin 2 is used twice (counter 1 and counter 2)" in text


def test_keepalive_needs_an_lrs_system_capcode():
    with pytest.raises(ConfigError, match="keep-alive is an LRS feature"):
        config_module.from_dict({**BASE, "pager": {"driver": "jtech", "keepalive_s": 15}})
    with pytest.raises(ConfigError, match="system id 0..13, found 20"):
        config_module.from_dict({**BASE, "pager": {"driver": "lrs", "system_id": 20, "keepalive_s": 15}})
    assert config_module.from_dict({**BASE, "pager": {"driver": "lrs", "system_id": 3, "keepalive_s": 15}}) \
        .services["pager"].keepalive_s == 15
