"""The staff login in Chromium: a counter panel opened on a LAN kiosk asks for the staff PIN first
(Vietnamese, English on the toggle), then the real pager calls the next citizen."""

from __future__ import annotations

import pytest

from edge.locker.pins import hash_pin
from kiosk_harness import served_desk, shot

pytestmark = pytest.mark.browser


@pytest.fixture
def lan_desk(loop_thread, store, tmp_path):
    with served_desk(loop_thread, store, tmp_path,
                     kiosk={"require_staff_login": True, "staff_pins": {"an": hash_pin("2468")}}) as services:
        loop_thread.call(services["pager"].issue("ho-tich"))
        yield services["kiosk"], services["pager"]


def test_the_counter_panel_asks_for_the_staff_pin_then_calls_the_next_citizen(lan_desk, page, tmp_path):
    kiosk, pager = lan_desk
    page.goto(kiosk.url + "/counter?c=1")
    page.wait_for_selector("body[data-ready='1']")
    assert page.url.startswith(kiosk.url + "/login") and page.inner_text("h1") == "Đăng nhập cán bộ"
    page.fill("#staff", "an")
    page.fill("#pin", "1111")
    page.click("#login")
    page.wait_for_function("document.querySelector('#answer').textContent.includes('không đúng')")
    page.click("#lang")
    page.wait_for_function("document.querySelector('h1').textContent === 'Staff login'")
    assert page.inner_text("#answer") == "Wrong staff id or PIN."
    page.fill("#pin", "2468")
    shot(page, tmp_path, "staff-login")
    page.click("#login")
    page.wait_for_url(kiosk.url + "/counter?c=1")
    page.wait_for_selector("#logout")
    assert page.inner_text("#staff-who") == "an"
    page.click("#call_next")
    page.wait_for_function("document.querySelector('#serving').textContent === 'A001'")
    assert pager.view()["services"]["ho-tich"]["waiting"] == 0
    page.click("#logout")
    page.wait_for_url("**/login?next=*")
