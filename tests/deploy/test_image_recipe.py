"""What CI can check of the image without a Pi: the pi-gen stage is well formed (pi-gen skips a
script that is not executable, silently), its scripts parse, every file it installs is produced by
the staging step, and `make image` on a machine that cannot build says so and exits non-zero."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib  # noqa: F401  (python >= 3.11, as on the image)
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STAGE = REPO / "images" / "pi-gen" / "stage-edge"
PIGEN_FILE = re.compile(r"\d\d-(run\.sh|run-chroot\.sh|packages|packages-nr|debconf|patches)")
DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")


def shell_scripts() -> list[Path]:
    scripts = [STAGE / "prerun.sh", REPO / "images" / "build.sh", REPO / "deploy" / "mosquitto" / "make-passwd.sh"]
    return scripts + sorted(STAGE.glob("*/[0-9][0-9]-run*.sh"))


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: p.name)
def test_scripts_parse_and_are_executable(script):
    assert os.access(script, os.X_OK), f"{script} is not executable"
    shell = "sh" if script.name == "make-passwd.sh" else "bash"
    result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_stage_follows_pi_gen_layout():
    assert (STAGE / "EXPORT_IMAGE").is_file()
    substages = [p for p in STAGE.iterdir() if p.is_dir()]
    assert substages
    for sub in substages:
        assert re.fullmatch(r"\d\d-[a-z0-9-]+", sub.name), sub
        for entry in sub.iterdir():
            assert entry.name == "files" or PIGEN_FILE.fullmatch(entry.name), f"pi-gen ignores {entry}"


def test_package_lists_hold_debian_package_names():
    lists = list(STAGE.glob("*/[0-9][0-9]-packages*"))
    assert lists
    names = [name for path in lists for line in path.read_text().splitlines()
             if not line.startswith("#") for name in line.split()]
    assert {"python3-venv", "chromium", "cage", "libzbar0"} <= set(names)
    assert all(DEBIAN_PACKAGE.fullmatch(n) for n in names), names


def test_config_is_a_shell_fragment_for_a_bookworm_image():
    out = subprocess.run(["bash", "-c", f"set -a; . '{REPO / 'images/pi-gen/config'}'; env"],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=True).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert env["IMG_NAME"] == "edge" and env["RELEASE"] == "bookworm"
    assert env["FIRST_USER_NAME"] and "FIRST_USER_PASS" not in env  # the password is never committed


def test_staging_produces_every_file_the_stage_installs(staged):
    staged.skip_without_index()
    assert staged.returncode == 0, staged.stderr[-2000:]
    files = staged.files
    run_sh = (STAGE / "01-edge" / "00-run.sh").read_text()
    referenced = re.findall(r'"\$\{F\}/?"?([\w./*-]+)', run_sh)
    assert referenced
    for pattern in referenced:
        pattern = pattern.strip('"').lstrip("/")
        assert list(files.glob(pattern)), f"00-run.sh installs {pattern}, which staging did not produce"
    assert len(list((files / "wheels").glob("edge-*-py3-none-any.whl"))) == 1
    units = {p.name for p in (files / "systemd").glob("*.service")}
    chroot = (STAGE / "01-edge" / "01-run-chroot.sh").read_text()
    enabled = set(re.search(r"systemctl enable (.+)", chroot).group(1).split())
    assert enabled <= units and "edge.service" in enabled and "edge-firstboot.service" in enabled


def test_make_image_explains_what_is_missing_and_fails(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PI_GEN_DIR": str(tmp_path / "no-pi-gen"), "HOME": str(tmp_path)}
    result = subprocess.run(["bash", str(REPO / "images/build.sh")], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 2
    assert "cannot build the Raspberry Pi image" in result.stderr
    assert "pi-gen checkout" in result.stderr and "EDGE_TECH_PASSWORD" in result.stderr
