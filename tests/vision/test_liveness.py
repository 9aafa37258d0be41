"""Presentation-attack detection with the shipped defaults: the MiniFASNet pair, the head-turn
challenge with its flat-picture (homography) test, and what a verify answers for each.

Attacks come from `edge.vision.attackset` (prints, screens, flat pictures moved like heads,
replays, frozen frames) built from the sample faces. Which attack each layer catches was
measured first (`edge bench liveness`, docs/face.md): the passive model alone does not separate
every synthetic print or screen, so the tests assert what each layer really does.
"""

import asyncio
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.testing import until
from edge.vision import attackset
from edge.vision.antispoof import MODEL_DIR, AntiSpoof, crop_box, patch, verify_checksums
from edge.vision.motion import measure, planar_residual
from tests.vision.conftest import load_rgb

REPO = Path(__file__).resolve().parents[2]
CONSENT = {"actor": "clerk-07", "purpose": "result_collection"}
# 3-D positions (cm; x right, y down, z away from the camera) of the five landmarks of an average
# adult head: eyes, nose tip (2 cm in front of the eyes), mouth corners.
HEAD = np.array([[-3.2, 0, 0], [3.2, 0, 0], [0, 3.2, -2.0], [-2.5, 6.2, -0.6], [2.5, 6.2, -0.6]])


def project(points, yaw_deg, distance=45.0, focal=600.0):
    """Pinhole image of `points` turned by `yaw_deg` (positive: the citizen's left, image right)."""
    a = np.radians(-yaw_deg)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    centre = points.mean(axis=0)
    p = (points - centre) @ rot.T + centre + [0, 0, distance]
    return np.stack([focal * p[:, 0] / p[:, 2] + 320, focal * p[:, 1] / p[:, 2] + 240], axis=1)


@pytest.fixture(scope="module")
def antispoof():
    return AntiSpoof(threads=1)


def test_shipped_models_are_the_published_weights_with_licence_and_checksums():
    assert verify_checksums() == []
    assert "Apache License" in (MODEL_DIR / "LICENSE").read_text() and "Version 2.0" in (MODEL_DIR / "LICENSE").read_text()
    provenance = json.loads((MODEL_DIR / "PROVENANCE.json").read_text())
    assert provenance["upstream"].endswith("minivision-ai/Silent-Face-Anti-Spoofing") and len(provenance["commit"]) == 40
    pinned = {m["from"].rsplit("/", 1)[1]: m["pth_sha256"] for m in provenance["models"]}
    assert pinned["2.7_80x80_MiniFASNetV2.pth"].startswith("a5eb02e1843f19b5")
    assert pinned["4_0_0_80x80_MiniFASNetV1SE.pth"].startswith("84ee1d37d96894d5")
    for model in provenance["models"]:
        assert model["max_softmax_diff_vs_torch"] < 1e-4  # the conversion was checked against torch
        assert hashlib.sha256((MODEL_DIR / model["onnx"]).read_bytes()).hexdigest() == model["onnx_sha256"]
    # a wheel carries them: the package data names the folder
    assert '"edge.vision" = ["antispoof_models/*"]' in (REPO / "pyproject.toml").read_text()


def test_a_changed_model_file_is_reported(tmp_path):
    for name in ("SHA256SUMS", "minifasnet_v2_2.7_80x80.onnx", "minifasnet_v1se_4.0_80x80.onnx"):
        (tmp_path / name).write_bytes((MODEL_DIR / name).read_bytes())
    (tmp_path / "minifasnet_v2_2.7_80x80.onnx").write_bytes(b"not a model")
    assert verify_checksums(tmp_path) == [f"{tmp_path / 'minifasnet_v2_2.7_80x80.onnx'}: checksum differs from SHA256SUMS"]


def test_crops_follow_upstream_scaling_and_clamping():
    # centred box, room to grow: 2.7x around the centre
    assert crop_box(640, 480, (270, 190, 100, 100), 2.7) == (185, 105, 455, 375)
    # near the left edge: shifted inside the frame, same size
    assert crop_box(640, 480, (0, 190, 100, 100), 2.7) == (0, 105, 270, 375)
    # 4.0x would not fit 480 rows: the scale shrinks to (480-1)/150 and the crop is shifted in
    assert crop_box(640, 480, (245, 190, 150, 150), 4.0) == (80, 0, 559, 479)
    frame = np.zeros((480, 640, 3), np.uint8)
    assert patch(frame, (270, 190, 369, 289), 4.0).shape == (80, 80, 3)


def test_passive_model_scores_genuine_frames_live_and_catches_screens_and_prints(antispoof, embedder):
    threshold = 0.2  # VisionConfig().liveness_threshold

    def score(frame):
        face = max(embedder.detect(frame), key=lambda f: f.box[2] - f.box[0])
        return antispoof.score(frame, face.box)

    for name in ("obama.jpg", "obama3.jpg"):
        assert score(attackset.genuine(load_rgb(name))) > 0.9, name
    # measured: the model refuses every synthetic screen and print of this photo ...
    for seed in range(3):
        assert score(attackset.still(load_rgb("obama2.jpg"), "screen", seed)) < threshold
        assert score(attackset.still(load_rgb("obama2.jpg"), "print", seed)) < threshold
    # ... but not of every photo: a print of obama.jpg looks live to it. The motion check must
    # refuse that one (test_verify_refuses_attacks_the_model_misses).
    assert score(attackset.still(load_rgb("obama.jpg"), "print", 0)) > 0.5


def test_a_turning_head_leaves_the_plane_a_tilted_picture_does_not():
    head = [project(HEAD, yaw) for yaw in (0, 0, 0, 5, 10, 15, 20, 22)]
    assert measure(head, "turn_left").status == "pass"
    assert planar_residual(head[0], head[-1]) > 0.09
    flat = HEAD * [1, 1, 0]  # the same five points printed on paper
    tilted = [project(flat, yaw) for yaw in (0, 0, 0, 10, 20, 30, 40, 45)]
    assert max(planar_residual(tilted[0], t) for t in tilted) < 1e-4
    assert measure(tilted, "turn_left").status != "pass"
    # the wrong way, or a recording that turns both ways
    assert measure(head, "turn_right").status == "wrong"
    both = head + [project(HEAD, -yaw) for yaw in (10, 20)]
    assert measure(both, "turn_left").status == "wrong"
    assert measure([head[0]] * 6, "turn_left").status == "frozen"
    glance = [project(HEAD, yaw) for yaw in (0, 2, 4, 6, 8)]  # moving, but no real turn (yet)
    assert measure(glance, "turn_left").status == "not_done"


@pytest.fixture(scope="module")
def service(model_dir, tmp_path_factory):
    """A vision service with the shipped liveness defaults (camera off: the tests give frames)."""
    from edge.service import ServiceContext
    from edge.store import Store
    from edge.vision.config import VisionConfig
    from edge.vision.service import VisionService

    tmp = tmp_path_factory.mktemp("liveness")
    loop = asyncio.new_event_loop()
    store = Store(tmp / "edge.db")
    config = VisionConfig(camera="none", model_dir=str(model_dir), threads=1, max_attempts=50)
    assert config.liveness_model == "builtin" and config.liveness_motion == "require"
    vision = VisionService(ServiceContext(name="vision", site="t", device="kiosk-01", store=store, config=config,
                                          data_dir=tmp))
    loop.run_until_complete(vision.start())
    vision.run_sync = lambda coro: loop.run_until_complete(asyncio.wait_for(coro, 120))
    enrolled = vision.run_sync(vision.enrol("HS-L-1", [attackset.genuine(load_rgb("obama.jpg"), s) for s in range(3)],
                                            CONSENT))
    assert enrolled["ok"], enrolled
    try:
        yield vision
    finally:
        loop.run_until_complete(vision.stop())
        loop.close()
        store.close()


def test_a_genuine_head_turn_is_accepted_and_its_replay_refused(service, embedder):
    frame = attackset.genuine(load_rgb("obama.jpg"))
    points = max(embedder.detect(frame), key=lambda f: f.box[2] - f.box[0]).landmarks
    turning = attackset.turning(frame, points, "turn_left", frames=10, seed=1)
    result = service.run_sync(service.verify("HS-L-1", turning, challenge="turn_left"))
    assert result["decision"] == "accept", result
    assert result["liveness"]["model"] == "pass" and result["liveness"]["motion"] == "pass"
    assert result["liveness"]["verdict"] == "pass" and result["challenge"]["key"] == "turn_left"
    # the same recording played back when the kiosk asked for the other way
    replay = service.run_sync(service.verify("HS-L-1", turning, challenge="turn_right"))
    assert replay["decision"] == "reject" and replay["reason"] == "challenge"
    assert replay["liveness"]["motion"] == "wrong"
    assert replay["guidance_text"] == replay["challenge"]["vi"] == "Ông/Bà vui lòng quay mặt sang phải"
    # a poster face far behind the citizen does not make it "multiple_faces"
    with_poster = service.run_sync(service.verify("HS-L-1", [_with_background_face(f) for f in turning],
                                                  challenge="turn_left"))
    assert with_poster["decision"] == "accept", with_poster


def test_verify_refuses_attacks_the_model_misses(service):
    """A print of obama.jpg scores live to the passive model; held still it is refused as a spoof
    (its own reason and guidance, vi + en), and moved like a head it never gets accepted."""
    held_still = attackset.frozen(attackset.still(load_rgb("obama.jpg"), "print", 0))
    result = service.run_sync(service.verify("HS-L-1", held_still, challenge="turn_left"))
    assert result["score"] < 0.6  # the face matches: only liveness stops it
    assert result["decision"] == "reject" and result["reason"] == "spoof", result
    assert result["liveness"] == {**result["liveness"], "model": "pass", "motion": "frozen", "verdict": "fail"}
    assert result["guidance"] == "spoof" and "không dùng ảnh hoặc màn hình" in result["guidance_text"]
    for kind in ("print", "screen"):
        moved = attackset.moved_flat(load_rgb("obama.jpg"), kind, "turn_left", frames=10, seed=1)
        result = service.run_sync(service.verify("HS-L-1", moved, challenge="turn_left"))
        assert result["decision"] != "accept", (kind, result)
        assert result["liveness"]["motion"] in ("flat", "not_done"), (kind, result["liveness"])


def test_verify_refuses_a_screen_the_model_catches_even_when_it_moves(service):
    moved = attackset.moved_flat(load_rgb("obama2.jpg"), "screen", "turn_right", frames=8, seed=2)
    result = service.run_sync(service.verify("HS-L-1", moved, challenge="turn_right"))
    assert result["decision"] == "reject" and result["reason"] == "spoof", result
    assert result["liveness"]["model"] == "fail"


def test_a_tiny_poor_detection_far_away_is_background_a_second_person_is_not(embedder):
    from edge.vision.embed import Face
    from edge.vision.quality import Gates, check

    frame = attackset.genuine(load_rgb("obama.jpg"))
    (main,) = embedder.detect(frame)
    speck = Face(box=np.array([20, 400, 75, 455], np.float32), landmarks=main.landmarks - [250, -400],
                 quality=0.007, embedding=np.zeros(128, np.float32), score=0.72, chip=main.chip)
    reason, face = check([main, speck], Gates())
    assert reason == "ok" and face is main
    # the same small box of decent quality, or on top of the main face, may be a person: refused
    assert check([main, Face(**{**speck.__dict__, "quality": 0.2})], Gates())[0] == "multiple_faces"
    overlapping = Face(**{**speck.__dict__, "box": main.box + [10, 10, -100, -100]})
    assert check([main, overlapping], Gates())[0] == "multiple_faces"
    # a second real person in the picture
    two = embedder.detect(load_rgb("two_people.jpg"))
    assert len(two) == 2 and check(two, Gates())[0] == "multiple_faces"


def _with_background_face(frame):
    """The frame with a tiny, blurred face turned away pasted far from the citizen (a face on a
    poster behind them): MTCNN finds it, at a poor quality."""
    import cv2

    small = load_rgb("biden2.jpg")[84:413, 229:467]
    w, h = 58, round(58 * 329 / 238)
    small = cv2.resize(small, (w, h), interpolation=cv2.INTER_AREA)
    squash = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]),
                                         np.float32([[0, 0], [w * 0.6, 0], [w * 0.6, h], [0, h]]))
    small = cv2.GaussianBlur(cv2.warpPerspective(small, squash, (w, h), borderMode=cv2.BORDER_REPLICATE), (0, 0), 2.5)
    out = frame.copy()
    out[390:390 + h, 30:30 + w] = small
    return out


def test_enrolment_ignores_a_background_face_but_refuses_a_second_person(service, embedder):
    frames = [_with_background_face(attackset.genuine(load_rgb("obama.jpg"), seed)) for seed in range(3)]
    specks = [f for f in embedder.detect(frames[0]) if f.box[0] < 200]
    assert len(specks) == 1 and specks[0].box[2] - specks[0].box[0] < 80 and specks[0].quality < 0.05
    enrolled = service.run_sync(service.enrol("HS-L-3", frames, CONSENT))
    assert enrolled["ok"] and "multiple_faces" not in enrolled["rejected"], enrolled
    two = service.run_sync(service.enrol("HS-L-2", [load_rgb("two_people.jpg")] * 3, CONSENT))
    assert not two["ok"] and two["reason"] == "multiple_faces"


def test_turning_liveness_off_is_warned_about_and_reported(tmp_path, store):
    from edge.config import from_dict
    from edge.doctor import check_warnings
    from edge.service import ServiceContext
    from edge.vision.config import VisionConfig
    from edge.vision.service import VisionService

    base = {"site": "s", "device": "kiosk-01", "role": "kiosk"}
    assert from_dict({**base, "vision": {}}).warnings() == []
    off = from_dict({**base, "vision": {"liveness_model": "off", "liveness_motion": "report"}})
    assert len(off.warnings()) == 2 and all("printed photo" in w for w in off.warnings())
    assert [c.status for c in check_warnings(off)] == ["warn", "warn"]
    assert from_dict({**base, "role": "desk", "vision": {"liveness_model": "off"}}).warnings() == []
    config = tmp_path / "kiosk.toml"
    config.write_text('site = "s"\ndevice = "kiosk-01"\nrole = "kiosk"\n[vision]\nliveness_motion = "off"\n')
    out = subprocess.run([sys.executable, "-m", "edge", "config", "check", str(config)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "WARNING: vision.liveness_motion = 'off'" in out.stdout, out.stdout
    vision = VisionService(ServiceContext(name="vision", site="s", device="kiosk-01", store=store, data_dir=tmp_path,
                                          config=VisionConfig(liveness_model="off")))
    snapshot = vision.snapshot()
    assert snapshot["liveness_model"] == "off" and snapshot["liveness_off"]
    assert VisionService(ServiceContext(name="vision", site="s", device="kiosk-01", store=store, data_dir=tmp_path,
                                        config=VisionConfig())).snapshot()["liveness_off"] == []


def test_bad_challenge_setting_is_a_config_error():
    from edge.config import from_dict
    from edge.errors import ConfigError

    with pytest.raises(ConfigError, match="vision.liveness_challenges"):
        from_dict({"site": "s", "device": "kiosk-01", "role": "kiosk", "vision": {"liveness_challenges": ["smile"]}})


def test_liveness_bench_reports_the_added_cost_per_frame(model_dir):
    out = subprocess.run([sys.executable, "-m", "edge", "bench", "liveness", "--json", "--repeat", "1",
                          "--no-attacks"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    timing = json.loads(out.stdout)["timing"]
    assert timing["antispoof"]["p50_ms"] > 0 and timing["pipeline"]["p50_ms"] > 0
    assert timing["verify_compute_ms"] > timing["pipeline"]["p50_ms"]


def test_camera_verify_shows_the_prompt_and_waits_for_the_turn(tmp_path, model_dir, embedder):
    """The kiosk path: frames from the camera (a replayed folder of a head turning left). While
    the worker waits for the turn, guidance() carries the prompt; the answer names it too."""
    import cv2

    from edge.service import ServiceContext
    from edge.store import Store
    from edge.vision.config import VisionConfig
    from edge.vision.service import VisionService

    frame = attackset.genuine(load_rgb("obama.jpg"))
    points = max(embedder.detect(frame), key=lambda f: f.box[2] - f.box[0]).landmarks
    folder = tmp_path / "camera"
    folder.mkdir()
    for i, image in enumerate(attackset.turning(frame, points, "turn_left", frames=10, seed=2)):
        cv2.imwrite(str(folder / f"{i:02d}.png"), image[:, :, ::-1])
    store = Store(tmp_path / "edge.db")
    # The replay loops the ten frames, and each idle look of the worker (one per frame period while
    # no request comes) moves it on: a capture starting late in the turn sees it end and jump back
    # to frontal, a turn the other way. So the citizen is enrolled before the worker starts (same
    # model, in this process) and the verify is its first request; at 2 frames/s no idle look fits
    # before it unless the test process stalls for half a second. The challenge time is generous:
    # the capture ends at the turn (7-9 frames), however slowly a busy machine analyses them.
    vision = VisionService(ServiceContext(name="vision", site="t", device="kiosk-01", store=store, data_dir=tmp_path,
                                          config=VisionConfig(camera=f"replay:{folder}", model_dir=str(model_dir),
                                                              threads=1, fps=2.0, liveness_challenge_s=30.0)))
    face = max(embedder.embed(frame), key=lambda f: f.box[2] - f.box[0])
    templates = vision._open_templates()
    with store.transaction() as tx:
        templates.put(tx, "HS-L-9", np.stack([face.embedding] * 3), actor=CONSENT["actor"], purpose=CONSENT["purpose"],
                      now=store.clock())

    async def scenario():
        await vision.start()
        try:
            seen = []
            verify = asyncio.ensure_future(vision.verify("HS-L-9", timeout_s=1.0, challenge="turn_left"))

            def screen_then_done() -> bool:  # what the kiosk screen shows while the verify runs
                seen.append(vision.guidance())
                return verify.done()

            # a deadline: the worker loads its models first (seconds, a minute on a busy machine)
            await until(screen_then_done, timeout_s=150, what="the camera verify's answer")
            return verify.result(), seen, vision.guidance()
        finally:
            await vision.stop()

    try:
        result, seen, after = asyncio.run(scenario())
    finally:
        store.close()
    assert result["decision"] == "accept", result
    assert result["liveness"]["motion"] == "pass" and result["challenge"]["key"] == "turn_left"
    prompts = [g for g in seen if g["reason"] == "challenge"]
    assert prompts and prompts[0]["text"] == "Ông/Bà vui lòng quay mặt sang trái"
    assert prompts[0]["text_en"] == "Please turn your head to your left" and prompts[0]["challenge"]["key"] == "turn_left"
    assert after["challenge"] is None  # the prompt goes when the verify ends


def test_each_verify_picks_its_prompt_at_random(service):
    """A recording cannot know which way it will be asked to turn: over a few verifies both
    prompts come up, and a retry does not count an attempt."""
    blank = [np.full((480, 640, 3), 128, np.uint8)]
    keys = set()
    for _ in range(40):  # until both came up: usually 2 or 3 verifies
        result = service.run_sync(service.verify("HS-L-1", blank))
        assert result["decision"] == "retry" and "attempts_left" not in result
        keys.add(result["challenge"]["key"])
        if len(keys) == 2:
            break
    assert keys == {"turn_left", "turn_right"}  # a miss has probability 2 x 2^-40 (was 2 x 2^-16 in 16)
    with pytest.raises(ValueError, match="challenge must be one of"):
        service.run_sync(service.verify("HS-L-1", blank, challenge="smile"))
