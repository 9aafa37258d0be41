"""Settings for the hardware tests: environment variables EDGE_HW_*, or a TOML file named by
EDGE_HW_CONFIG with the same keys in lower case without the prefix, e.g.

    [hw]
    serial_loopback = "/dev/ttyUSB0"
    locker_driver = "kerong"
    locker_port = "/dev/ttyUSB1"

Environment variables win over the file. Every test skips, saying which setting it needs or which
device is absent, when its hardware is not there. EDGE_HW_INTERACTIVE=1 (with `pytest -s`) also
asks the technician to confirm what only a person can see or hear (a click, a vibrating card)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "hw: needs the real hardware attached (pytest -m hw hw-tests)")


def _file_settings() -> dict:
    path = os.environ.get("EDGE_HW_CONFIG")
    if not path:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise pytest.UsageError(f"EDGE_HW_CONFIG={path}: {err}") from err
    return {str(k).lower(): v for k, v in data.get("hw", data).items()}


class Settings:
    def __init__(self):
        self.file = _file_settings()

    def get(self, name: str, default=None):
        env = os.environ.get(f"EDGE_HW_{name.upper()}")
        if env is not None and env != "":
            return env
        return self.file.get(name.lower(), default)

    def need(self, name: str, what: str) -> str:
        """The setting's value, or skip naming the variable to set."""
        value = self.get(name)
        if value in (None, ""):
            pytest.skip(f"set EDGE_HW_{name.upper()} ({what}) to run this test")
        return str(value)

    @property
    def interactive(self) -> bool:
        return str(self.get("interactive", "0")).lower() in ("1", "yes", "true")

    def confirm(self, question: str) -> None:
        """Ask the technician on the terminal (needs `pytest -s`); a 'no' fails the test."""
        if not self.interactive:
            return
        try:
            with open("/dev/tty", "r+") as tty:
                tty.write(f"\n>>> {question} [y/N] ")
                tty.flush()
                answer = tty.readline().strip().lower()
        except OSError:
            pytest.skip("EDGE_HW_INTERACTIVE=1 needs a terminal (/dev/tty)")
        assert answer in ("y", "yes", "c", "co"), f"technician answered {answer!r} to: {question}"


@pytest.fixture(scope="session")
def hw() -> Settings:
    return Settings()
