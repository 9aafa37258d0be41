"""Model-free liveness from the five landmarks across the frames of one verify.

A flat picture (print or screen) moved in front of the camera moves its five landmarks by one
plane-to-plane mapping (a homography): the four roughly coplanar points (eyes, mouth corners)
fix that mapping exactly, and it then predicts where the nose lands, to within landmark noise. A
real head that turns does not follow it: the nose tip stands out of the plane of the eyes and
mouth (about half an eye distance), so it lands off the prediction ("parallax").

Parallax alone would let a replayed video of the citizen turning their head through, so each
verify also picks a random challenge (turn left, turn right, ...) that the person must perform
while the frames are taken, in the asked direction and not the other way.

Landmarks: 5 x 2 image points, MTCNN order: left eye, right eye, nose, left/right mouth corner
(left/right in the image). The camera image is not mirrored, so when the citizen turns to their
own left their nose moves to the image's right (yaw grows).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edge.vision.quality import pose

# A person standing in front of the camera always moves by a fraction of a pixel or more;
# a still photo or a replayed image gives landmarks that do not move at all.
MIN_MOTION_EYE_DIST = 0.004
# Thresholds measured on the synthetic attack set (docs/face.md, tests/vision/attacks.py):
YAW_STEP = 0.08  # yaw change (nose offset / eye distance) that counts as a turn, about 12 degrees
# nose beyond where the eye/mouth plane puts it, towards the turn, in eye distances: flat
# pictures tilted up to 35 degrees reached 0.070 (MTCNN landmark noise), a turning head 0.081+
MIN_PARALLAX = 0.075
# ... and at least this share of the turn: a head's nose stands out about a third of an eye
# distance, which gives ~0.75 x the yaw change (0.55 for a flat nose); strongly tilted pictures
# made MTCNN's nose err by up to ~0.5 x the (foreshortening) yaw change
PARALLAX_PER_TURN = 0.5
EXTREME_FRAMES = 3  # frames averaged at each end of the turn (one bad landmark set must not decide)

# key -> (Vietnamese, English) prompt shown by the kiosk while the frames are taken. Only turns:
# coming closer straight on moves the nose hardly at all off the plane, so it cannot tell a
# photo brought closer from a person.
CHALLENGES = {
    "turn_left": ("Ông/Bà vui lòng quay mặt sang trái", "Please turn your head to your left"),
    "turn_right": ("Ông/Bà vui lòng quay mặt sang phải", "Please turn your head to your right"),
}
DEFAULT_CHALLENGES = tuple(CHALLENGES)

PLANE = [0, 1, 3, 4]  # eyes and mouth corners
NOSE = 2


def challenge(key: str) -> dict:
    """The challenge as verify/guidance report it: {"key", "vi", "en"}."""
    vi, en = CHALLENGES[key]
    return {"key": key, "vi": vi, "en": en}


def pick_challenge(keys: Sequence[str] = DEFAULT_CHALLENGES) -> dict:
    """A random challenge (secrets: not predictable from earlier ones)."""
    return challenge(secrets.choice(list(keys)))


def _eye_distance(points: np.ndarray) -> float:
    return float(np.hypot(*(points[1] - points[0]))) or 1e-6


def planar_offset(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Where the nose in `after` is relative to where the homography of the four plane points
    (eyes, mouth corners) from `before` puts it, in eye distances of `after`, as (along the eye
    line, across it): ~0 for a flat picture moved in any way, not for a 3-D head that turned."""
    src, dst = np.asarray(before, np.float32), np.asarray(after, np.float32)
    try:
        mapping = cv2.getPerspectiveTransform(src[PLANE], dst[PLANE])
    except cv2.error:  # degenerate (three points on a line): no plane to test against
        return np.zeros(2)
    predicted = cv2.perspectiveTransform(src[NOSE].reshape(1, 1, 2), mapping).reshape(2)
    if not np.all(np.isfinite(predicted)):
        return np.zeros(2)
    eye_line = (dst[1] - dst[0]) / _eye_distance(dst)
    offset = (dst[NOSE] - predicted) / _eye_distance(dst)
    return np.array([offset @ eye_line, offset @ np.array([-eye_line[1], eye_line[0]])])


def planar_residual(before: np.ndarray, after: np.ndarray) -> float:
    """Length of `planar_offset`."""
    return float(np.hypot(*planar_offset(before, after)))


@dataclass
class Motion:
    status: str  # pass | frozen | not_done | wrong | flat | skipped
    parallax: float  # nose beyond the plane's prediction, towards the asked turn (eye distances)
    moved: float  # largest landmark change between two frames, in eye distances
    turn: float  # yaw change in the asked direction, between the ends of the turn
    other: float  # yaw change the other way from the first frames

    def as_dict(self) -> dict:
        return {"status": self.status, "parallax": round(self.parallax, 3), "moved": round(self.moved, 3),
                "turn": round(self.turn, 3), "other_way": round(self.other, 3)}


def measure(landmark_sets: Sequence, key: str | None) -> Motion:
    """Judge the landmark sequence (capture order) against challenge `key` ('turn_left',
    'turn_right'; None: either way, whichever the face turned most).

    frozen   the landmarks did not move (a still picture)
    not_done moved, but did not turn as asked (yet): the capture may go on
    wrong    turned the other way (or both ways, as a replayed recording might)
    flat     turned as asked, but like a flat picture: the nose stayed on the plane
    pass     turned as asked, with a 3-D head's parallax
    """
    count = len(landmark_sets)
    if count < 2:
        return Motion("skipped", 0.0, 0.0, 0.0, 0.0)
    points = np.stack([np.asarray(p, np.float64).reshape(5, 2) for p in landmark_sets])
    moved = float(np.abs(np.diff(points, axis=0)).max()) / _eye_distance(points[0])
    yaws = np.array([pose(p).yaw for p in points])
    ends = min(EXTREME_FRAMES, count // 2)
    start_yaw = float(np.median(yaws[:ends]))
    if key is None:
        key = "turn_left" if abs(yaws.max() - start_yaw) >= abs(yaws.min() - start_yaw) else "turn_right"
    # the citizen's left = the image's right = yaw grows (the camera image is not mirrored)
    sign = 1.0 if key == "turn_left" else -1.0
    along = sign * (yaws - start_yaw)
    order = np.argsort(along)
    least, most = order[:ends], order[-ends:]
    reference = np.median(points[least], axis=0)
    turn = float(np.median(along[most]) - np.median(along[least]))
    other = float(max(0.0, -along.min()))
    parallax = float(np.median([sign * planar_offset(reference, points[i])[0] for i in most]))
    if moved < MIN_MOTION_EYE_DIST:
        status = "frozen"
    elif other >= YAW_STEP:
        status = "wrong"
    elif turn < YAW_STEP:
        status = "not_done"
    else:
        status = "pass" if parallax >= max(MIN_PARALLAX, PARALLAX_PER_TURN * turn) else "flat"
    return Motion(status, parallax, moved, turn, other)


def turned_away(landmark_sets: Sequence) -> list[bool]:
    """Which frames show the head turned for the challenge (yaw at least half a step from the
    first frames'): those prove liveness but are not matched, because a turned face is further
    from the frontal templates than the matching threshold was chosen for."""
    if not landmark_sets:
        return []
    yaws = np.array([pose(np.asarray(p, np.float64).reshape(5, 2)).yaw for p in landmark_sets])
    start = float(np.median(yaws[:max(1, min(EXTREME_FRAMES, len(yaws) // 2))]))
    return [bool(abs(y - start) >= YAW_STEP / 2) for y in yaws]


def frontal_only(frames: list[dict]) -> list[dict]:
    """Per-frame results with the challenge's turned frames marked reason 'turned' (not matched)."""
    with_points = [i for i, f in enumerate(frames) if f.get("landmarks") is not None]
    flags = turned_away([frames[i]["landmarks"] for i in with_points])
    out = list(frames)
    for i, away in zip(with_points, flags):
        if away and out[i].get("reason") == "ok":
            out[i] = {**out[i], "reason": "turned"}
    return out
