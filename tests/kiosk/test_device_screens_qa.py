"""Device screens after the QA walk of issue 19 (its follow-up list): /status says why a service
is not working, in Vietnamese or English, and fits 1024x768. Chromium against the kiosk service
with Fake peers."""

from __future__ import annotations

import pytest

from kiosk_harness import served_desk, served_kiosk, shot
from kiosk_fakes import FakeLocker, FakePager, FakeQr, FakeVision

pytestmark = pytest.mark.browser

CODE = "000.00.01.H29-240115-0001"


class DemoVision(FakeVision):
    """Vision as under `edge demo`: running, but with the liveness motion check switched off."""

    def health(self) -> str:
        return "degraded"

    def snapshot(self) -> dict:
        return {"worker": "ready", "camera": "ok", "liveness_motion": "off",
                "liveness_off": ["vision.liveness_motion = 'off': no head-turn challenge"]}


@pytest.fixture
def device(loop_thread, store, tmp_path):
    def make_peers():
        return dict(locker=FakeLocker({CODE: {"status": "waiting", "compartment": 7, "pin": "4321"}}),
                    vision=DemoVision(), qr=FakeQr({}), pager=FakePager())

    with served_kiosk(loop_thread, store, tmp_path, make_peers) as served:
        yield served


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth "
                         "&& document.documentElement.scrollHeight <= window.innerHeight")


def test_status_says_why_vision_is_degraded_in_either_language_and_fits(device, page, tmp_path):
    svc, _ = device
    page.goto(svc.url + "/status")
    page.wait_for_selector("body[data-ready='1']")
    tile = page.locator("[data-service='vision']")
    assert "Trục trặc" in tile.inner_text()
    assert "Kiểm tra người thật (liveness) đang tắt" in tile.inner_text()
    shot(page, tmp_path, "status-1024x768")
    assert fits(page), "the status page needs scrolling at 1024x768"
    from playwright.sync_api import expect
    page.click("#lang")
    # The tiles are drawn again after the English strings, from a fresh /api/status: until then the
    # Vietnamese tile (which says "liveness" too) is still there, so wait for the English words.
    expect(tile).to_contain_text("Degraded", timeout=10_000)
    expect(tile).to_contain_text("The liveness (real-person) check is off", timeout=10_000)
    assert page.inner_text("h1") == "Device status"
    shot(page, tmp_path, "status-1024x768-en")
    assert fits(page)


@pytest.fixture
def desk(loop_thread, store, tmp_path):
    """Reception as under `edge demo`: the REAL pager (JTECH simulator) and QR service, whose desk
    camera issues a ticket by itself for every procedure code it reads (action = "ticket")."""
    from edge.qr.config import QrConfig

    with served_desk(loop_thread, store, tmp_path,
                     qr=QrConfig(camera="none", action="ticket", default_queue_service="ho-tich")) as services:
        yield services


def camera_issues(loop_thread, qr, text):
    from edge.qr.synth import qr_image
    handled = loop_thread.call(qr.scan_frame(qr_image(text, module_px=6)))
    assert handled and handled[0].get("ticket"), handled
    return handled[0]["ticket"]


def test_reception_keeps_the_staff_members_result_when_the_camera_issues_a_ticket(desk, page, loop_thread, tmp_path):
    kiosk, qr = desk["kiosk"], desk["qr"]
    page.goto(kiosk.url + "/reception")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#scan", "1.001193")  # the staff member types a procedure and reads it to the citizen
    page.press("#scan", "Enter")
    page.wait_for_selector("#procedure:not([hidden])")
    first = camera_issues(loop_thread, qr, "1.000894")  # meanwhile the desk camera reads a poster
    page.wait_for_function(f"document.querySelector('#camera-tickets').textContent.includes('{first}')")
    assert page.is_visible("#procedure") and page.inner_text("#proc-name") == "Đăng ký khai sinh"
    page.click("#issue")
    page.wait_for_selector("#ticket:not([hidden])")
    own = page.inner_text("#ticket-number")
    second = camera_issues(loop_thread, qr, "https://dichvucong.gov.vn/p/home/x.html?ma_thu_tuc=1.001193")
    page.wait_for_function(f"document.querySelector('#camera-tickets').textContent.includes('{second}')")
    assert page.inner_text("#ticket-number") == own and page.is_visible("#ticket")
    assert "Đăng ký kết hôn" in page.inner_text("#camera")
    shot(page, tmp_path, "reception-1024x768")
    assert fits(page)


def test_loading_keeps_the_staff_pin_unless_it_was_wrong_and_speaks_its_own_language(device, page, tmp_path):
    svc, _ = device
    page.goto(svc.url + "/loading")
    page.wait_for_selector("body[data-ready='1']")
    # the field and its error use the same words
    assert page.inner_text("label[for=staff_pin]") == "Mã PIN cán bộ"
    # a full dossier code is readable in its field at 1024 wide
    page.fill("#receipt", "000.00.01.H29-261207-0001")
    assert page.evaluate("(() => { const i = document.querySelector('#receipt'); return i.scrollWidth <= i.clientWidth; })()"), \
        "the dossier code is cut off in its field"
    # a refusal about the phone number keeps the staff PIN typed
    page.fill("#staff_pin", "1234")
    page.fill("#phone", "123")
    page.route("**/api/loading", lambda route: route.fulfill(  # the real locker's answer to a bad phone
        status=400, content_type="application/json",
        body='{"ok": false, "error": "phone: not a Vietnamese mobile number", "code": "phone_format", "params": {}, "field": "phone"}'))
    page.click("#load")
    page.wait_for_selector("#phone-error")
    assert page.input_value("#staff_pin") == "1234"
    page.unroute("**/api/loading")
    # the browser's own English validation never speaks: the page checks the deadline itself
    page.fill("#phone", "")
    page.fill("#days", "0")
    page.click("#load")
    page.wait_for_selector("#days-error")
    assert page.inner_text("#days-error") == "Hạn nhận phải từ 1 đến 365 ngày."
    assert page.evaluate("document.querySelector('#load-form').noValidate")
    page.fill("#days", "1.5")
    page.click("#load")
    page.wait_for_function("document.querySelector('#days-error') && "
                           "document.querySelector('#days-error').textContent.includes('số ngày nguyên')")
    assert page.input_value("#staff_pin") == "1234"
    shot(page, tmp_path, "loading-1024x768")
    assert fits(page)
    # a wrong staff PIN empties the field (and only then)
    page.fill("#days", "7")
    page.fill("#staff_pin", "1111")
    page.click("#load")
    page.wait_for_selector("#staff_pin-error")
    assert page.inner_text("#staff_pin-error").startswith("Mã PIN cán bộ không đúng")
    assert page.input_value("#staff_pin") == ""
    page.click("#lang")
    page.wait_for_function("document.querySelector('label[for=staff_pin]').textContent === 'Staff PIN'")


def test_the_device_serves_a_favicon(device):
    import urllib.request
    svc, _ = device
    with urllib.request.urlopen(svc.url + "/favicon.ico", timeout=5) as answer:
        assert answer.status == 200 and answer.headers["Content-Type"].startswith("image/svg+xml")
        assert answer.read().startswith(b"<svg")


def test_the_wall_display_clock_shows_office_time_on_a_utc_machine(desk, chromium):
    from datetime import datetime, timedelta, timezone
    kiosk, pager = desk["kiosk"], desk["pager"]
    offset = pager.config.utc_offset_h  # [pager] utc_offset_h: Vietnam, +7
    context = chromium.new_context(viewport={"width": 1920, "height": 1080}, timezone_id="UTC")
    try:
        page = context.new_page()
        page.goto(kiosk.url + "/display")
        page.wait_for_selector("body[data-clock='office']")
        shown = page.inner_text("#clock")
        now = datetime.now(timezone.utc) + timedelta(hours=offset)
        expected = {(now + timedelta(minutes=d)).strftime("%H:%M") for d in (-1, 0, 1)}
        assert shown in expected, f"the display shows {shown}, the office's time is {now:%H:%M} (UTC{offset:+g})"
    finally:
        context.close()
