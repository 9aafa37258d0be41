"""Device screens after the QA walk of issue 19 (its follow-up list): /status says why a service
is not working, in Vietnamese or English, and fits 1024x768. Chromium against the kiosk service
with Fake peers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge.kiosk.config import KioskConfig
from edge.kiosk.service import KioskService
from edge.service import ServiceContext
from kiosk_harness import Served, shot
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
    peers: dict = {}

    async def build():
        peers.update(locker=FakeLocker({CODE: {"status": "waiting", "compartment": 7, "pin": "4321"}}),
                     vision=DemoVision(), qr=FakeQr({}), pager=FakePager())
        ctx = ServiceContext(name="kiosk", site="s1", device="kiosk-01", store=store,
                             config=replace(KioskConfig(), port=0), data_dir=tmp_path, peers=peers)
        svc = KioskService(ctx)
        peers["kiosk"] = svc
        served = Served(loop_thread, [svc])
        await served.start()
        return svc, served

    svc, served = loop_thread.call(build())
    try:
        yield svc, peers
    finally:
        loop_thread.call(served.stop())


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
    page.click("#lang")
    page.wait_for_function("document.documentElement.lang === 'en' && "
                           "document.querySelector(\"[data-service='vision']\").innerText.includes('liveness')")
    text = tile.inner_text()
    assert "Degraded" in text and "The liveness (real-person) check is off" in text
    assert page.inner_text("h1") == "Device status"
    shot(page, tmp_path, "status-1024x768-en")
    assert fits(page)
