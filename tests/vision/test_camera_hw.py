"""Opt-in (`pytest -m hw`): a real camera gives RGB frames; skipped when none is attached."""

from pathlib import Path

import pytest

from edge.errors import DeviceNotReady
from edge.vision.camera import open_source

pytestmark = pytest.mark.hw


def test_real_camera_gives_rgb_frames():
    specs = ["picamera2"] + [f"opencv:{p}" for p in sorted(Path("/dev").glob("video*"))[:1]]
    for spec in specs:
        try:
            source = open_source(spec, width=640, height=480)
        except DeviceNotReady:
            continue
        try:
            frame = source.read()
            assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype.name == "uint8"
            return
        finally:
            source.close()
    pytest.skip("no camera attached (picamera2 or /dev/video*)")
