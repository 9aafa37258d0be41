"""The pickup rules that keep a citizen from being trapped, against Fake peers (no browser):
camera scans, the face step's own countdown, the session's language, keypad keep-alive, and the
one dossier-code rule shared by staff loading and pickup."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from dataclasses import replace

import pytest

from edge.kiosk.config import KioskConfig
from edge.kiosk.flows import refusal_notice
from edge.kiosk.receipts import dossier_code, require_dossier_code
from edge.kiosk.service import KioskService
from edge.service import ServiceContext
from edge.testing import until
from kiosk_fakes import FakeLocker, FakeVision
from test_flows import CODE, OTHER
from test_flows import make as make_flow



def make(store, *, enrolled=(), **limits):
    """The state machine of test_flows.py (FakeLocker holding CODE and OTHER); no face consent by default."""
    return make_flow(store, enrolled=enrolled, **limits)


def test_a_camera_scan_never_starts_a_session_nor_spends_an_attempt(store):
    async def go():
        flow, locker, _, _ = make(store)
        unknown = "000.00.01.H29-240115-0999"  # someone else's receipt, left in front of the camera
        for _ in range(5):
            v = await flow.scanned(unknown)
        assert v["step"] == "start" and flow.session is None
        v = await flow.start()
        for _ in range(5):  # still in view: offered once, never submitted
            v = await flow.scanned(unknown)
        assert v["step"] == "code" and v["prefill"] == unknown and v["attempts_left"] == 3
        assert v["notice"] == "kiosk.code_scanned"
        v = await flow.submit_code(v["session"], unknown)  # the citizen confirms it: now it counts
        assert v["notice"] == "kiosk.code_wrong" and v["attempts_left"] == 2 and v["prefill"] is None
        v = await flow.scanned(unknown)  # the same code again in this session: ignored
        assert v["prefill"] is None and v["attempts_left"] == 2
        v = await flow.scanned("not a receipt")  # what is not a dossier code is not offered either
        assert v["prefill"] is None and v["attempts_left"] == 2
        v = await flow.scanned(f"https://dichvucong.gov.vn/tra-cuu?ma_ho_so={CODE}")
        assert v["prefill"] == CODE
        v = await flow.submit_code(v["session"], v["prefill"])
        assert v["step"] == "pin" and locker.opened == []
        assert (await flow.scanned(OTHER))["step"] == "pin"  # mid-journey a scan changes nothing
    asyncio.run(go())


def test_the_face_step_counts_down_then_offers_the_pin(store):
    async def go():
        flow, locker, vision, clock = make(store, enrolled=[CODE], face_step_s=30.0)
        vision.gate = asyncio.Event()  # the camera keeps answering "retry", never a decision
        v = await flow.start()
        v = await flow.submit_code(v["session"], CODE)
        assert v["step"] == "face" and v["seconds_left"] == 30.0 and v["step_seconds"] == 30.0
        clock.now += 12
        assert flow.view()["seconds_left"] == 18.0
        clock.now += 18
        await flow.tick()
        v = flow.view()
        assert v["step"] == "pin" and v["notice"] == "kiosk.pin_after_face" and v["seconds_left"] == 90.0
        assert locker.opened == []
    asyncio.run(go())


def test_the_timeout_message_keeps_the_sessions_language(store):
    async def go():
        flow, _, _, clock = make(store, session_timeout_s=60.0)
        v = await flow.start()
        flow.set_language("en")
        clock.now += 61
        await flow.tick()
        v = flow.view()
        assert (v["step"], v["message"], v["lang"]) == ("message", "msg.timeout", "en")
        assert v["seconds_left"] > 0  # "back to start in …"
        flow.set_language("en")  # pressed again while the message shows: the message is re-read, nothing more
        clock.now += 60
        await flow.tick()
        assert flow.view()["lang"] == "vi"  # the next citizen starts in the default language
    asyncio.run(go())


def test_keypad_typing_keeps_the_session_alive(store):
    async def go():
        flow, _, _, clock = make(store, session_timeout_s=60.0)
        v = await flow.start()
        for _ in range(4):  # four minutes of slow typing, a key now and then
            clock.now += 50
            v = await flow.touch(v["session"])
            assert v["step"] == "code" and v["seconds_left"] == 60.0
        clock.now += 61
        await flow.tick()
        assert flow.view()["step"] == "message"
    asyncio.run(go())


def test_a_photo_refusal_is_named_as_such():
    spoof = {"decision": "reject", "reason": "spoof", "liveness": {"verdict": "fail"}}
    assert refusal_notice(spoof, final=False) == "kiosk.face_not_live"
    assert refusal_notice(spoof, final=True) == "kiosk.pin_after_spoof"
    assert refusal_notice({"decision": "reject", "reason": "challenge"}, final=False) == "kiosk.face_challenge_failed"
    assert refusal_notice({"decision": "reject", "reason": "match_failed"}, final=False) == "kiosk.face_retry"


def test_one_dossier_code_rule_for_loading_and_pickup(store, tmp_path):
    assert dossier_code(" 000.00.01.h29-240115-0001 ") == CODE
    assert dossier_code("38.98.H29-210519-0013") == "38.98.H29-210519-0013"
    assert dossier_code(f"https://dichvucong.gov.vn/tra-cuu?ma_ho_so={CODE}") == CODE
    for bad in ("DEMO-0001", "000.00.01.H29-261399-0001", "1.001193", "", "x" * 2000):
        assert dossier_code(bad) is None, bad
    with pytest.raises(ValueError, match="is not a dossier code: expected .* 000.00.01.H29-261207-0001"):
        require_dossier_code("DEMO-0001")

    locker = FakeLocker()
    ctx = ServiceContext(name="kiosk", site="s1", device="kiosk-01", store=store,
                         config=replace(KioskConfig(), port=0), data_dir=tmp_path, peers={"locker": locker})
    svc = KioskService(ctx)

    def post(body):
        request = urllib.request.Request(svc.url + "/api/loading", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    async def go():
        await svc.start()
        try:
            status, answer = await asyncio.to_thread(post, {"staff_pin": "9999", "receipt": "DEMO-0001"})
            assert status == 400 and "not a dossier code" in answer["error"] and locker.loaded == []
            status, answer = await asyncio.to_thread(post, {"staff_pin": "9999", "receipt": CODE.lower()})
            assert status == 200 and locker.loaded[0][0] == CODE  # loaded as the kiosk will look it up
        finally:
            await svc.stop()
    asyncio.run(go())


def test_the_camera_picture_is_only_served_at_the_face_step(store, tmp_path):
    class CameraVision(FakeVision):
        def preview(self):
            return b"\xff\xd8jpeg"

    vision = CameraVision(enrolled=[CODE])
    vision.gate = asyncio.Event()
    ctx = ServiceContext(name="kiosk", site="s1", device="kiosk-01", store=store,
                         config=replace(KioskConfig(), port=0), data_dir=tmp_path,
                         peers={"locker": FakeLocker({CODE: {"status": "waiting", "compartment": 7, "pin": "1"}}),
                                "vision": vision})
    svc = KioskService(ctx)

    def camera():
        with urllib.request.urlopen(svc.url + "/api/kiosk/camera.jpg", timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read()

    async def go():
        await svc.start()
        try:
            assert (await asyncio.to_thread(camera))[0] == 204  # nobody at the kiosk: no picture
            v = await svc.flow.start()
            assert (await asyncio.to_thread(camera))[0] == 204
            await svc.flow.submit_code(v["session"], CODE)
            await until(lambda: svc.flow.view()["step"] == "face")
            assert await asyncio.to_thread(camera) == (200, "image/jpeg", b"\xff\xd8jpeg")
            await svc.flow.cancel()
            assert (await asyncio.to_thread(camera))[0] == 204
        finally:
            await svc.stop()
    asyncio.run(go())


def test_the_liveness_prompt_of_the_vision_service_is_shown_at_the_face_step(store):
    async def go():
        prompt = {"key": "turn_right", "vi": "Ông/Bà vui lòng quay mặt sang phải",
                  "en": "Please turn your head to your right"}
        not_turned = {"decision": "retry", "reason": "challenge", "guidance": "challenge", "challenge": prompt}
        flow, locker, vision, _ = make(store, enrolled=[CODE], decisions=[not_turned])
        vision.gate = asyncio.Event()
        v = await flow.start()
        v = await flow.submit_code(v["session"], CODE)
        assert v["step"] == "face" and v["challenge"] is None
        flow.limits.face_pause_s = 30.0  # the next check waits: this answer stays on screen
        vision.gate.set()
        await until(lambda: flow.view()["challenge"] == prompt)
        v = flow.view()
        assert v["step"] == "face" and v["guidance"] == "guide.challenge" and v["attempts_left"] == 3
        assert locker.opened == []
    asyncio.run(go())


def test_the_camera_picture_never_goes_over_the_lan(store, tmp_path):
    import socket

    from edge.locker.pins import hash_pin

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
            lan_ip = probe.getsockname()[0]
        except OSError:
            lan_ip = "127.0.0.1"
    if lan_ip.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address to call from")
    ctx = ServiceContext(name="kiosk", site="s1", device="kiosk-01", store=store, data_dir=tmp_path, peers={},
                         config=replace(KioskConfig(), host="0.0.0.0", port=0, staff_pins={"an": hash_pin("2468")}))
    svc = KioskService(ctx)

    def status(host):
        port = svc.runner.addresses[0][1]
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/api/kiosk/camera.jpg", timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as err:
            return err.code

    async def go():
        await svc.start()
        try:
            assert await asyncio.to_thread(status, "127.0.0.1") == 204  # this device's screen (no face step now)
            assert await asyncio.to_thread(status, lan_ip) == 403  # another computer on the office network
        finally:
            await svc.stop()
    asyncio.run(go())
