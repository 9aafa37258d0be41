"""Skips for absent hardware, shared by the hardware tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def need_device(path: str) -> None:
    """Skip when a /dev path is absent (URLs such as loop:// or 'sim' pass through)."""
    if path.startswith("/dev/") and not Path(path).exists():
        pytest.skip(f"{path} is absent: is the adapter plugged in? (see `dmesg | tail`)")
    if path.startswith("/dev/") and not os.access(path, os.R_OK | os.W_OK):
        pytest.skip(f"{path}: no permission; add this user to group 'dialout' (or run as edge)")


def need_gpio() -> None:
    if not any(Path("/dev").glob("gpiochip*")):
        pytest.skip("no /dev/gpiochip*: not a Raspberry Pi (or GPIO driver missing)")
