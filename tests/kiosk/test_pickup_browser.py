"""A pickup that cannot trap a citizen, in Chromium against the kiosk service with Fake peers:
refusals empty the field and say the tries left, the code is typed on the on-screen keypad, a
receipt left in front of the camera spends no attempt, every step counts down, the face step
shows the mirrored camera picture and the liveness prompt, and a photo held up is named as such.
Screenshots of each new step go to tmp_path (and to $EDGE_SCREENSHOT_DIR, how docs/screenshots/
was made)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import cv2
import pytest

from edge.testing import FakeClock
from kiosk_fakes import FakeLocker, FakeVision
from kiosk_harness import at_step, served_kiosk, shot, shows

pytestmark = pytest.mark.browser

CODE = "000.00.01.H29-261207-0001"   # face consent and a PIN
PIN_ONLY = "000.A0.01.H26-261207-0042"  # no face consent: straight to the PIN
LEFT_IN_VIEW = "000.00.01.H29-261207-0777"  # someone else's receipt, left on the kiosk
PIN, PIN_ONLY_PIN = "4321", "8642"
FACES = Path(__file__).resolve().parents[1] / "data" / "faces"


class CameraVision(FakeVision):
    """FakeVision with a camera picture and a liveness prompt, as the real vision service gives."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        image = cv2.imread(str(FACES / "obama.jpg"))
        self.jpeg = cv2.imencode(".jpg", cv2.resize(image[:384], (320, 240)))[1].tobytes()  # 4:3, as a camera
        self.live = "ok"  # a face in view: "hold still"
        self.challenge = {"key": "turn_left", "vi": "Ông/Bà vui lòng quay mặt sang trái",
                          "en": "Please turn your head to your left"}

    def preview(self):
        return self.jpeg

    def guidance(self):
        return {"reason": self.live, "text": "", "text_en": "", "challenge": self.challenge}


class AnsweredVision(CameraVision):
    """Each verify() waits for the answer the test gives next with `answer(loop_thread, decision)`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.answers: asyncio.Queue = asyncio.Queue()

    async def verify(self, dossier, frames_rgb=None, timeout_s=2.0):
        self.calls += 1
        return await self.answers.get()

    def answer(self, loop_thread, decision: dict) -> None:
        loop_thread.loop.call_soon_threadsafe(self.answers.put_nowait, dict(decision))


def _kiosk(loop_thread, store, tmp_path, vision_class=CameraVision, clock=None):
    """The kiosk with Fake peers, on `clock` (default: a FakeClock nobody moves, so no countdown of
    the journey, such as the face step's 45 s, runs out while a busy machine runs the test)."""
    clock = clock or FakeClock(time.time())

    def make_peers():
        vision = vision_class(enrolled=[CODE], decisions=[])
        vision.gate = asyncio.Event()
        return {"locker": FakeLocker({CODE: {"status": "waiting", "compartment": 5, "pin": PIN},
                                      PIN_ONLY: {"status": "waiting", "compartment": 2, "pin": PIN_ONLY_PIN}}),
                "vision": vision}

    return served_kiosk(loop_thread, store, tmp_path, make_peers, clock=clock, face_pause_s=0.0, thanks_s=3.0)


@pytest.fixture
def kiosk(loop_thread, store, tmp_path):
    with _kiosk(loop_thread, store, tmp_path) as served:
        yield served


@pytest.fixture
def kiosk_answered(loop_thread, store, tmp_path):
    """The kiosk with a vision service that answers each face check when the test says."""
    with _kiosk(loop_thread, store, tmp_path, vision_class=AnsweredVision) as served:
        yield served


@pytest.fixture
def clock():
    return FakeClock(time.time())


@pytest.fixture
def kiosk_on_a_clock(loop_thread, store, tmp_path, clock):
    """The kiosk reading the time from `clock`: a test moves it past a timeout instead of waiting."""
    with _kiosk(loop_thread, store, tmp_path, clock=clock) as served:
        yield served


def open_kiosk(page, svc):
    page.goto(svc.url + "/kiosk")
    page.wait_for_selector("body[data-ready='1']")


def start(page):
    page.click("#start")
    at_step(page, "code")


def keypad(page, text, pad="#codepad"):
    for key in text:
        page.click(f"{pad} button[data-key='{key}']")


def test_wrong_pin_then_right_pin_opens(kiosk, page, tmp_path):
    svc, peers = kiosk
    open_kiosk(page, svc)
    start(page)
    page.keyboard.type(PIN_ONLY)  # a USB scanner types the code and presses Enter
    page.keyboard.press("Enter")
    at_step(page, "pin")
    keypad(page, "1111", "#keypad")
    page.click("#keypad button[data-key='✓']")
    shows(page, "document.querySelector('#pin-notice').textContent.includes('còn 2 lần thử')")
    # The refused digits are gone: the right PIN typed next is the right PIN, not "1111" + it.
    assert page.input_value("#pin") == ""
    assert page.evaluate("document.activeElement.id") == "pin"
    assert page.inner_text("#pin-notice") == "Mã PIN không đúng. Ông/Bà còn 2 lần thử."
    shot(page, tmp_path, "pickup-pin-wrong")
    keypad(page, PIN_ONLY_PIN, "#keypad")
    page.click("#keypad button[data-key='✓']")
    at_step(page, "open")
    assert page.locator(".locker div.open").all_inner_texts() == ["2"]
    assert [(o[0], o[2]) for o in peers["locker"].opened] == [(PIN_ONLY, "pin")]


def test_a_code_typed_on_the_keypad_is_formatted_as_typed(kiosk, page, tmp_path):
    svc, peers = kiosk
    open_kiosk(page, svc)
    start(page)
    # Only the characters: the dots and dashes of 000.00.01.H29-261207-0001 come by themselves.
    keypad(page, "0000001H29")
    assert page.input_value("#code") == "000.00.01.H29-"
    keypad(page, "2612070001")
    assert page.input_value("#code") == CODE
    shot(page, tmp_path, "pickup-code-keypad")
    keypad(page, "⌫")
    keypad(page, "9")
    assert page.input_value("#code") == CODE[:-1] + "9"
    page.click("#code-submit")
    shows(page, "document.querySelector('#code-notice').textContent.includes('Không tìm thấy')")
    assert page.inner_text("#code-notice").endswith("Ông/Bà còn 2 lần thử.")
    assert page.input_value("#code") == ""  # refused: emptied for the next try
    # A shortened code with a letter in the agency part: typed separators are kept.
    keypad(page, "123")
    page.click("#codepad button[data-key='clear']")  # "Xóa hết"
    assert page.input_value("#code") == ""
    keypad(page, "000.A0.01H26261207")
    assert page.input_value("#code") == "000.A0.01.H26-261207-"
    keypad(page, "0042")
    page.click("#code-submit")
    at_step(page, "pin")


def test_a_code_left_in_view_of_the_camera_spends_no_attempt(kiosk, page, loop_thread, tmp_path):
    svc, peers = kiosk
    open_kiosk(page, svc)
    # The receipt lies in front of the camera before anyone comes: the kiosk stays at the start.
    for _ in range(3):
        loop_thread.call(svc._scanned({"kind": "receipt", "code": LEFT_IN_VIEW}))
    assert svc.flow.view()["step"] == "start" and svc.flow.session is None
    start(page)
    # Still in view (the demo camera shows its receipt every 30 s): offered once, never submitted.
    for _ in range(5):
        loop_thread.call(svc._scanned({"kind": "receipt", "code": LEFT_IN_VIEW}))
    page.wait_for_function(f"document.querySelector('#code').value === '{LEFT_IN_VIEW}'")
    assert "Đã đọc mã QR" in page.inner_text("#code-notice")
    view = svc.flow.view()
    assert view["step"] == "code" and view["attempts_left"] == 3
    shot(page, tmp_path, "pickup-code-scanned")
    # The citizen types their own code over it (no need to delete it first); the stale code, read
    # again, changes nothing.
    keypad(page, "0000001H292612070001")
    loop_thread.call(svc._scanned({"kind": "receipt", "code": LEFT_IN_VIEW}))
    assert page.input_value("#code") == CODE
    page.click("#code-submit")
    at_step(page, "face")
    assert peers["locker"].opened == []


def test_face_step_shows_the_mirrored_camera_the_prompt_and_a_countdown(kiosk, page, loop_thread, tmp_path):
    svc, peers = kiosk
    open_kiosk(page, svc)
    start(page)
    assert "giây" in page.inner_text("#countdown")  # the code step counts down too
    keypad(page, "0000001H292612070001")
    page.click("#code-submit")
    at_step(page, "face")
    page.wait_for_function("document.querySelector('#camera').naturalWidth > 0")  # the live picture
    assert page.evaluate("getComputedStyle(document.querySelector('#camera')).transform") == "matrix(-1, 0, 0, 1, 0, 0)"
    page.wait_for_function("document.querySelector('#challenge').textContent.includes('quay mặt sang trái')")
    assert "ngăn tủ sẽ tự mở" in page.inner_text("#step-face")  # what happens next
    page.wait_for_function("/Còn \\d+ giây/.test(document.querySelector('#countdown').textContent)")
    shot(page, tmp_path, "pickup-face-camera")
    peers["vision"].decisions = ["accept"]
    loop_thread.loop.call_soon_threadsafe(peers["vision"].gate.set)
    at_step(page, "open")
    assert page.locator(".locker div.open").all_inner_texts() == ["5"]
    # The picture is served at the face step only.
    assert page.evaluate("fetch('/api/kiosk/camera.jpg').then(r => r.status)") == 204


def test_a_printed_photo_is_refused_with_its_own_message(kiosk_answered, page, loop_thread, tmp_path):
    svc, peers = kiosk_answered
    vision = peers["vision"]
    # What the vision service answers for a photo held up: a liveness refusal (reason "spoof").
    spoof = {"decision": "reject", "score": 0.3, "reason": "spoof", "guidance": "ok",
             "liveness": {"model": "fail", "motion": "fail", "verdict": "fail"}}
    open_kiosk(page, svc)
    start(page)
    keypad(page, "0000001H292612070001")
    page.click("#code-submit")
    at_step(page, "face")
    vision.answer(loop_thread, spoof)  # the next check waits for its answer: time to read this one
    page.wait_for_function("document.querySelector('#face-notice').textContent.includes('ảnh in')")
    assert "Ông/Bà còn 2 lần thử" in page.inner_text("#face-notice")
    shot(page, tmp_path, "pickup-face-photo-refused")
    # Three photos: the PIN on the receipt is offered, saying why the face was not accepted.
    vision.answer(loop_thread, spoof)
    vision.answer(loop_thread, spoof)
    at_step(page, "pin", timeout=20_000)
    assert "ảnh in hay màn hình không dùng được" in page.inner_text("#pin-notice")
    assert peers["locker"].opened == []


def test_the_language_chosen_stays_for_the_timeout_message(kiosk_on_a_clock, clock, page, tmp_path):
    svc, peers = kiosk_on_a_clock
    open_kiosk(page, svc)
    start(page)
    page.click("#lang")
    page.wait_for_function("document.querySelector('#code-submit').textContent === 'Continue'")
    page.wait_for_function("/\\d+ seconds left/.test(document.querySelector('#countdown').textContent)")
    clock.advance(svc.flow.limits.session_timeout_s + 1)  # the citizen walked away: the next tick ends it
    at_step(page, "message", timeout=15_000)
    assert page.inner_text("#message") == "The session timed out. Please start again."
    assert "Back to start in" in page.inner_text("#countdown")
    shot(page, tmp_path, "pickup-timeout-en")
