"""Accuracy check: genuine pairs accepted, impostors rejected at the default threshold, also after
realistic changes to the frames (scale into 640x480, +-15 degree roll, brightness +-30 %,
sensor noise, JPEG). Thresholds must still be validated on local faces (see docs/face.md)."""

import cv2
import numpy as np
import pytest

from tests.vision.conftest import load_rgb

THRESHOLD = 0.6  # dlib's Euclidean threshold, the VisionConfig default


def into_frame(image, *, face_scale=0.8, roll_deg=0.0, gain=1.0, noise=0.0, jpeg=None, seed=0):
    """Place `image` in a 640x480 frame as a camera would see it, then degrade it."""
    h, w = image.shape[:2]
    s = min(640 / w, 480 / h) * face_scale
    small = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 90, np.uint8)
    y, x = (480 - small.shape[0]) // 2, (640 - small.shape[1]) // 2
    frame[y:y + small.shape[0], x:x + small.shape[1]] = small
    if roll_deg:
        m = cv2.getRotationMatrix2D((320, 240), roll_deg, 1.0)
        frame = cv2.warpAffine(frame, m, (640, 480), borderValue=(90, 90, 90))
    out = frame.astype(np.float32) * gain
    if noise:
        out += np.random.default_rng(seed).normal(0, noise, out.shape)
    frame = np.clip(out, 0, 255).astype(np.uint8)
    if jpeg:
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, jpeg])
        frame = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return frame


CHANGES = {
    "as-is": {},
    "small": {"face_scale": 0.55},
    "roll+15": {"roll_deg": 15},
    "roll-15": {"roll_deg": -15},
    "dark-30%": {"gain": 0.7},
    "bright+30%": {"gain": 1.3},
    "noise": {"noise": 8.0},
    "jpeg50": {"jpeg": 50},
    # Combined: milder than each alone. (At scale 0.7, gain 0.75, noise 6, JPEG 60 even dlib's own
    # pipeline puts obama3 at 0.61 from obama: such frames belong to the quality gates, not the matcher.)
    "combined": {"face_scale": 0.8, "roll_deg": 10, "gain": 0.8, "noise": 5.0, "jpeg": 70},
}


@pytest.fixture(scope="module")
def enrolled(embedder):
    faces = embedder.embed(load_rgb("obama.jpg"))
    assert len(faces) == 1
    return faces[0].embedding


def single_face(embedder, frame):
    faces = embedder.embed(frame)
    assert len(faces) == 1, f"expected one face, found {len(faces)}"
    return faces[0].embedding


@pytest.mark.parametrize("change", list(CHANGES))
def test_genuine_accepted_and_impostor_rejected(embedder, enrolled, change):
    for name in ("obama2.jpg", "obama3.jpg"):
        probe = single_face(embedder, into_frame(load_rgb(name), **CHANGES[change]))
        assert np.linalg.norm(probe - enrolled) < THRESHOLD, f"{name} rejected after {change}"
    impostor = single_face(embedder, into_frame(load_rgb("biden.jpg"), **CHANGES[change]))
    assert np.linalg.norm(impostor - enrolled) >= THRESHOLD, f"biden accepted after {change}"
