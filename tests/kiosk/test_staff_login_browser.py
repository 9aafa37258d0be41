"""The staff login in Chromium: a counter panel opened on a LAN kiosk asks for the staff PIN first
(Vietnamese, English on the toggle), then the real pager calls the next citizen."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge.kiosk.config import KioskConfig
from edge.locker.pins import hash_pin
from edge.service import ServiceContext
from kiosk_harness import Served, shot

pytestmark = pytest.mark.browser


@pytest.fixture
def lan_desk(loop_thread, store, tmp_path):
    from edge.kiosk.service import KioskService
    from edge.pager.config import CounterDef, PagerConfig, ServiceDef
    from edge.pager.service import PagerService

    peers: dict = {}

    def ctx(name, cfg):
        return ServiceContext(name=name, site="test", device="desk-01", store=store, config=cfg,
                              data_dir=tmp_path, peers=peers)

    pager_cfg = PagerConfig(port="sim", services={"ho-tich": ServiceDef(prefix="A", name="Hộ tịch")},
                            counters={"1": CounterDef(services=["ho-tich"])}, double_press_s=0)
    kiosk_cfg = replace(KioskConfig(), port=0, require_staff_login=True, staff_pins={"an": hash_pin("2468")})
    pager, kiosk = PagerService(ctx("pager", pager_cfg)), KioskService(ctx("kiosk", kiosk_cfg))
    peers.update(pager=pager, kiosk=kiosk)
    served = Served(loop_thread, [pager, kiosk])
    loop_thread.call(served.start(), timeout_s=60)
    loop_thread.call(pager.issue("ho-tich"))
    try:
        yield kiosk, pager
    finally:
        loop_thread.call(served.stop())


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
