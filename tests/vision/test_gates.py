"""Quality gates (with reasons), camera sources, liveness hook, matching rules, config errors."""

import cv2
import numpy as np
import pytest

from edge.config import from_dict
from edge.errors import ConfigError, DeviceError
from edge.vision import matching
from edge.vision.camera import ReplaySource, open_source
from edge.vision.liveness import LivenessModel, motion_check
from edge.vision.quality import Gates, check, guidance, pose
from tests.vision.conftest import FACES, load_rgb


def frame_of(name, scale=1.0):
    """The sample letterboxed into 640x480, then shrunk by `scale` and pasted centred on grey."""
    from edge.vision.camera import _fit

    image = _fit(load_rgb(name), (640, 480))
    if scale == 1.0:
        return image
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 96, np.uint8)
    y, x = (480 - small.shape[0]) // 2, (640 - small.shape[1]) // 2
    frame[y:y + small.shape[0], x:x + small.shape[1]] = small
    return frame


@pytest.mark.parametrize("change, reason", [
    (lambda f: f, "ok"),
    (lambda f: (f * 0.25).astype(np.uint8), "too_dark"),
    (lambda f: np.clip(f.astype(np.int16) + 110, 0, 255).astype(np.uint8), "too_bright"),
    (lambda f: cv2.GaussianBlur(f, (0, 0), 4), "blurred"),
    (lambda f: np.full_like(f, 120), "no_face"),
])
def test_each_gate_names_its_reason(embedder, change, reason):
    faces = embedder.detect(change(frame_of("obama.jpg")))
    assert check(faces, Gates())[0] == reason
    assert guidance(reason, "vi") and guidance(reason, "en")


def test_small_face_and_two_faces(embedder):
    assert check(embedder.detect(frame_of("obama.jpg", scale=0.4)), Gates())[0] == "too_small"
    assert check(embedder.detect(frame_of("two_people.jpg")), Gates(min_face_px=40))[0] == "multiple_faces"


def test_pose_from_landmarks():
    frontal = np.array([[40, 40], [80, 40], [60, 60], [45, 80], [75, 80]], float)
    assert abs(pose(frontal).yaw) < 0.01 and abs(pose(frontal).roll_deg) < 0.01
    turned = frontal.copy()
    turned[2, 0] = 78  # nose far towards one eye: head turned
    assert pose(turned).yaw > 0.35


def test_replay_sources(tmp_path):
    image = ReplaySource(FACES / "obama.jpg", width=320, height=240)
    assert image.read().shape == (240, 320, 3)
    folder = ReplaySource(FACES)
    first, second = folder.read(), folder.read()
    assert first.shape == (480, 640, 3) and not np.array_equal(first, second)
    video_path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (640, 480))
    for _ in range(3):
        writer.write(cv2.cvtColor(first, cv2.COLOR_RGB2BGR))
    writer.release()
    video = ReplaySource(video_path)
    frames = [video.read() for _ in range(5)]  # loops past the end
    assert all(f.shape == (480, 640, 3) for f in frames)
    video.close()
    with pytest.raises(DeviceError, match="no such file"):
        ReplaySource(tmp_path / "missing.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DeviceError, match="not a readable image"):
        ReplaySource(tmp_path / "bad.jpg")
    assert open_source("none") is None


def _constant_model(path, live: float):
    import onnx
    from onnx import TensorProto, helper

    out = helper.make_tensor("scores", TensorProto.FLOAT, [1, 2], [1 - live, live])
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["unused"], keepdims=0),
         helper.make_node("Constant", [], ["scores"], value=out)],
        "fake_liveness", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 80, 80])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_liveness_model_hook_and_motion_check(tmp_path):
    chip = np.zeros((150, 150, 3), np.uint8)
    assert LivenessModel(_constant_model(tmp_path / "live.onnx", 0.9)).score(chip) == pytest.approx(0.9)
    assert LivenessModel(_constant_model(tmp_path / "spoof.onnx", 0.1)).score(chip) == pytest.approx(0.1)
    still = [[[40, 40], [80, 40], [60, 60], [45, 80], [75, 80]]] * 3
    assert motion_check(still) == "fail"
    moving = [np.array(still[0]) + i * 0.5 for i in range(3)]
    assert motion_check(moving) == "pass" and motion_check(still[:1]) == "skipped"


def test_liveness_judgement_from_frame_results():
    from edge.vision.liveness import judge

    still = [{"reason": "ok", "embedding": np.zeros(128), "landmarks": [[40, 40], [80, 40], [60, 60], [45, 80],
                                                                          [75, 80]], "live": 0.2}] * 3
    assert judge(still, None, model_on=False, threshold=0.5, motion_mode="off") == {
        "model": "absent", "motion": "off", "verdict": "pass"}
    reported = judge(still, "turn_left", model_on=False, threshold=0.5, motion_mode="report")
    assert reported["motion"] == "frozen" and reported["verdict"] == "pass"  # recorded, not enforced
    required = judge(still, "turn_left", model_on=False, threshold=0.5, motion_mode="require")
    assert required["verdict"] == "fail" and required["reason"] == "spoof"  # a replayed still picture
    assert judge(still, None, model_on=True, threshold=0.5, motion_mode="off")["model"] == "fail"
    assert judge(still, None, model_on=True, threshold=0.1, motion_mode="off")["model"] == "pass"


def _frames(*vectors):
    return [{"reason": "ok", "embedding": np.asarray(v, np.float32)} for v in vectors]


def test_verify_needs_every_frame_to_match():
    templates = np.zeros((2, 128), np.float32)
    near, far = np.full(128, 0.01), np.full(128, 0.1)  # distances 0.11 and 1.13
    assert matching.verify_decision(_frames(near, near, near), templates, threshold=0.6, needed=3)["decision"] == "accept"
    assert matching.verify_decision(_frames(near, far, near), templates, threshold=0.6, needed=3)["decision"] == "reject"
    retry = matching.verify_decision(_frames(near) + [{"reason": "blurred"}] * 2, templates, threshold=0.6, needed=3)
    assert retry["decision"] == "retry" and retry["reason"] == "blurred"


def test_identify_needs_margin_and_unanimous_votes():
    a, b = np.zeros((1, 128), np.float32), np.full((1, 128), 0.05, np.float32)  # 0.57 apart
    gallery = {"A": a, "B": b}
    probe = np.full(128, 0.005)  # 0.06 from A, 0.51 from B
    result = matching.identify_decision(_frames(probe, probe, probe), gallery, threshold=0.6, margin=0.1, needed=3)
    assert result["decision"] == "accept" and result["dossier"] == "A"
    middle = np.full(128, 0.025)  # equally near both: no margin
    result = matching.identify_decision(_frames(probe, middle, probe), gallery, threshold=0.6, margin=0.1, needed=3)
    assert result["decision"] == "reject" and result["dossier"] is None
    assert matching.identify_decision(_frames(probe), {}, threshold=0.6, margin=0.1, needed=1)["reason"] == "no_candidates"


def test_config_errors_name_the_key():
    base = {"site": "s", "device": "d", "role": "kiosk"}
    config = from_dict({**base, "vision": {"camera": "replay:tests/data/faces/obama.jpg"}})
    assert config.services["vision"].threshold == 0.6
    with pytest.raises(ConfigError) as err:
        from_dict({**base, "vision": {"camera": "webcam", "threshold": 5, "liveness_motion": "maybe", "treshold": 1}})
    text = str(err.value)
    for key in ("vision.camera", "vision.threshold", "vision.liveness_motion", "vision.treshold"):
        assert key in text
    assert "did you mean 'threshold'" in text
