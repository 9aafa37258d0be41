"""A synthetic presentation-attack set built from the sample faces (tests/data/faces), seeded:
used by tests/vision/test_liveness.py and `edge bench liveness`.

Stills (what the passive model sees):
  print   the photo printed (paper tint, lower contrast, halftone dots), held up and
          re-photographed flat with a perspective tilt, a paper margin, camera blur, noise, JPEG
  screen  the photo on a phone/monitor: pixel-grid moire, backlight (raised blacks, blue cast),
          a glare band and a dark bezel, re-photographed with a tilt, noise, JPEG
Sequences (what the motion check sees), each a list of 640x480 RGB frames:
  moved_flat   a print/screen moved like a head would be: tilted left/right about its vertical axis,
               brought closer (one homography per frame)
  frozen       one frame repeated (a replayed still)
  turning      a genuine-like head turn: the nose region shifted sideways out of the eye/mouth
               plane (a 3-D head's parallax), synthesised from a still photo
  replay of `turning` played back when the other direction is asked

These are simulations: they model the cues the detectors use, not the full physics of a
printer, a display or a camera. docs/face.md reports the model's scores on them.
"""

from __future__ import annotations

import cv2
import numpy as np

SIZE = (640, 480)


def _homography_tilt(width: int, height: int, yaw_deg: float, pitch_deg: float = 0.0, scale: float = 1.0,
                     shift=(0.0, 0.0), focal: float = 700.0) -> np.ndarray:
    """The image of a flat picture (width x height, centred) rotated by yaw/pitch in front of a
    pinhole camera: a 3x3 homography from picture pixels to frame pixels."""
    a, b = np.radians(yaw_deg), np.radians(pitch_deg)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]) @ \
        np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    centred = np.hstack([corners - [width / 2, height / 2], np.zeros((4, 1))])
    cam = centred @ rot.T + [0, 0, focal / scale]
    projected = np.stack([focal * cam[:, 0] / cam[:, 2] + SIZE[0] / 2 + shift[0],
                          focal * cam[:, 1] / cam[:, 2] + SIZE[1] / 2 + shift[1]], axis=1)
    return cv2.getPerspectiveTransform(corners.astype(np.float32), projected.astype(np.float32))


def _scene(rng: np.random.Generator) -> np.ndarray:
    """A plain indoor background: a soft gradient with noise."""
    y = np.linspace(0, 1, SIZE[1])[:, None, None]
    base = (90 + 60 * y + rng.uniform(-20, 20, (1, 1, 3))).astype(np.float32)
    return np.clip(np.broadcast_to(base, (SIZE[1], SIZE[0], 3)) + rng.normal(0, 3, (SIZE[1], SIZE[0], 3)),
                   0, 255).astype(np.uint8)


def _fit_face(image: np.ndarray, height: int = 520) -> np.ndarray:
    scale = height / image.shape[0]
    return cv2.resize(image, (max(1, round(image.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)


def _camera(frame: np.ndarray, rng: np.random.Generator, *, blur: float = 0.8, noise: float = 4.0,
            quality: int = 80) -> np.ndarray:
    out = cv2.GaussianBlur(frame, (0, 0), blur).astype(np.float32)
    out = np.clip(out + rng.normal(0, noise, out.shape), 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1].copy()


def _present(picture: np.ndarray, rng: np.random.Generator, *, yaw: float, pitch: float = 0.0, scale: float = 1.0,
             shift=(0.0, 0.0)) -> np.ndarray:
    """The flat picture (with its margin) held in front of the camera at the given tilt."""
    height, width = picture.shape[:2]
    mapping = _homography_tilt(width, height, yaw, pitch, scale, shift)
    frame = _scene(rng)
    warped = cv2.warpPerspective(picture, mapping, SIZE, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((height, width), 255, np.uint8), mapping, SIZE)
    frame[mask > 0] = warped[mask > 0]
    return frame


def printed(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The photo as a print: warm paper tint, compressed contrast, a halftone screen, paper margin."""
    img = _fit_face(face).astype(np.float32)
    img = 30 + img * 0.78 * np.array([1.0, 0.97, 0.88])  # ink on paper: no true black or white
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * 0.8  # printer gamut: less saturated
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    period = rng.uniform(3.0, 4.5)
    dots = np.cos(2 * np.pi * (xx + yy) / period / 1.41) * np.cos(2 * np.pi * (xx - yy) / period / 1.41)
    img = img + 18 * dots[:, :, None]
    margin = int(0.08 * h)
    paper = np.full((h + 2 * margin, w + 2 * margin, 3), (236, 232, 214), np.float32)
    paper[margin:margin + h, margin:margin + w] = img
    return np.clip(paper, 0, 255).astype(np.uint8)


def screened(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The photo on a phone or monitor: backlight, blue cast, RGB sub-pixel grid (moire once
    re-sampled by the camera), a glare band and a bezel."""
    img = _fit_face(face).astype(np.float32)
    img = 25 + img * 0.85 * np.array([0.93, 0.98, 1.08])  # backlight lifts the blacks, LEDs run blue
    h, w = img.shape[:2]
    pitch = rng.uniform(2.2, 3.0)  # screen pixels per image pixel at this distance: moire
    xx = np.arange(w)[None, :]
    for channel in range(3):
        phase = 2 * np.pi * (xx / pitch - channel / 3)
        img[:, :, channel] *= 0.8 + 0.2 * np.cos(phase)
    yy = np.arange(h)[:, None]
    img *= (0.9 + 0.1 * np.cos(2 * np.pi * yy / rng.uniform(2.5, 3.5)))[:, :, None]
    band = np.exp(-((xx - rng.uniform(0.2, 0.8) * w + 0.5 * yy) / (0.12 * w)) ** 2)
    img += 60 * band[:, :, None]
    bezel = int(0.05 * h)
    framed = np.full((h + 2 * bezel, w + 2 * bezel, 3), 18, np.float32)
    framed[bezel:bezel + h, bezel:bezel + w] = img
    return np.clip(framed, 0, 255).astype(np.uint8)


def still(face: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """One re-photographed frame of a `kind` ('print' or 'screen') attack."""
    rng = np.random.default_rng(seed)
    picture = printed(face, rng) if kind == "print" else screened(face, rng)
    frame = _present(picture, rng, yaw=rng.uniform(-25, 25), pitch=rng.uniform(-12, 12),
                     shift=(rng.uniform(-30, 30), rng.uniform(-20, 20)))
    return _camera(frame, rng)


def moved_flat(face: np.ndarray, kind: str, direction: str, frames: int = 8, seed: int = 0) -> list[np.ndarray]:
    """A print/screen moved like a head: tilted towards `direction` ('turn_left', 'turn_right') or
    brought closer ('closer'), one homography per frame."""
    rng = np.random.default_rng(seed)
    picture = {"print": printed, "screen": screened, "photo": lambda f, r: _fit_face(f)}[kind](face, rng)
    out = []
    for t in np.linspace(0, 1, frames):
        yaw = {"turn_left": -45 * t, "turn_right": 45 * t}.get(direction, 0.0)
        scale = 1 + 0.4 * t if direction == "closer" else 1.0
        out.append(_camera(_present(picture, rng, yaw=yaw, scale=scale, shift=(8 * t, 0)), rng))
    return out


def frozen(frame: np.ndarray, frames: int = 6) -> list[np.ndarray]:
    return [frame.copy() for _ in range(frames)]


def turning(face: np.ndarray, landmarks: np.ndarray, direction: str, frames: int = 8, seed: int = 0,
            frontal: int = 3) -> list[np.ndarray]:
    """A genuine-like head turn from a still photo placed in a 640x480 frame (`landmarks`: its five
    points in that frame): the nose region slides sideways relative to the eyes and mouth, as a
    3-D nose does when the head turns, while the whole face drifts slightly. The first `frontal`
    frames are the citizen looking straight at the camera."""
    rng = np.random.default_rng(seed)
    points = np.asarray(landmarks, np.float64)
    eye_dist = float(np.hypot(*(points[1] - points[0])))
    nose = points[2]
    sign = 1.0 if direction == "turn_left" else -1.0  # the citizen's left is the image's right
    h, w = face.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bump = np.exp(-(((xx - nose[0]) ** 2 + (yy - nose[1]) ** 2) / (2 * (0.38 * eye_dist) ** 2)))
    out = []
    for i in range(frames):
        t = 0.0 if i < frontal else (i - frontal + 1) / (frames - frontal)
        shift = sign * 0.40 * eye_dist * t  # about a 25 degree turn
        drift = rng.normal(0, 0.6, 2)
        map_x = (xx - shift * bump - drift[0]).astype(np.float32)
        map_y = (yy - drift[1]).astype(np.float32)
        frame = cv2.remap(face, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out.append(_camera(frame, rng, blur=0.5, noise=2.0, quality=90))
    return out


def camera_frame(photo: np.ndarray) -> np.ndarray:
    """A sample photo as the live camera would frame the person: cropped (not letterboxed) to
    640x480 around the upper middle, where a standing citizen's face is. Grey letterbox bars
    would look like a screen bezel to the passive model."""
    h, w = photo.shape[:2]
    scale = max(SIZE[0] / w, SIZE[1] / h)
    big = cv2.resize(photo, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    top = min(max(0, (big.shape[0] - SIZE[1]) // 4), big.shape[0] - SIZE[1])
    left = (big.shape[1] - SIZE[0]) // 2
    return np.ascontiguousarray(big[top:top + SIZE[1], left:left + SIZE[0]])


def genuine(photo: np.ndarray, seed: int = 0) -> np.ndarray:
    """A genuine camera frame of the person: `camera_frame` with a little exposure change,
    sensor noise and JPEG (seed 0: no exposure change)."""
    rng = np.random.default_rng(seed)
    frame = camera_frame(photo).astype(np.float32)
    if seed:
        frame = frame * rng.uniform(0.85, 1.15) + rng.uniform(-10, 10)
    return _camera(np.clip(frame, 0, 255).astype(np.uint8), rng, blur=0.4, noise=2.0, quality=90)
