"""Reception, counter panel and wall display in Chromium against the REAL qr service (its catalog,
its decoder on a QR image) and the REAL pager service on its JTECH pty simulator."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from edge.kiosk.config import KioskConfig
from edge.service import ServiceContext
from kiosk_harness import Served, shot
from kiosk_fakes import FakeLocker

pytestmark = pytest.mark.browser

CODE = "000.00.01.H29-240115-0001"


@pytest.fixture
def desk(loop_thread, store, tmp_path):
    from edge.kiosk.service import KioskService
    from edge.pager.config import CounterDef, PagerConfig, ServiceDef
    from edge.pager.service import PagerService
    from edge.qr.config import QrConfig
    from edge.qr.service import QrService

    peers: dict = {}

    def ctx(name, cfg):
        return ServiceContext(name=name, site="test", device="desk-01", store=store, config=cfg,
                              data_dir=tmp_path, peers=peers)

    pager_cfg = PagerConfig(port="sim", services={"ho-tich": ServiceDef(prefix="A", name="Hộ tịch", name_en="Civil status")},
                            counters={"1": CounterDef(services=["ho-tich"])}, double_press_s=0)
    services = {"qr": QrService(ctx("qr", QrConfig(camera="none", action="none"))),
                "pager": PagerService(ctx("pager", pager_cfg)),
                "kiosk": KioskService(ctx("kiosk", replace(KioskConfig(), port=0)))}

    async def build():
        peers.update(services, locker=FakeLocker({CODE: {"status": "waiting", "compartment": 4, "pin": "1357"}}))
        served = Served(loop_thread, list(services.values()))
        await served.start()
        return served

    served = loop_thread.call(build(), timeout_s=60)
    try:
        yield services
    finally:
        loop_thread.call(served.stop())


def camera_reads(loop_thread, qr, text):
    """The QR service's camera sees a printed code (a clean QR image, decoded for real)."""
    from edge.qr.synth import qr_image
    frame = qr_image(text, module_px=6)
    handled = loop_thread.call(qr.scan_frame(frame))
    assert handled and handled[0].get("code"), handled


def test_reception_shows_the_catalog_entry_and_gives_a_card_the_counter_then_calls(desk, page, loop_thread, tmp_path):
    kiosk, qr, pager = desk["kiosk"], desk["qr"], desk["pager"]
    page.goto(kiosk.url + "/reception")
    page.wait_for_selector("body[data-ready='1']")
    # the desk camera reads a procedure poster: the screen follows by itself
    camera_reads(loop_thread, qr, "https://dichvucong.gov.vn/p/home/dvc-chi-tiet-thu-tuc-hanh-chinh.html?ma_thu_tuc=1.001193")
    page.wait_for_selector("#procedure:not([hidden])")
    assert page.inner_text("#proc-name") == "Đăng ký khai sinh"
    assert "Giấy chứng sinh" in page.locator("#proc-papers li").all_inner_texts()
    assert page.inner_text("#proc-time") == "Trong ngày" and page.inner_text("#proc-service") == "Hộ tịch"
    page.select_option("#priority", "elderly")  # staff see an elderly citizen
    shot(page, tmp_path, "reception")
    page.click("#issue")
    page.wait_for_selector("#ticket:not([hidden])")
    ticket = page.inner_text("#ticket-number")
    card = int(page.inner_text("#ticket-card").rsplit(" ", 1)[1])
    assert ticket == "Số thứ tự A001" and 1 <= card <= 99
    view = pager.view()
    assert view["services"]["ho-tich"]["waiting"] == 1
    # a typed code that is not a procedure gets a clear answer
    page.fill("#scan", CODE)
    page.press("#scan", "Enter")
    page.wait_for_function("document.querySelector('#scan-error').textContent.includes('không phải mã thủ tục')")

    page.goto(kiosk.url + "/counter?c=1")
    page.wait_for_selector("body[data-ready='1']")
    page.click("#call_next")
    page.wait_for_function("document.querySelector('#serving').textContent === 'A001'")
    shot(page, tmp_path, "counter")

    async def vibrated():
        for _ in range(200):
            if card in pager.sim.vibrated:
                return True
            await asyncio.sleep(0.02)
        return False
    assert loop_thread.call(vibrated()), "the citizen's card did not vibrate on the simulator"

    page.goto(kiosk.url + "/display")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("document.querySelector('#serving').textContent.includes('A001')")
    shot(page, tmp_path, "display")


def test_receipt_read_by_the_camera_starts_the_pickup(desk, page, loop_thread):
    kiosk, qr = desk["kiosk"], desk["qr"]
    page.goto(kiosk.url + "/kiosk")
    page.wait_for_selector("body[data-ready='1']")
    camera_reads(loop_thread, qr, CODE)
    page.wait_for_selector("body[data-step='pin']")  # no face consent here: straight to the PIN
    page.fill("#pin", "1357")
    page.click("#pin-submit")
    page.wait_for_selector("body[data-step='open']")
    assert page.locator(".locker div.open").all_inner_texts() == ["4"]
