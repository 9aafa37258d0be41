"""The one place that turns a camera spec into a frame source (the vision worker, the QR service).

Specs, as the `[vision]` and `[qr]` configs document them: 'picamera2' (the Pi's CSI camera;
picamera2 is an optional import, installed with the `pi` extra), 'opencv:N' or 'opencv:/dev/videoN'
(a USB camera), 'replay:PATH' (an image, a folder of images or a video file, looped: tests and
demos), 'sim' (a generated scene the caller supplies, e.g. the QR demo's posters) and 'none' (no
source). Every source has `read()` -> RGB uint8 frame and `close()`; failures are DeviceError or
DeviceNotReady naming the camera.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from edge.errors import DeviceError, DeviceNotReady

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class ReplaySource:
    """Loops over an image, the images of a folder (sorted), or the frames of a video."""

    def __init__(self, path: str | Path, *, width: int = 640, height: int = 480):
        self.path = Path(path)
        self.size = (width, height)
        self._images: list[np.ndarray] = []
        self._video = None
        self._index = 0
        if not self.path.exists():
            raise DeviceError(f"replay source {self.path}: no such file or folder")
        if self.path.is_dir():
            files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            self._images = [self._load(p) for p in files]
            if not self._images:
                raise DeviceError(f"replay folder {self.path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        elif self.path.suffix.lower() in IMAGE_SUFFIXES:
            self._images = [self._load(self.path)]
        else:
            self._video = cv2.VideoCapture(str(self.path))
            if not self._video.isOpened():
                raise DeviceError(f"replay source {self.path}: not a readable video")

    def _load(self, path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DeviceError(f"replay image {path}: not a readable image")
        return fit(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), self.size)

    def read(self) -> np.ndarray:
        if self._video is not None:
            ok, frame = self._video.read()
            if not ok:  # end of the video: loop
                self._video.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = self._video.read()
                if not ok:
                    raise DeviceNotReady(f"replay video {self.path} gave no frame")
            return fit(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), self.size)
        frame = self._images[self._index % len(self._images)]
        self._index += 1
        return frame.copy()

    def close(self) -> None:
        if self._video is not None:
            self._video.release()


class OpenCVSource:
    """A USB camera through OpenCV (index or /dev/videoN)."""

    def __init__(self, device: str, *, width: int = 640, height: int = 480):
        self.device = int(device) if device.isdigit() else device
        self._cap = cv2.VideoCapture(self.device)
        if not self._cap.isOpened():
            raise DeviceNotReady(f"camera {device} cannot be opened")
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)

    def read(self) -> np.ndarray:
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise DeviceNotReady(f"camera {self.device} gave no frame")
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self._cap.release()


class Picamera2Source:
    """The Pi's CSI camera through picamera2 (installed with the `pi` extra)."""

    def __init__(self, *, width: int = 640, height: int = 480):
        try:
            from picamera2 import Picamera2
        except ImportError as err:
            raise DeviceNotReady("picamera2 is not installed (pip install 'edge[pi]' on the Pi)") from err
        try:
            self._cam = Picamera2()
            self._cam.configure(self._cam.create_video_configuration(main={"size": (width, height), "format": "RGB888"}))
            self._cam.start()
        except Exception as err:  # libcamera raises assorted errors when no camera is attached
            raise DeviceNotReady(f"CSI camera not available: {err}") from err

    def read(self) -> np.ndarray:
        # picamera2's "RGB888" is BGR in memory order (libcamera naming).
        return np.ascontiguousarray(self._cam.capture_array()[:, :, ::-1])

    def close(self) -> None:
        self._cam.stop()
        self._cam.close()


def open_source(spec: str, *, width: int = 640, height: int = 480, sim: Callable[[], Any] | None = None):
    """The frame source named by the config's `camera` value; None for 'none'.

    'sim' is built by the caller's `sim` factory (only the caller knows what its scene shows)."""
    if spec == "none":
        return None
    if spec == "sim":
        if sim is None:
            raise DeviceError("camera 'sim' has no simulated scene here (use 'replay:PATH' instead)")
        return sim()
    if spec == "picamera2":
        return Picamera2Source(width=width, height=height)
    kind, _, rest = spec.partition(":")
    if kind == "opencv":
        return OpenCVSource(rest, width=width, height=height)
    if kind == "replay":
        return ReplaySource(rest, width=width, height=height)
    raise DeviceError(f"unknown camera source {spec!r}")


def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Letterbox into width x height (grey borders), keeping the aspect ratio, like a camera frame."""
    width, height = size
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    scale = min(width / w, height / h)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    frame = np.full((height, width, 3), 96, np.uint8)
    y, x = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    frame[y:y + small.shape[0], x:x + small.shape[1]] = small
    return frame
