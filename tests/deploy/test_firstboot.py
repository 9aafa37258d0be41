"""images/files/edge-firstboot: the boot partition's edge.toml becomes /etc/edge, secrets leave the
FAT partition, and a bad file changes nothing and says why, in a file the technician can read."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from edge.security import load_key

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "images" / "files" / "edge-firstboot"
EDGE_BIN = Path(sys.executable).parent / "edge"
PASSWORD = "Zq8pXv2LmN4kR7tY1wE9uI3oP6aS5dF0"
KEY_HEX = "ab" * 32
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----"
EDGE_UID = 4242

KIOSK_TOML = f'''
site = "hn-badinh"
device = "kiosk-01"
role = "kiosk"
language = "vi"

[broker]
url = "mqtts://broker.hn.example:8883"

[kiosk]
port = 8081

[provision]
broker_password = "{PASSWORD}"
command_key = "{KEY_HEX}"
ca_cert = """{CA_PEM}"""
timezone = "Asia/Ho_Chi_Minh"
'''


def load_module():
    loader = importlib.machinery.SourceFileLoader("edge_firstboot", str(SCRIPT))
    spec = importlib.util.spec_from_loader("edge_firstboot", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["edge_firstboot"] = module  # dataclasses look their module up while the class is built
    try:
        loader.exec_module(module)
    finally:
        sys.modules.pop("edge_firstboot", None)
    return module


@pytest.fixture
def pi(tmp_path):
    """A scratch root as the image leaves it (user edge, zoneinfo, hosts) and a boot partition."""
    root, boot = tmp_path / "root", tmp_path / "boot"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(f"root:x:0:0::/root:/bin/sh\nedge:x:{EDGE_UID}:{EDGE_UID}::/var/lib/edge:/usr/sbin/nologin\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n")
    zone = root / "usr/share/zoneinfo/Asia/Ho_Chi_Minh"
    zone.parent.mkdir(parents=True)
    zone.write_bytes(b"TZif")
    boot.mkdir()
    return root, boot


def firstboot(root: Path, boot: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--boot", str(boot), "--root", str(root),
                           "--edge", str(EDGE_BIN), *extra], capture_output=True, text=True, timeout=120)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_kiosk_config_is_applied_and_secrets_leave_the_boot_partition(pi):
    root, boot = pi
    (boot / "edge.toml").write_text(KIOSK_TOML)
    result = firstboot(root, boot)
    assert result.returncode == 0, result.stderr

    etc = root / "etc/edge"
    config = tomllib.loads((etc / "edge.toml").read_text())
    assert (config["site"], config["device"], config["role"]) == ("hn-badinh", "kiosk-01", "kiosk")
    assert config["broker"] == {"url": "mqtts://broker.hn.example:8883", "username": "kiosk-01",
                                "password_file": "/etc/edge/broker.password",
                                "command_key_file": "/etc/edge/command.key", "ca_file": "/etc/edge/ca.crt"}
    assert "provision" not in config and config["kiosk"] == {"port": 8081}
    assert (etc / "broker.password").read_text() == PASSWORD
    assert (etc / "ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert (etc / "kiosk-browser.env").read_text() == "KIOSK_URL=http://127.0.0.1:8081/kiosk\n"
    assert mode(etc / "broker.password") == 0o600 and mode(etc / "command.key") == 0o600
    assert mode(etc / "edge.toml") == 0o640
    if os.geteuid() == 0:
        assert (etc / "broker.password").stat().st_uid == EDGE_UID
        assert (etc / "command.key").stat().st_uid == EDGE_UID
    # The supervisor's own key loader accepts the file as written (0600, hex, 32 bytes).
    assert load_key(etc / "command.key") == bytes.fromhex(KEY_HEX)

    assert (root / "etc/hostname").read_text() == "kiosk-01\n"
    assert "127.0.1.1\tkiosk-01" in (root / "etc/hosts").read_text()
    assert "raspberrypi" not in (root / "etc/hosts").read_text()
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/Asia/Ho_Chi_Minh"

    assert not (boot / "edge.toml").exists()
    for path in boot.iterdir():
        text = path.read_text()
        assert PASSWORD not in text and KEY_HEX not in text and "MIIBfake" not in text, path
    applied = tomllib.loads((boot / "edge.toml.applied").read_text())
    assert applied["device"] == "kiosk-01" and applied["provision"]["timezone"] == "Asia/Ho_Chi_Minh"

    again = firstboot(root, boot)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_the_secrets_file_is_overwritten_before_it_is_deleted(pi):
    # Deleting a file on the FAT boot partition frees its clusters but leaves the bytes on the
    # card. A second link to the same file shows what is left in its data once it is deleted.
    root, boot = pi
    (boot / "edge.toml").write_text(KIOSK_TOML)
    os.link(boot / "edge.toml", root / "left-on-the-card")
    assert firstboot(root, boot).returncode == 0
    left = (root / "left-on-the-card").read_bytes()
    assert PASSWORD.encode() not in left and KEY_HEX.encode() not in left
    assert left == b"\0" * len(KIOSK_TOML.encode())


def test_written_config_passes_edge_config_check(pi):
    root, boot = pi
    (boot / "edge.toml").write_text(KIOSK_TOML)
    assert firstboot(root, boot).returncode == 0
    check = subprocess.run([str(EDGE_BIN), "config", "check", str(root / "etc/edge/edge.toml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_bad_file_changes_nothing_and_lists_every_problem(pi):
    root, boot = pi
    bad = KIOSK_TOML.replace('device = "kiosk-01"', 'device = "Kiosk 01"').replace(
        'command_key = "' + KEY_HEX + '"', 'command_key = "short"').replace('timezone =', 'timezon =')
    (boot / "edge.toml").write_text(bad)
    result = firstboot(root, boot)
    assert result.returncode == 1
    report = (boot / "edge-firstboot-error.txt").read_text()
    assert "device: 'Kiosk 01'" in report
    assert "provision.command_key" in report
    assert "provision.timezon: unknown key" in report
    assert not (root / "etc/edge").exists()
    assert (boot / "edge.toml").read_text() == bad  # left for the technician to fix


def test_problem_found_by_edge_config_check_is_reported(pi):
    root, boot = pi
    (boot / "edge.toml").write_text(KIOSK_TOML.replace("port = 8081", "port = 99999"))
    result = firstboot(root, boot)
    assert result.returncode == 1
    report = (boot / "edge-firstboot-error.txt").read_text()
    assert "kiosk.port" in report and "65535" in report
    assert not (root / "etc/edge").exists()


def test_fixing_the_file_clears_the_error_report(pi):
    root, boot = pi
    (boot / "edge.toml").write_text(KIOSK_TOML.replace('role = "kiosk"', 'role = "kiosque"'))
    assert firstboot(root, boot).returncode == 1
    assert "role: 'kiosque'" in (boot / "edge-firstboot-error.txt").read_text()
    (boot / "edge.toml").write_text(KIOSK_TOML)
    assert firstboot(root, boot).returncode == 0
    assert not (boot / "edge-firstboot-error.txt").exists()


def test_not_valid_toml_is_reported_with_its_position(pi):
    root, boot = pi
    (boot / "edge.toml").write_text('site = "hn"\ndevice = kiosk-01\n')
    assert firstboot(root, boot).returncode == 1
    assert "not valid TOML" in (boot / "edge-firstboot-error.txt").read_text()


def test_central_role_writes_the_central_environment_only(pi):
    root, boot = pi
    (boot / "edge.toml").write_text(
        'site = "hn"\ndevice = "srv-01"\nrole = "central"\n[broker]\nurl = "mqtt://127.0.0.1:1883"\n'
        f'[provision]\ncentral_db = "postgresql://edge:pw@localhost/edge"\ncentral_listen = "0.0.0.0:8090"\n'
        f'broker_password = "{PASSWORD}"\n')
    result = firstboot(root, boot)
    assert result.returncode == 0, result.stderr
    env = (root / "etc/edge/central.env").read_text()
    assert "EDGE_DB=postgresql://edge:pw@localhost/edge\n" in env and "EDGE_LISTEN=0.0.0.0:8090\n" in env
    assert mode(root / "etc/edge/central.env") == 0o600
    assert "EDGE_BROKER_USERNAME=central\n" in env  # the ACL's only command sender
    assert "EDGE_BROKER_PASSWORD_FILE=/etc/edge/broker.password\n" in env
    assert (root / "etc/edge/broker.password").read_text() == PASSWORD
    assert not (root / "etc/edge/edge.toml").exists()
    assert "edge:pw" not in (boot / "edge.toml.applied").read_text()


def test_missing_edge_user_is_reported(pi):
    if os.geteuid() != 0:
        pytest.skip("ownership is only set when run as root")
    root, boot = pi
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (boot / "edge.toml").write_text(KIOSK_TOML)
    assert firstboot(root, boot).returncode == 1
    assert "user 'edge' does not exist" in (boot / "edge-firstboot-error.txt").read_text()


def test_toml_writer_round_trips_nested_tables_and_arrays_of_tables():
    fb = load_module()
    data = {"site": "hn", "n": 3, "f": 0.5, "ok": True, "names": ["a", "b"], "quote": 'say "hi"\nbye',
            "locker": {"boards": [{"addr": 1, "locks": [1, 2]}, {"addr": 2, "locks": []}],
                       "gpio": {"pins": {"door": 17}}},
            "pager": {"port": "sim"}}
    assert tomllib.loads(fb.dump_toml(data)) == data


def test_a_desk_screen_shows_the_queue_display_unless_told_otherwise(pi):
    root, boot = pi
    desk = KIOSK_TOML.replace('role = "kiosk"', 'role = "desk"')
    (boot / "edge.toml").write_text(desk)
    assert firstboot(root, boot).returncode == 0
    assert (root / "etc/edge/kiosk-browser.env").read_text() == "KIOSK_URL=http://127.0.0.1:8081/display\n"
    (boot / "edge.toml").write_text(desk.replace('timezone =', 'screen_page = "/reception"\ntimezone ='))
    assert firstboot(root, boot).returncode == 0
    assert (root / "etc/edge/kiosk-browser.env").read_text() == "KIOSK_URL=http://127.0.0.1:8081/reception\n"


def test_no_screen_when_kiosk_screen_is_false(pi):
    root, boot = pi
    (boot / "edge.toml").write_text(KIOSK_TOML.replace('timezone =', 'kiosk_screen = false\ntimezone ='))
    assert firstboot(root, boot).returncode == 0
    assert not (root / "etc/edge/kiosk-browser.env").exists()  # so the browser unit never starts
