"""VisionService end to end: real worker process, real models, real sample faces, real store."""

import asyncio
import json
import os
import signal

import numpy as np
import pytest

from edge.errors import DeviceNotReady
from edge.service import ServiceContext
from edge.store import Store
from edge.testing import FakeClock, until, wait_until
from edge.vision.config import VisionConfig
from tests.vision.conftest import FACES, load_rgb

CONSENT = {"actor": "clerk-07", "purpose": "result_collection"}


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def vision(model_dir, tmp_path_factory, loop):
    from edge.vision.service import VisionService

    tmp = tmp_path_factory.mktemp("vision")
    clock = FakeClock()
    store = Store(tmp / "edge.db", clock=clock)
    # These tests are about matching, consent and the worker: their frames are still photos, so the
    # head-turn challenge is explicitly off here (the anti-spoofing model stays on, as shipped).
    # Liveness with the defaults has its own tests: tests/vision/test_liveness.py.
    config = VisionConfig(camera=f"replay:{FACES / 'obama.jpg'}", model_dir=str(model_dir), threads=1,
                          max_attempts=3, lockout_s=600, fps=10.0, liveness_motion="off")
    ctx = ServiceContext(name="vision", site="test", device="kiosk-01", store=store, config=config,
                         data_dir=tmp, clock=clock)
    service = VisionService(ctx)
    loop.run_until_complete(service.start())
    service.clock = clock
    try:
        yield service
    finally:
        loop.run_until_complete(service.stop())
        store.close()


def run(loop, coro):
    # A deadline, not a duration: the first call and the one after the worker's restart wait for a
    # worker loading its models (the store's FakeClock never ends _wait_ready), slow on a busy machine.
    return loop.run_until_complete(asyncio.wait_for(coro, 180))


def frames(name, n=3):
    return [load_rgb(name)] * n


def outbox(store):
    return [(r["topic"], json.loads(r["payload"])) for r in store.query("SELECT topic, payload FROM outbox ORDER BY row_id")]


def test_enrol_then_verify_genuine_and_impostor(vision, loop):
    result = run(loop, vision.enrol("HS-2026-001", frames("obama.jpg"), CONSENT))
    assert result["ok"] and result["templates"] >= 1
    assert run(loop, vision.enrolled("HS-2026-001"))
    genuine = run(loop, vision.verify("HS-2026-001", frames("obama2.jpg")))
    assert genuine["decision"] == "accept" and genuine["score"] < 0.6
    assert genuine["liveness"]["model"] == "pass" and genuine["liveness"]["motion"] == "off"
    assert genuine["challenge"] is None  # no prompt when the challenge is off
    impostor = run(loop, vision.verify("HS-2026-001", frames("biden.jpg")))
    assert impostor["decision"] == "reject" and impostor["reason"] == "no_match"
    assert impostor["attempts_left"] == 2


def test_templates_are_encrypted_and_nothing_biometric_is_published(vision, loop):
    assert run(loop, vision.enrol("HS-2026-002", frames("obama2.jpg"), CONSENT))["ok"]
    row = vision.ctx.store.query("SELECT templates FROM vision_enrolments WHERE dossier = 'HS-2026-002'")[0]
    plain = vision.templates.get("HS-2026-002")
    assert plain.tobytes() not in bytes(row["templates"])  # ciphertext, not the floats
    for topic, payload in outbox(vision.ctx.store):
        assert not {"embedding", "image", "chip", "vector"} & set(payload), payload
        assert all(not isinstance(v, (list, str)) or len(v) < 100 for v in payload.values()), payload
    actions = [r["action"] for r in vision.ctx.store.query("SELECT action FROM audit")]
    assert "vision.consent" in actions and "vision.enrol" in actions


def test_enrolment_needs_consent_and_a_usable_face(vision, loop):
    with pytest.raises(ValueError, match="purpose"):
        run(loop, vision.enrol("HS-2026-003", frames("obama.jpg"), {"actor": "clerk", "purpose": "marketing"}))
    with pytest.raises(ValueError, match="actor"):
        run(loop, vision.enrol("HS-2026-003", frames("obama.jpg"), {"purpose": "result_collection"}))
    blank = [np.full((480, 640, 3), 128, np.uint8)] * 3
    result = run(loop, vision.enrol("HS-2026-003", blank, CONSENT))
    assert not result["ok"] and result["reason"] == "no_face" and result["guidance"] == "no_face"
    assert run(loop, vision.enrol("HS-2026-006", frames("obama.jpg"), CONSENT))["ok"]
    retry = run(loop, vision.verify("HS-2026-006", blank))
    assert retry["decision"] == "retry" and retry["guidance"] == "no_face" and retry["guidance_text"]
    assert not run(loop, vision.enrolled("HS-2026-003"))
    two = run(loop, vision.enrol("HS-2026-003", frames("two_people.jpg"), CONSENT))
    assert not two["ok"] and two["reason"] == "multiple_faces"


def test_bad_input_is_refused_clearly(vision, loop):
    with pytest.raises(ValueError, match="dossier"):
        run(loop, vision.verify("../etc/passwd", frames("obama.jpg")))
    with pytest.raises(ValueError, match="ID-card"):
        run(loop, vision.enrol("001203004567", frames("obama.jpg"), CONSENT))  # a CCCD number
    with pytest.raises(ValueError, match=r"frames_rgb\[0\]"):
        run(loop, vision.verify("HS-2026-001", [np.zeros((4, 4), np.float32)]))
    result = run(loop, vision.verify("NOT-ENROLLED", frames("obama.jpg")))
    assert result["decision"] == "reject" and result["reason"] == "not_enrolled"


def test_attempt_limit_locks_the_dossier(vision, loop):
    run(loop, vision.enrol("HS-2026-004", frames("obama.jpg"), CONSENT))
    for _ in range(3):
        result = run(loop, vision.verify("HS-2026-004", frames("biden.jpg")))
    assert result["decision"] == "reject" and result["attempts_left"] == 0
    locked = run(loop, vision.verify("HS-2026-004", frames("obama2.jpg")))
    assert locked["decision"] == "locked" and locked["retry_after_s"] > 0
    vision.clock.now += 601
    assert run(loop, vision.verify("HS-2026-004", frames("obama2.jpg")))["decision"] == "accept"
    events = [p["type"] for t, p in outbox(vision.ctx.store) if t == "vision/event"]
    assert "locked" in events


def test_verify_from_the_camera(vision, loop):
    """The replay camera shows one still photo (letterboxed): with the shipped liveness settings
    it is refused as a spoof, however well the face matches, and the prompt was on offer."""
    import dataclasses

    run(loop, vision.enrol("HS-2026-005", frames("obama.jpg"), CONSENT))
    shipped = vision.config
    # A still photo never passes the challenge: the capture lasts the whole challenge time, and the
    # verify needs 3 usable frames in it (two still frames already show 'frozen'). The shipped 6 s
    # gives them on a busy machine (load 30 on 2 cores: 0.6-1.6 s a frame); 1 s, the shortest
    # allowed, gave 2 there, and 4 s once gave 2 as well.
    vision.config = dataclasses.replace(shipped, liveness_motion="require", liveness_challenge_s=6.0)
    try:
        result = run(loop, vision.verify("HS-2026-005", timeout_s=1.0))
    finally:
        vision.config = shipped
    assert result["score"] < 0.6 and result["decision"] == "reject" and result["reason"] == "spoof", result
    assert result["liveness"]["motion"] == "frozen" and result["liveness"]["verdict"] == "fail"
    assert result["challenge"]["key"] in ("turn_left", "turn_right") and result["guidance_text"]
    assert vision.guidance()["challenge"] is None and vision.guidance()["text"]


def test_identify_only_among_waiting_dossiers(vision, loop):
    run(loop, vision.enrol("HS-2026-010", frames("obama.jpg"), CONSENT))
    run(loop, vision.enrol("HS-2026-011", frames("biden.jpg"), CONSENT))
    assert run(loop, vision.identify(frames("obama2.jpg")))["reason"] == "no_candidates"
    run(loop, vision.result_waiting("HS-2026-010"))
    run(loop, vision.result_waiting("HS-2026-011"))
    result = run(loop, vision.identify(frames("obama2.jpg")))
    assert result["decision"] == "accept" and result["dossier"] == "HS-2026-010"
    impostor = run(loop, vision.identify(frames("biden2.jpg")))
    assert impostor["dossier"] in (None, "HS-2026-011")
    run(loop, vision.delete("HS-2026-010", "pickup"))  # picked up: no longer a 1:N candidate
    after = run(loop, vision.identify(frames("obama2.jpg")))
    assert after["decision"] == "reject" and after["dossier"] is None
    vision._index_waiting()  # as after a restart: the index is rebuilt from the store
    assert vision.index.ids() == ["HS-2026-011"] * len(vision.templates.get("HS-2026-011"))


def test_delete_on_request_and_retention(vision, loop):
    run(loop, vision.enrol("HS-2026-020", frames("obama.jpg"), CONSENT))
    result = run(loop, vision.handle_command("delete", {"dossier": "HS-2026-020", "reason": "request"}))
    assert result == {"deleted": True}
    assert not run(loop, vision.enrolled("HS-2026-020"))
    assert run(loop, vision.delete("HS-2026-020", "pickup")) is False
    run(loop, vision.enrol("HS-2026-021", frames("obama.jpg"), CONSENT))
    vision.clock.now += 31 * 86400
    assert run(loop, vision.purge_expired()) >= 1
    assert not run(loop, vision.enrolled("HS-2026-021"))
    deletes = vision.ctx.store.query("SELECT detail FROM audit WHERE action = 'vision.delete'")
    assert any("retention" in r["detail"] for r in deletes)


def test_a_hung_worker_is_restarted(vision, loop):
    """SIGSTOP freezes the worker like a hung camera driver: the proxy kills and replaces it."""
    # a worker still loading its models is judged by the startup timeout
    wait_until(vision.worker.ready, timeout_s=120, what="the vision worker ready")
    old = vision.worker.pid
    shipped = vision.worker.heartbeat_timeout_s
    vision.worker.heartbeat_timeout_s = 0.5  # check() below runs only once the worker is frozen
    os.kill(old, signal.SIGSTOP)
    try:
        wait_until(lambda: vision.worker.check() is not None, timeout_s=20, what="the frozen worker replaced")
    finally:
        vision.worker.heartbeat_timeout_s = shipped
        try:
            os.kill(old, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert vision.worker.pid != old and vision.worker.restarts == 1
    run(loop, vision.enrol("HS-2026-030", frames("obama.jpg"), CONSENT))  # the new worker answers
    assert run(loop, vision.verify("HS-2026-030", frames("obama2.jpg")))["decision"] == "accept"


def test_missing_model_is_reported_not_hidden(tmp_path, store):
    """No converted model: the service stays up, says why, and verify falls back to 'retry'."""
    from edge.vision.service import VisionService

    config = VisionConfig(camera="none", model_dir=str(tmp_path / "empty"), threads=1)
    ctx = ServiceContext(name="vision", site="test", device="kiosk-01", store=store, config=config, data_dir=tmp_path)

    async def scenario():
        service = VisionService(ctx)
        await service.start()
        try:
            # a deadline: a spawned worker imports onnxruntime and OpenCV first, slow on a busy machine
            await until(lambda: service.worker.fatal, timeout_s=120, what="the worker's fatal error")
            with pytest.raises(DeviceNotReady, match="make setup"):
                await service.enrol("HS-1", frames("obama.jpg"), CONSENT)
            return service.health(), service.snapshot()
        finally:
            await service.stop()

    health, snapshot = asyncio.run(scenario())
    assert health == "down" and snapshot["worker"] == "failed" and "make setup" in snapshot["error"]


def test_camera_failure_degrades_and_verify_says_so(tmp_path, store, model_dir):
    from edge.vision.service import VisionService

    # the verify waits for the camera up to the challenge time: the shortest the config allows
    config = VisionConfig(camera="opencv:/dev/no-such-camera", model_dir=str(model_dir), threads=1,
                          liveness_challenge_s=1.0)
    ctx = ServiceContext(name="vision", site="test", device="kiosk-01", store=store, config=config, data_dir=tmp_path)

    async def scenario():
        service = VisionService(ctx)
        await service.start()
        try:
            assert (await service.enrol("HS-9", frames("obama.jpg"), CONSENT))["ok"]
            result = await service.verify("HS-9", timeout_s=0.5)
            return service.health(), result
        finally:
            await service.stop()

    health, result = asyncio.run(scenario())
    assert health == "degraded"
    assert result["decision"] == "retry" and result["reason"] == "camera_unavailable"
    assert "no-such-camera" in result["error"]
