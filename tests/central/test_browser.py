"""The dashboard in Debian's headless Chromium (Playwright): live offline state, screenshots.

Set EDGE_SCREENSHOT_DIR=docs/screenshots to refresh the committed pictures.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from .conftest import wait_until

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def seed(devices) -> tuple:
    """Two offices: desks with a day of tickets and 30 days of history, kiosks with lockers."""
    rng = random.Random(7)
    now = time.time()
    today = dt.datetime.fromtimestamp(now, TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    desk = devices("hanoi-badinh", "desk-1")
    desk2 = devices("hcm-quan1", "desk-1")
    kiosk = devices("hanoi-badinh", "kiosk-1")
    kiosk2 = devices("hcm-quan1", "kiosk-1")
    for back in range(29, -1, -1):
        day = today - dt.timedelta(days=back)
        if day.weekday() >= 5 and back:
            continue
        for n in range(rng.randint(8, 24) if back else 30):
            issued = day.timestamp() + 7.5 * 3600 + rng.random() * 9 * 3600
            if issued > now - 60:
                issued = now - rng.random() * 3600
            if issued < day.timestamp():
                continue
            ticket, queue = f"{'AB'[n % 2]}{n:03d}", "AB"[n % 2]
            d = desk if n % 3 else desk2
            d.event("pager", "ticket_issued", ticket=ticket, queue=queue, ts=issued)
            if back or n < 24:
                wait = rng.uniform(120, 1500)
                d.event("pager", "ticket_called", ticket=ticket, counter=1 + n % 3, ts=min(now, issued + wait))
                d.event("pager", "ticket_served", ticket=ticket, ts=min(now, issued + wait + rng.uniform(120, 600)))
    states = {1: "occupied", 2: "occupied", 5: "occupied", 7: "expired", 8: "occupied", 11: "maintenance"}
    kiosk.state("locker", {"compartments": {str(i): {"size": "M", "state": states.get(i, "free"),
                                                     "door": "open" if i == 3 else "closed",
                                                     "occupied": i in states and states[i] != "maintenance"}
                                            for i in range(1, 17)}})
    kiosk2.state("locker", {"compartments": {str(i): {"size": "S", "state": "occupied" if i < 4 else "free",
                                                      "door": "closed", "occupied": i < 4} for i in range(1, 13)}})
    for n, (who, comp, days) in enumerate([(kiosk, 1, 3), (kiosk, 2, 0.5), (kiosk, 5, 6), (kiosk, 8, 2),
                                           (kiosk2, 1, 4), (kiosk2, 2, 0.2), (kiosk2, 3, 5)]):
        who.event("locker", "loaded", receipt=f"HS-{n:04d}", compartment=comp, deadline=now + days * 86400,
                  ts=now - 86400)
    morning = today.replace(hour=6).timestamp()
    if morning < now:
        for n in range(3):
            kiosk.event("locker", "loaded", receipt=f"HS-9{n}", compartment=9 + n, deadline=now + 86400, ts=morning - 7200)
            kiosk.event("locker", "collected", receipt=f"HS-9{n}", compartment=9 + n, ts=morning + n * 300)
    kiosk.event("locker", "alarm", alarm="left_open", compartment=3)
    return desk, desk2, kiosk, kiosk2


def test_fleet_page_shows_a_device_going_offline_and_screenshots(central_app, devices, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    c = central_app(offline_alarm_s=2)
    desk, desk2, kiosk, kiosk2 = seed(devices)
    total = len(desk.ids) + len(desk2.ids) + len(kiosk.ids) + len(kiosk2.ids)
    wait_until(lambda: c.app.consumer.stats()["stored"] == total, what=f"{total} seeded events stored")
    wait_until(lambda: len(c.get("/api/lockers")) == 2, what="locker snapshots")
    wait_until(lambda: sum(d["tickets"] for d in c.get("/api/queues/days")[:-1]) > 0, what="30-day roll-up")
    shots = Path(os.environ.get("EDGE_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        page = browser.new_page(viewport={"width": 1200, "height": 860})
        page.goto(c.url + "/")
        assert page.locator('[data-state="online"]').count() == 4
        page.screenshot(path=str(shots / "central-fleet.png"), full_page=True)

        desk2.crash()                              # the demo stops: the will marks it offline
        stopped = time.monotonic()
        page.wait_for_selector('[data-state="offline"]', timeout=20_000)   # the page refreshes itself
        seen_after = time.monotonic() - stopped
        assert seen_after < 20
        assert "Mất kết nối" in page.content()
        page.wait_for_selector("text=device_offline", timeout=20_000)
        page.screenshot(path=str(shots / "central-fleet-offline.png"), full_page=True)

        page.goto(c.url + "/queues")
        assert page.locator("svg.chart").count() == 3
        page.screenshot(path=str(shots / "central-queues.png"), full_page=True)
        page.goto(c.url + "/lockers?lang=en")
        assert "Results waiting" in page.content()
        page.screenshot(path=str(shots / "central-lockers-en.png"), full_page=True)
        page.goto(c.url + "/commands?lang=vi&site=hanoi-badinh&device=kiosk-1&service=locker&type=open"
                  "&args=%7B%22compartment%22%3A%203%7D")
        assert page.locator('input[name="token"]').count() == 1
        page.screenshot(path=str(shots / "central-commands.png"), full_page=True)
        browser.close()


def test_fleet_page_shows_the_real_demo_going_offline(central_app, broker):
    """`edge demo` (every service on simulators) reports to central; when it stops, the fleet
    page, left open in the browser, shows the device offline within seconds."""
    import subprocess
    import sys

    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    c = central_app()
    demo = subprocess.Popen([sys.executable, "-m", "edge", "demo", "--seconds", "8", "--broker", broker.url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: any(d["state"] == "online" for d in c.get("/api/devices")), what="demo device online")
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync"])
            page = browser.new_page()
            page.goto(c.url + "/")
            assert page.locator('[data-state="online"]').count() == 1
            demo.wait(60)                                   # the demo stops by itself
            page.wait_for_selector('[data-state="offline"]', timeout=10_000)   # page refreshes every 3 s
            assert "Mất kết nối" in page.content()
            browser.close()
        [device] = c.get("/api/devices")
        assert device["state"] == "offline" and set(device["services"]) >= {"pager", "locker"}
        assert c.app.consumer.stats()["stored"] > 0 and c.app.consumer.stats()["rejected"] == {}
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
