"""Every screen in a real Chromium against the kiosk service with Fake peers (the journey against
the real locker and vision services is in test_night_pickup.py)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest

from edge.kiosk.service import KioskService
from edge.testing import FakeClock
from kiosk_harness import at_step, served_kiosk, shot, shows
from kiosk_fakes import FakeLocker, FakePager, FakeQr, FakeVision

pytestmark = pytest.mark.browser

CODE = "000.00.01.H29-240115-0001"
PROCEDURE = "1.001193"


@pytest.fixture
def clock():
    """The kiosk's time: a test moves it past the thank-you screen instead of waiting."""
    return FakeClock(time.time())


@pytest.fixture
def kiosk(loop_thread, store, tmp_path, clock):
    """A KioskService on a free port with Fake peers, on `clock`; yields (service, peers)."""
    def make_peers():
        vision = FakeVision(enrolled=[CODE], decisions=[])
        vision.gate = asyncio.Event()
        return {"locker": FakeLocker({CODE: {"status": "waiting", "compartment": 7, "pin": "4321"}}),
                "vision": vision,
                "qr": FakeQr({PROCEDURE: {"code": PROCEDURE, "name": "Đăng ký khai sinh", "name_en": "Birth registration",
                                          "queue_service": "general", "papers": ["Tờ khai", "Giấy chứng sinh"],
                                          "fee": "Miễn phí", "processing_days": 0}}),
                "pager": FakePager()}

    with served_kiosk(loop_thread, store, tmp_path, make_peers, clock=clock, face_pause_s=0.0, thanks_s=2.0) as served:
        yield served


def test_face_journey_in_the_browser(kiosk, clock, page, loop_thread, tmp_path):
    svc, peers = kiosk
    page.goto(svc.url + "/kiosk")
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text("#step-start button") == "Nhận kết quả"
    shot(page, tmp_path, "fakes-1-start")
    page.click("#start")
    at_step(page, "code")
    page.fill("#code", CODE)
    page.press("#code", "Enter")  # what a USB QR scanner does after the payload
    at_step(page, "face")
    shot(page, tmp_path, "fakes-2-face")
    peers["vision"].decisions = ["accept"]
    loop_thread.loop.call_soon_threadsafe(peers["vision"].gate.set)
    at_step(page, "open")
    assert page.inner_text("#open-title") == "Ngăn số 7 đang mở"
    assert page.locator(".locker div.open").all_inner_texts() == ["7"]
    shot(page, tmp_path, "fakes-3-open")
    assert [(o[1], o[2]) for o in peers["locker"].opened] == [(7, "face")]
    loop_thread.loop.call_soon_threadsafe(peers["locker"].door_closed.set)
    at_step(page, "thanks")
    shot(page, tmp_path, "fakes-4-thanks")
    clock.advance(svc.flow.limits.thanks_s)  # the thank-you screen's time is up
    at_step(page, "start", timeout=15_000)  # back to the start by itself


def test_pin_fallback_english_toggle_and_kind_message(kiosk, clock, page, loop_thread, tmp_path):
    svc, peers = kiosk
    page.goto(svc.url + "/kiosk")
    page.wait_for_selector("body[data-ready='1']")
    page.click("#lang")
    shows(page, "document.querySelector('#start').textContent === 'Get my result'")
    page.click("#start")
    at_step(page, "code")
    page.fill("#code", "000.00.01.H29-240115-0999")
    page.click("#code-submit")
    shows(page, "document.querySelector('#code-notice').textContent.includes('You have 2 tries left')")
    shot(page, tmp_path, "fakes-wrong-code")
    page.fill("#code", CODE)
    page.click("#code-submit")
    at_step(page, "face")
    page.click("#use-pin")
    at_step(page, "pin")
    for key in "4320":
        page.click(f"#keypad button[data-key='{key}']")
    page.click("#pin-submit")
    shows(page, "document.querySelector('#pin-notice').textContent.startsWith('Wrong PIN')")
    assert peers["locker"].opened == []
    page.fill("#pin", "4321")
    page.click("#pin-submit")
    at_step(page, "open")
    assert page.inner_text("#open-title") == "Compartment 7 is open"
    loop_thread.loop.call_soon_threadsafe(peers["locker"].door_closed.set)
    at_step(page, "thanks")
    # the same receipt again: already collected, said kindly, nothing opens
    clock.advance(svc.flow.limits.thanks_s)
    at_step(page, "start", timeout=15_000)
    page.click("#start")
    at_step(page, "code")
    page.fill("#code", CODE)
    page.click("#code-submit")
    at_step(page, "message")
    assert "đã được nhận" in page.inner_text("#message")  # language is back to Vietnamese for a new citizen
    shot(page, tmp_path, "fakes-collected")
    assert len(peers["locker"].opened) == 1


def test_reception_counter_loading_and_status_pages(kiosk, page, tmp_path):
    svc, peers = kiosk
    page.goto(svc.url + "/reception")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#scan", f"https://dichvucong.gov.vn/p/home/dvc-chi-tiet-thu-tuc-hanh-chinh.html?ma_thu_tuc={PROCEDURE}")
    page.press("#scan", "Enter")
    page.wait_for_selector("#procedure:not([hidden])")
    assert page.inner_text("#proc-name") == "Đăng ký khai sinh"
    assert page.locator("#proc-papers li").all_inner_texts() == ["Tờ khai", "Giấy chứng sinh"]
    assert page.inner_text("#proc-time") == "Trong ngày"
    page.click("#issue")
    page.wait_for_selector("#ticket:not([hidden])")
    assert page.inner_text("#ticket-card") == "Mời nhận thẻ rung số 7"
    assert peers["pager"].issued == [("general", None, "desk")]
    shot(page, tmp_path, "fakes-reception")
    page.fill("#scan", "hello")
    page.press("#scan", "Enter")
    page.wait_for_function("document.querySelector('#scan-error').textContent.length > 0")

    page.goto(svc.url + "/counter?c=1")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("document.querySelector('#serving').textContent === 'A001'")
    page.click("#call_next")
    page.wait_for_function("document.querySelector('#answer').textContent.includes('Đã gọi A001')")
    assert peers["pager"].calls == [("call_next", "1")]

    page.goto(svc.url + "/display")
    page.wait_for_selector("body[data-ready='1']")

    page.goto(svc.url + "/loading")
    page.wait_for_selector("body[data-ready='1']")
    # (a wrong staff PIN, shown beside its field: test_desk_screens.py)
    page.fill("#receipt", CODE)
    page.fill("#staff_pin", "9999")
    page.fill("#pin", "2468")
    page.fill("#days", "7")
    page.click("#load")
    page.wait_for_function("document.querySelector('#answer').textContent.includes('số 3')")
    assert peers["locker"].loaded == [(CODE, None, "2468", 7)]
    assert page.input_value("#staff_pin") == ""

    page.goto(svc.url + "/status")
    page.wait_for_selector("body[data-ready='1']")
    assert "locker" in page.inner_text("#services") and "Hoạt động" in page.inner_text("#services")
    assert "Cửa ngăn để mở" in page.inner_text("#alarms") and "Ngăn 3" in page.inner_text("#alarms")
    shot(page, tmp_path, "fakes-status")


def post(url, body):
    req = urllib.request.Request(url, data=body if isinstance(body, bytes) else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_bad_requests_get_clear_answers(kiosk):
    svc, peers = kiosk
    assert post(svc.url + "/api/kiosk/code", b"{not json")[0] == 400
    status, body = post(svc.url + "/api/kiosk/code", {"session": "nope", "code": CODE})
    assert status == 409 and "out of date" in body["error"]
    status, body = post(svc.url + "/api/kiosk/code", {"session": 5, "code": CODE})
    assert status == 400 and "'session' must be text" in body["error"]
    status, body = post(svc.url + "/api/pager/open_all_doors", {})
    assert status == 400 and "unknown counter action" in body["error"]
    status, body = post(svc.url + "/api/loading", {"staff_pin": "9999", "receipt": CODE, "deadline_days": "x"})
    assert status == 400 and "deadline_days" in body["error"]
    status, body = post(svc.url + "/api/kiosk/code", {"session": "x", "code": "y" * 5000})
    assert status == 400 and "longer than" in body["error"]
    assert peers["locker"].opened == [] and peers["locker"].loaded == []


def test_the_open_page_follows_a_restarted_kiosk_service(kiosk, page, loop_thread):
    svc, peers = kiosk
    page.goto(svc.url + "/kiosk")
    page.wait_for_selector("body[data-ready='1']")
    page.click("#start")
    at_step(page, "code")
    port = int(svc.url.rsplit(":", 1)[1])

    async def restart():
        await svc.stop()  # e.g. the supervisor restarts the service after a crash
        again = KioskService(replace_ctx(svc.ctx, port))
        await again.start()
        return again
    again = loop_thread.call(restart())
    try:
        # the new service knows no session: the page's event stream reconnects and shows the start
        at_step(page, "start", timeout=15_000)
        page.click("#start")
        at_step(page, "code")
    finally:
        loop_thread.call(again.stop())


def replace_ctx(ctx, port):
    from dataclasses import replace as dc_replace
    return dc_replace(ctx, config=dc_replace(ctx.config, port=port))
