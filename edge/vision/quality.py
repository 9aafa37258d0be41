"""Quality gates run before matching; each failure carries a reason and on-screen guidance.

Reasons: no_face, multiple_faces, too_small, blurred (Laplacian variance of the chip), pose
(yaw/pitch/roll estimated from the five landmarks), too_dark, too_bright.

A second detection counts as a second person only when it could be one: a tiny, poor detection
away from the main face (a face in a poster, a pattern on a shirt) is background.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# The on-screen sentence of each reason is edge/vision/guidance.py (shared with the kiosk's screen).
from edge.vision.guidance import GUIDANCE, guidance  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class Gates:
    min_face_px: int = 80  # box width in the frame
    min_sharpness: float = 30.0  # Laplacian variance of the grey chip
    max_yaw: float = 0.35  # nose offset from the eye midpoint, in eye distances
    max_roll_deg: float = 30.0
    pitch_range: tuple[float, float] = (0.25, 0.80)  # nose between eyes (0) and mouth (1)
    min_brightness: float = 45.0  # mean grey level of the chip
    max_brightness: float = 215.0
    # a detection smaller than min_face_px AND below this quality, not overlapping the main face,
    # is background, not a second person (a second person standing there scores 0.2-0.4)
    background_quality: float = 0.05


@dataclass
class Pose:
    yaw: float
    pitch: float
    roll_deg: float


def pose(landmarks: np.ndarray) -> Pose:
    """Rough head pose from MTCNN's five points (image coordinates)."""
    left_eye, right_eye, nose, mouth_left, mouth_right = np.asarray(landmarks, np.float64)
    eye_vec = right_eye - left_eye
    roll = float(np.degrees(np.arctan2(eye_vec[1], eye_vec[0])))
    eye_dist = float(np.hypot(*eye_vec)) or 1e-6
    cos, sin = np.cos(np.radians(-roll)), np.sin(np.radians(-roll))
    rot = np.array([[cos, -sin], [sin, cos]])
    eye_mid = (left_eye + right_eye) / 2
    nose_r = rot @ (nose - eye_mid)
    mouth_r = rot @ ((mouth_left + mouth_right) / 2 - eye_mid)
    pitch = float(nose_r[1] / mouth_r[1]) if mouth_r[1] > 1e-6 else 0.0
    return Pose(yaw=float(nose_r[0] / eye_dist), pitch=pitch, roll_deg=roll)


def sharpness(chip: np.ndarray) -> float:
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def brightness(chip: np.ndarray) -> float:
    # The central part of the chip is the face; corners hold background.
    return float(cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)[30:120, 30:120].mean())


def face_quality(box: np.ndarray, landmarks: np.ndarray, score: float, chip: np.ndarray) -> float:
    """One number in 0..1 to rank faces/frames: confidence x size x sharpness x frontality."""
    width = float(box[2] - box[0])
    p = pose(landmarks)
    size = min(1.0, width / 120.0)
    sharp = min(1.0, sharpness(chip) / 100.0)
    frontal = max(0.0, 1.0 - abs(p.yaw) / 0.5) * max(0.0, 1.0 - abs(p.pitch - 0.53) / 0.5)
    return float(score * size * sharp * frontal)


def _width(face) -> float:
    return float(face.box[2] - face.box[0])


def _overlaps(a, b) -> bool:
    return not (a.box[2] < b.box[0] or b.box[2] < a.box[0] or a.box[3] < b.box[1] or b.box[3] < a.box[1])


def people(faces: list, gates: Gates) -> list:
    """The detections that may be people, largest first: the main face, and every other one
    unless it is too small to use, of poor quality and clear of the main face (background)."""
    if not faces:
        return []
    ranked = sorted(faces, key=lambda f: -_width(f))
    main = ranked[0]
    return [main] + [f for f in ranked[1:] if not (
        _width(f) < gates.min_face_px and f.quality < gates.background_quality and not _overlaps(f, main))]


def check(faces: list, gates: Gates) -> tuple[str, object | None]:
    """('ok', face) when exactly one usable face is present, else (reason, face or None)."""
    faces = people(faces, gates)
    if not faces:
        return "no_face", None
    if len(faces) > 1:
        return "multiple_faces", None
    face = faces[0]
    if float(face.box[2] - face.box[0]) < gates.min_face_px:
        return "too_small", face
    p = pose(face.landmarks)
    if abs(p.yaw) > gates.max_yaw or abs(p.roll_deg) > gates.max_roll_deg \
            or not gates.pitch_range[0] <= p.pitch <= gates.pitch_range[1]:
        return "pose", face
    level = brightness(face.chip)
    if level < gates.min_brightness:
        return "too_dark", face
    if level > gates.max_brightness:
        return "too_bright", face
    if sharpness(face.chip) < gates.min_sharpness:
        return "blurred", face
    return "ok", face
