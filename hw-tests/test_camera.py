"""The camera gives a real frame: the right shape, not black, not frozen. EDGE_HW_CAMERA is a
V4L2 device (/dev/video0, USB cameras) or `picamera2` (the CSI camera through libcamera)."""

from __future__ import annotations

import pytest

from hwutil import need_device

pytestmark = pytest.mark.hw

MIN_CONTRAST = 2.0  # standard deviation of the grey levels: a black or covered lens is below this


def _frames_v4l2(device: str, count: int):
    import cv2

    cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
    try:
        if not cap.isOpened():
            pytest.fail(f"OpenCV could not open {device} (busy? is edge running? `sudo systemctl stop edge`)")
        frames = []
        for _ in range(count):
            ok, frame = cap.read()
            assert ok, f"{device} opened but gave no frame"
            frames.append(frame)
        return frames
    finally:
        cap.release()


def _frames_picamera2(count: int):
    try:
        from picamera2 import Picamera2
    except ImportError:
        pytest.skip("picamera2 is not installed (apt install python3-picamera2)")
    cam = Picamera2()
    try:
        cam.configure(cam.create_still_configuration(main={"size": (1280, 720), "format": "RGB888"}))
        cam.start()
        return [cam.capture_array() for _ in range(count)]
    finally:
        cam.close()


def test_camera_frame(hw):
    import numpy as np

    source = hw.need("camera", "/dev/video0 for a USB camera, or picamera2 for the CSI camera")
    if source == "picamera2":
        frames = _frames_picamera2(3)
    else:
        need_device(source)
        frames = _frames_v4l2(source, 3)
    frame = frames[-1]
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.shape[0] >= 240, f"unexpected frame shape {frame.shape}"
    grey = frame.mean(axis=2)
    assert grey.std() > MIN_CONTRAST, "the frame is uniform: lens covered, no light, or a dead sensor"
    diff = np.abs(frames[0].astype(np.int16) - frames[-1].astype(np.int16)).mean()
    hw.confirm(f"Camera OK ({frame.shape[1]}x{frame.shape[0]}, change between frames {diff:.1f}). Is the lens clean and aimed at the face position?")
