"""Liveness (presentation-attack detection) for one verify: the passive model's scores per frame
(`edge.vision.antispoof`, or an operator's own ONNX classifier) and the motion of the landmarks
across the frames against the random challenge (`edge.vision.motion`), judged together by `judge`.

With the model turned off the result says "absent", never "pass".
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.vision import motion
from edge.vision.models import session

MIN_MOTION_EYE_DIST = motion.MIN_MOTION_EYE_DIST


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
    moved = float(np.abs(np.diff(points, axis=0)).max()) / eye_dist
    return "pass" if moved >= MIN_MOTION_EYE_DIST else "fail"


class ChipScorer:
    """An operator's model (`LivenessModel`) behind the same call as the built-in one."""

    def __init__(self, model: LivenessModel):
        self.model = model

    def score(self, frame_rgb: np.ndarray, face) -> float:
        return self.model.score(face.chip)


class BuiltinScorer:
    """The shipped MiniFASNet pair, on the detector box in the whole frame (as upstream)."""

    def __init__(self, threads: int = 1):
        from edge.vision.antispoof import AntiSpoof

        self.model = AntiSpoof(threads=threads)

    def score(self, frame_rgb: np.ndarray, face) -> float:
        return self.model.score(frame_rgb, face.box)


def make_scorer(setting: str | None, *, live_index: int = 1, threads: int = 1):
    """The per-frame live scorer for `liveness_model` ('builtin', 'off'/None, or a path)."""
    if setting in (None, "off"):
        return None
    if setting == "builtin":
        return BuiltinScorer(threads=threads)
    return ChipScorer(LivenessModel(setting, live_index=live_index, threads=threads))


def judge(frames: list[dict], challenge_key: str | None, *, model_on: bool, threshold: float,
          motion_mode: str) -> dict:
    """The liveness part of a verify answer, from the worker's per-frame results.

    model   'pass' | 'fail' (median live score of the matched frames below `threshold`) | 'absent'
    motion  'pass' | 'flat' | 'frozen' | 'wrong' | 'not_done' | 'skipped' (edge.vision.motion) | 'off'
    verdict 'pass'; 'fail' (refuse: reason 'spoof', or 'challenge' for a turn the wrong way);
            'retry' (the challenge was not done yet: the citizen may try again, no attempt counted)
    """
    scores = [f["live"] for f in frames if f.get("reason") == "ok" and "live" in f]
    out: dict = {"model": "absent", "motion": "off", "verdict": "pass"}
    if model_on:
        score = float(np.median(scores)) if scores else 0.0
        out["model"] = "pass" if scores and score >= threshold else "fail"
        out["score"] = round(score, 3)
    if motion_mode != "off":
        measured = motion.measure([f["landmarks"] for f in frames if f.get("landmarks") is not None],
                                  challenge_key)
        out["motion"] = measured.status
        out["motion_detail"] = measured.as_dict()
    enforced = out["motion"] if motion_mode == "require" else "pass"
    if out["model"] == "fail" or enforced in ("flat", "frozen"):
        out.update(verdict="fail", reason="spoof")
    elif enforced == "wrong":
        out.update(verdict="fail", reason="challenge")
    elif enforced in ("not_done", "skipped"):
        out.update(verdict="retry", reason="challenge")
    return out
