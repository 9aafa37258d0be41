"""Liveness: an optional anti-spoofing ONNX model supplied by the operator, plus a model-free check
that a sequence of frames is not one still picture. With no model the result says "absent"."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.vision.models import session

# A still photo or a replayed image gives landmarks that do not move at all between frames;
# a person standing in front of the camera always moves by a fraction of a pixel or more.
MIN_MOTION_EYE_DIST = 0.004


class LivenessModel:
    """Wraps an ONNX classifier: N x 3 x H x W float32 RGB in 0..1 -> N x K scores (softmax applied
    when the row does not already sum to 1); column `live_index` is the 'live' probability."""

    def __init__(self, path: str | Path, *, live_index: int = 1, threads: int = 1):
        self.session = session(path, threads=threads)
        shape = self.session.get_inputs()[0].shape
        self.size = (int(shape[3]) if isinstance(shape[3], int) else 80,
                     int(shape[2]) if isinstance(shape[2], int) else 80)
        self.live_index = live_index

    def score(self, chip: np.ndarray) -> float:
        x = cv2.resize(chip, self.size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        out = np.asarray(self.session.run(None, {self.session.get_inputs()[0].name: x.transpose(2, 0, 1)[None]})[0])
        row = out.reshape(-1).astype(np.float64)
        if not np.isclose(row.sum(), 1.0, atol=1e-3) or np.any(row < 0):
            row = np.exp(row - row.max())
            row /= row.sum()
        if self.live_index >= row.size:
            raise ValueError(f"liveness model gives {row.size} outputs, live_index is {self.live_index}")
        return float(row[self.live_index])


def motion_check(landmark_sets: list[np.ndarray]) -> str:
    """'pass' if the face moved between frames, 'fail' if it is frozen, 'skipped' with < 2 frames."""
    if len(landmark_sets) < 2:
        return "skipped"
    points = np.stack([np.asarray(p, np.float64) for p in landmark_sets])
    eye_dist = float(np.hypot(*(points[0, 1] - points[0, 0]))) or 1.0
    motion = float(np.abs(np.diff(points, axis=0)).max()) / eye_dist
    return "pass" if motion >= MIN_MOTION_EYE_DIST else "fail"
