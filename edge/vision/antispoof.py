"""Passive presentation-attack detection: Minivision's MiniFASNetV2 (box x 2.7) and MiniFASNetV1SE
(box x 4.0), converted once to ONNX (`edge.vision.antispoof_convert`) and shipped in the package
(`antispoof_models/`, Apache-2.0, provenance and checksums beside them).

Preprocessing is upstream's (`src/generate_patches.py` + `src/anti_spoof_predict.py`): the
detector box is scaled around its centre (the scale shrunk so the crop fits the frame, then the
crop shifted inside the frame), cut out, resized to 80 x 80 with bilinear interpolation, kept
BGR with raw 0..255 float values, N x 3 x 80 x 80. Each model gives 3 logits; softmax; class 1 is
"real" (0 and 2 are two kinds of attack). Upstream sums the two models' probabilities and halves
the winning one: the live score here is the mean of the two class-1 probabilities.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.vision.models import ModelMissing, session

MODEL_DIR = Path(__file__).resolve().parent / "antispoof_models"
INPUT_SIZE = 80
LIVE_CLASS = 1


@dataclass(frozen=True)
class PatchModel:
    file: str
    scale: float  # the detector box is enlarged this much around its centre


MODELS = (PatchModel("minifasnet_v2_2.7_80x80.onnx", 2.7), PatchModel("minifasnet_v1se_4.0_80x80.onnx", 4.0))


def crop_box(frame_w: int, frame_h: int, box_xywh: tuple[float, float, float, float],
             scale: float) -> tuple[int, int, int, int]:
    """Upstream's CropImage._get_new_box: (x1, y1, x2, y2) inclusive pixel corners."""
    x, y, box_w, box_h = box_xywh
    scale = min((frame_h - 1) / box_h, (frame_w - 1) / box_w, scale)
    new_w, new_h = box_w * scale, box_h * scale
    centre_x, centre_y = box_w / 2 + x, box_h / 2 + y
    left, top = centre_x - new_w / 2, centre_y - new_h / 2
    right, bottom = centre_x + new_w / 2, centre_y + new_h / 2
    if left < 0:
        right -= left
        left = 0
    if top < 0:
        bottom -= top
        top = 0
    if right > frame_w - 1:
        left -= right - frame_w + 1
        right = frame_w - 1
    if bottom > frame_h - 1:
        top -= bottom - frame_h + 1
        bottom = frame_h - 1
    return int(left), int(top), int(right), int(bottom)


def patch(frame_bgr: np.ndarray, box_xyxy, scale: float) -> np.ndarray:
    """The 80 x 80 BGR uint8 patch one model sees, from an (x1, y1, x2, y2) detector box."""
    height, width = frame_bgr.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    box_w, box_h = max(1.0, x2 - x1 + 1), max(1.0, y2 - y1 + 1)
    left, top, right, bottom = crop_box(width, height, (x1, y1, box_w, box_h), scale)
    region = frame_bgr[max(0, top):bottom + 1, max(0, left):right + 1]
    return cv2.resize(region, (INPUT_SIZE, INPUT_SIZE))  # upstream: cv2 default, bilinear


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class AntiSpoof:
    """Both models loaded once; `score(frame_rgb, box)` -> live probability 0..1 (mean of the two)."""

    def __init__(self, model_dir: str | Path | None = None, *, threads: int = 1):
        directory = Path(model_dir) if model_dir else MODEL_DIR
        self.models = []
        for spec in MODELS:
            path = directory / spec.file
            if not path.is_file():
                raise ModelMissing(f"anti-spoofing model {path} is missing (it ships with the package; "
                                   f"rebuild with `python edge/vision/antispoof_convert.py --source CHECKOUT`)")
            self.models.append((spec, session(path, threads=threads)))

    def patches(self, frame_rgb: np.ndarray, box_xyxy) -> list[np.ndarray]:
        frame_bgr = np.ascontiguousarray(frame_rgb[:, :, ::-1])  # upstream reads frames with cv2 (BGR)
        return [patch(frame_bgr, box_xyxy, spec.scale) for spec, _ in self.models]

    def scores(self, frame_rgb: np.ndarray, box_xyxy) -> list[float]:
        """Each model's class-1 ('real') probability for the face in `box_xyxy`."""
        out = []
        for (spec, sess), image in zip(self.models, self.patches(frame_rgb, box_xyxy)):
            x = image.astype(np.float32).transpose(2, 0, 1)[None]  # raw 0..255, BGR, N x 3 x 80 x 80
            logits = sess.run(None, {sess.get_inputs()[0].name: x})[0]
            out.append(float(softmax(logits)[0, LIVE_CLASS]))
        return out

    def score(self, frame_rgb: np.ndarray, box_xyxy) -> float:
        return float(np.mean(self.scores(frame_rgb, box_xyxy)))


def verify_checksums(model_dir: str | Path | None = None) -> list[str]:
    """Problems with the shipped ONNX files against SHA256SUMS (empty list: all good)."""
    directory = Path(model_dir) if model_dir else MODEL_DIR
    sums = directory / "SHA256SUMS"
    if not sums.is_file():
        return [f"{sums} is missing"]
    problems = []
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        path = directory / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{path}: checksum differs from SHA256SUMS")
    return problems
