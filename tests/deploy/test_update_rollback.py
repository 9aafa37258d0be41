"""images/files/edge-update: a new version goes live only if it installs, accepts the config and
is healthy after the restart; otherwise the device is back on the version it had. Real venvs and
real pip, small hand-made wheels standing in for edge, and a stand-in for systemctl."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "images" / "files" / "edge-update"

FAKE_CLI = '''
import sys
from edge import __version__, DOCTOR_RC, CONFIG_RC

def main():
    args = sys.argv[1:]
    if args[:1] == ["--version"]:
        print("edge", __version__)
        return 0
    if args[:2] == ["config", "check"]:
        if CONFIG_RC:
            print(args[2] + ": kiosk.port: found 99999, expected at most 65535", file=sys.stderr)
        return CONFIG_RC
    if args[:1] == ["doctor"]:
        print("doctor", __version__, "fail" if DOCTOR_RC else "ok")
        return DOCTOR_RC
    return 2
'''

SYSTEMCTL = '''#!/bin/sh
# Stand-in for systemctl: logs every call; `is-active` and NRestarts read files the test controls.
echo "$*" >> "$STATE/calls"
case "$1" in
  is-active) [ "$(cat "$STATE/active" 2>/dev/null || echo yes)" = yes ] ;;
  show) cat "$STATE/nrestarts" 2>/dev/null || echo 0 ;;
  *) exit 0 ;;
esac
'''


def make_wheel(out: Path, version: str, *, doctor_rc: int = 0, config_rc: int = 0) -> Path:
    files = {
        "edge/__init__.py": f"__version__ = {version!r}\nDOCTOR_RC = {doctor_rc}\nCONFIG_RC = {config_rc}\n",
        "edge/cli.py": FAKE_CLI,
        f"edge-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: edge\nVersion: {version}\n",
        f"edge-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"edge-{version}.dist-info/entry_points.txt": "[console_scripts]\nedge = edge.cli:main\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"edge-{version}.dist-info/RECORD,,")
    path = out / f"edge-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr(f"edge-{version}.dist-info/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture
def pi(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(SYSTEMCTL)
    systemctl.chmod(0o755)
    config = tmp_path / "edge.toml"
    config.write_text('site = "hn"\ndevice = "kiosk-01"\nrole = "kiosk"\n')
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    prefix = tmp_path / "opt-edge"

    def update(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "STATE": str(state)}
        return subprocess.run([sys.executable, str(SCRIPT), "--prefix", str(prefix), "--config", str(config),
                               "--systemctl", str(systemctl), "--settle-s", "0.05", "--timeout-s", "1",
                               "--pip-arg=--no-index", *args], capture_output=True, text=True, env=env, timeout=300)

    def current() -> str:
        return os.readlink(prefix / "venv")

    def previous() -> str | None:
        link = prefix / "venv.previous"
        return os.readlink(link) if link.is_symlink() else None

    def calls() -> list[str]:
        path = state / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def version() -> str:
        return subprocess.run([str(prefix / "venv/bin/edge"), "--version"], capture_output=True, text=True).stdout.strip()

    class Pi:
        pass

    p = Pi()
    p.update, p.current, p.previous, p.calls, p.version = update, current, previous, calls, version
    p.wheels, p.state, p.prefix = wheels, state, prefix
    return p


def test_install_update_and_rollback_on_a_failed_health_check(pi):
    first = pi.update(str(make_wheel(pi.wheels, "1.0")), "--no-restart")
    assert first.returncode == 0, first.stdout + first.stderr
    assert pi.version() == "edge 1.0" and pi.current().startswith("venvs/edge-1.0-")
    assert pi.calls() == []  # the image build installs without restarting anything

    good = pi.update(str(make_wheel(pi.wheels, "2.0")))
    assert good.returncode == 0, good.stdout + good.stderr
    assert pi.version() == "edge 2.0"
    assert pi.previous().startswith("venvs/edge-1.0-")
    assert "restart edge.service" in pi.calls()

    bad = pi.update(str(make_wheel(pi.wheels, "3.0", doctor_rc=1)))
    assert bad.returncode == 2
    assert "NOT healthy" in bad.stdout and "doctor 3.0 fail" in bad.stdout and "rolled back" in bad.stdout
    assert pi.version() == "edge 2.0"  # back on the version that worked
    assert pi.previous().startswith("venvs/edge-1.0-")  # a later --rollback never leads to 3.0
    assert pi.calls().count("restart edge.service") == 3  # 2.0, 3.0, then 2.0 again

    back = pi.update("--rollback")
    assert back.returncode == 0 and pi.version() == "edge 1.0"


def test_a_version_that_refuses_the_config_is_never_switched_to(pi):
    assert pi.update(str(make_wheel(pi.wheels, "1.0")), "--no-restart").returncode == 0
    refused = pi.update(str(make_wheel(pi.wheels, "2.0", config_rc=1)))
    assert refused.returncode == 1
    assert "nothing changed" in refused.stdout and "kiosk.port" in refused.stdout
    assert pi.version() == "edge 1.0"
    assert pi.calls() == []  # the running service was never touched
    assert [p.name for p in (pi.prefix / "venvs").iterdir() if p.name.startswith("edge-2.0")] == []


def test_a_service_restarted_by_systemd_after_the_update_is_rolled_back(pi):
    assert pi.update(str(make_wheel(pi.wheels, "1.0")), "--no-restart").returncode == 0
    (pi.state / "nrestarts").write_text("0\n")
    # The stand-in reports one more restart after the first check: a crash or a watchdog kill.
    script = pi.state.parent / "systemctl"
    script.write_text(script.read_text().replace(
        'show) cat "$STATE/nrestarts" 2>/dev/null || echo 0 ;;',
        'show) n=$(cat "$STATE/nrestarts"); cat "$STATE/nrestarts"; echo $((n + 1)) > "$STATE/nrestarts" ;;'))
    result = pi.update(str(make_wheel(pi.wheels, "2.0")))
    assert result.returncode == 2 and "restarted by systemd" in result.stdout
    assert pi.version() == "edge 1.0"


def test_a_file_that_is_not_an_edge_wheel_is_refused(pi, tmp_path):
    other = tmp_path / "something.whl"
    other.write_text("x")
    result = pi.update(str(other))
    assert result.returncode == 1 and "expected a wheel named edge-VERSION" in result.stdout


def test_the_health_check_runs_at_least_once_however_slow_the_restart(pi):
    # A busy machine can spend the whole --timeout-s before the first look (here: none at all);
    # a healthy version must still be judged healthy, not rolled back unchecked.
    assert pi.update(str(make_wheel(pi.wheels, "1.0")), "--no-restart").returncode == 0
    result = pi.update(str(make_wheel(pi.wheels, "2.0")), "--timeout-s", "0")
    assert result.returncode == 0 and "edge doctor passes" in result.stdout, result.stdout + result.stderr
    assert pi.version() == "edge 2.0"
