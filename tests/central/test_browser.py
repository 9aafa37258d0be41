"""The dashboard in Debian's headless Chromium (Playwright): the login page, the second
confirmation of a door command, the connection banner, live offline state, and screenshots at
1280×800 and 390×844 (phone).

Set EDGE_SCREENSHOT_DIR=docs/screenshots to refresh the committed pictures.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from contextlib import closing
from pathlib import Path

import pytest

from .conftest import ADMIN_TOKEN, TZ, pinned_now, wait_until
from .webclient import login_line

pytestmark = pytest.mark.browser
DESK, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
QUEUES = {"dat-dai": ("A", "Đất đai", "Land"), "ho-tich": ("B", "Hộ tịch", "Civil status")}


def staff(tmp_path) -> str:
    path = tmp_path / "staff-browser.txt"
    path.write_text(f"{ADMIN_TOKEN} admin Test Admin\n" + login_line("lan", "482913", "operator", "Nguyễn Thị Lan")
                    + login_line("binh", "771204", "viewer", "Đỗ Văn Bình"))
    return str(path)


def sign_in(page, base_url: str, staff_id: str = "lan", pin: str = "482913", path: str = "/") -> None:
    page.goto(base_url + path)
    page.wait_for_selector('input[name="staff_id"]')            # sent to the login page first
    page.fill('input[name="staff_id"]', staff_id)
    page.fill('input[name="pin"]', pin)
    page.click('button[type="submit"]')
    page.wait_for_url(base_url + path)


class Pages:
    """Pages of the run's one Chromium (the `chromium` fixture, tests/conftest.py), each in its own
    context as browser.new_page() makes them; close() closes them all."""

    def __init__(self, chromium):
        self.chromium, self.contexts = chromium, []

    def new_page(self, **options):
        context = self.chromium.new_context(**options)
        self.contexts.append(context)
        return context.new_page()

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def seed(devices, now: float) -> tuple:
    """Two offices: desks with a day of tickets and 30 days of history, kiosks with lockers, as of
    `now` (the dashboard's pinned clock)."""
    rng = random.Random(7)
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
            queue = ("dat-dai", "ho-tich")[n % 2]
            ticket = f"{QUEUES[queue][0]}{n:03d}"
            d = desk if n % 3 else desk2
            d.event("pager", "ticket_issued", ticket=ticket, queue=queue, ts=issued)
            if back or n < 24:
                wait = rng.uniform(120, 1500)
                d.event("pager", "ticket_called", ticket=ticket, counter=1 + n % 3, ts=min(now, issued + wait))
                d.event("pager", "ticket_done", ticket=ticket, ts=min(now, issued + wait + rng.uniform(120, 600)))
    for d, free in ((desk, 7), (desk2, 61)):          # the pager bases' own snapshots
        d.state("pager", {
            "services": {key: {"prefix": p, "name": vi, "name_en": en, "waiting": 4 + i * 3,
                               "next": [f"{p}{30 + i:03d}", f"{p}{31 + i:03d}"], "estimated_wait_s": 720 + i * 300}
                         for i, (key, (p, vi, en)) in enumerate(QUEUES.items())},
            "counters": {"1": {"paused": False, "ticket": "A023", "service": "dat-dai", "card": 12, "called_at": now - 240},
                         "2": {"paused": True, "ticket": None, "service": None, "card": None, "called_at": None},
                         "3": {"paused": False, "ticket": "B022", "service": "ho-tich", "card": 40, "called_at": now - 90}},
            "cards_out": 99 - free - 2, "cards_free": free})
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


def seeded(central_app, devices, tmp_path, **kw):
    # The dashboard's "now" pinned (conftest.pinned_now): run just after midnight, "today" had
    # no tickets yet and its chart was an empty one; the day's figures never depend on the hour.
    now = pinned_now()
    c = central_app(staff_file=staff(tmp_path), clock=lambda: now, **kw)
    desk, desk2, kiosk, kiosk2 = seed(devices, now)
    total = len(desk.ids) + len(desk2.ids) + len(kiosk.ids) + len(kiosk2.ids)
    wait_until(lambda: c.app.consumer.stats()["stored"] == total, what=f"{total} seeded events stored")
    wait_until(lambda: len(c.get("/api/lockers")) == 2, what="locker snapshots")
    # The desks' pager snapshots follow their own events on their own connections: the events
    # and the kiosks' snapshots stored do not mean these are.
    wait_until(lambda: all(f'data-office="{office}"'.encode() in c.get("/queues", raw=True)[1]
                           for office in ("hanoi-badinh/desk-1", "hcm-quan1/desk-1")), what="pager snapshots")
    wait_until(lambda: sum(d["tickets"] for d in c.get("/api/queues/days")[:-1]) > 0, what="30-day roll-up")
    return c, (desk, desk2, kiosk, kiosk2)


def test_fleet_page_shows_a_device_going_offline_and_screenshots(central_app, devices, tmp_path, chromium):
    c, (desk, desk2, kiosk, kiosk2) = seeded(central_app, devices, tmp_path, offline_alarm_s=2)
    shots = Path(os.environ.get("EDGE_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with closing(Pages(chromium)) as browser:
        page = browser.new_page(viewport=DESK)
        sign_in(page, c.url)
        assert page.locator('[data-state="online"]').count() == 4
        assert page.locator('[data-alarm="cards"]').count() == 1          # hanoi's desk: 7 cards left
        page.screenshot(path=str(shots / "central-fleet.png"), full_page=True)

        desk2.crash()                              # the demo stops: the will marks it offline
        stopped = time.monotonic()
        page.wait_for_selector('[data-state="offline"]', timeout=20_000)   # the page refreshes itself
        assert time.monotonic() - stopped < 20
        assert "Mất kết nối" in page.content()
        page.wait_for_selector("text=device_offline", timeout=20_000)
        page.screenshot(path=str(shots / "central-fleet-offline.png"), full_page=True)

        page.goto(c.url + "/queues")
        assert page.locator("figure.chart svg").count() == 3
        office = page.locator('[data-office="hanoi-badinh/desk-1"]')
        assert "Đất đai" in office.inner_text() and "Tạm nghỉ" in office.inner_text()
        assert office.locator('.pager-cards [role="alert"]').count() == 1     # cards running out
        assert "dat-dai" not in page.locator("main table").last.inner_text()  # names, not keys
        assert "′" not in page.content() and "phút" in page.content()
        page.screenshot(path=str(shots / "central-queues.png"), full_page=True)
        page.click("p.sites >> text=hcm-quan1")                                  # one office only
        page.wait_for_url("**site=hcm-quan1**")
        assert page.locator("section.office").count() == 1 and page.locator("figure.chart svg").count() == 3
        page.goto(c.url + "/lockers")
        grid = page.locator('[data-locker="hanoi-badinh/kiosk-1"] li.cell')
        assert grid.count() == 16
        statuses = {grid.nth(i).get_attribute("data-status") for i in range(16)}
        assert statuses == {"free", "waiting", "overdue", "fault"}
        assert "Hạn nhận" in page.content()
        page.screenshot(path=str(shots / "central-lockers.png"), full_page=True)
        page.goto(c.url + "/lockers?lang=en")
        assert "Compartment" in page.content()
        page.goto(c.url + "/events?site=hanoi-badinh&type=loaded&lang=vi")
        rows = page.locator("table.events tbody tr")
        assert rows.count() >= 4 and all(rows.nth(i).get_attribute("data-type") == "loaded" for i in range(rows.count()))
        assert page.locator("table.events details pre").first.is_hidden()          # raw JSON on demand
        page.locator("table.events summary").first.click()
        assert page.locator("table.events details pre").first.is_visible()
        page.screenshot(path=str(shots / "central-events.png"), full_page=False)
        page.goto(c.url + "/commands?site=hanoi-badinh&device=kiosk-1&service=locker&type=open"
                  "&args=%7B%22compartment%22%3A%203%7D")
        assert page.locator('input[name="token"]').count() == 0                    # no token in any page
        page.screenshot(path=str(shots / "central-commands.png"), full_page=True)

        phone = browser.new_page(viewport=PHONE)
        sign_in(phone, c.url, path="/queues")
        header_height = phone.locator("header").bounding_box()["height"]
        assert header_height < 120, f"the header takes {header_height:.0f} px on a phone"
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width} px wide on a 390 px phone"
        phone.screenshot(path=str(shots / "central-queues-phone.png"), full_page=True)
        for path, name in (("/", "fleet"), ("/lockers", "lockers"), ("/events", "events")):
            phone.goto(c.url + path)
            assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
            phone.screenshot(path=str(shots / f"central-{name}-phone.png"), full_page=name != "events")


def test_login_page_and_the_second_confirmation_of_a_door_command(tmp_path, central_app, broker, chromium):
    from edge.security import new_key

    from .test_cmd import DEVICE, SITE, Device, write_key

    key_hex = new_key()
    device = Device(tmp_path, broker.url, bytes.fromhex(key_hex))
    try:
        write_key(tmp_path / "keys" / SITE / f"{DEVICE}.key", key_hex)
        c = central_app(staff_file=staff(tmp_path), key_dir=str(tmp_path / "keys"))
        shots = Path(os.environ.get("EDGE_SCREENSHOT_DIR") or tmp_path)
        with closing(Pages(chromium)) as browser:
            page = browser.new_page(viewport=DESK)
            page.goto(c.url + "/commands")
            page.fill('input[name="staff_id"]', "lan")
            page.fill('input[name="pin"]', "000000")
            page.click('button[type="submit"]')
            assert "Mã nhân viên hoặc PIN không đúng." in page.locator('main [role="alert"]').inner_text()
            page.screenshot(path=str(shots / "central-login.png"), full_page=False)
            page.fill('input[name="pin"]', "482913")
            page.click('button[type="submit"]')
            page.wait_for_url(c.url + "/commands")
            for name, value in (("site", SITE), ("device", DEVICE), ("service", "locker"), ("type", "open"),
                                ("args", '{"compartment": 5}')):
                page.fill(f'input[name="{name}"]', value)
            page.click("form.cmd button[type=submit]")
            page.wait_for_selector('[data-confirm="open"]')
            assert device.locker.opened == []                       # nothing moved yet
            page.screenshot(path=str(shots / "central-commands-confirm.png"), full_page=False)
            page.click("section.confirm button.danger")
            page.wait_for_selector('[data-notice="ok"]')
            assert device.locker.opened == [5]
            assert "Nguyễn Thị Lan" in page.locator("table").last.inner_text()
            page.click("header form.logout button")
            page.wait_for_selector('input[name="staff_id"]')
            page.goto(c.url + "/commands")
            assert "/login" in page.url                             # signed out for real
    finally:
        device.close()


def test_banner_when_central_stops_answering_and_back_when_it_returns(tmp_path, pg, broker, central_process, chromium):
    """Stop `edge central run` under an open dashboard: the banner within 5 s, buttons disabled;
    start it again: the banner goes by itself (the session lives in PostgreSQL, so no new login)."""
    central = central_process(broker.url, pg.dsn, "central-banner", ["--staff", staff(tmp_path)]).start()
    base = f"http://127.0.0.1:{central.port}"
    with closing(Pages(chromium)) as browser:
        page = browser.new_page(viewport=PHONE)
        sign_in(page, base, path="/events")
        banner = page.locator("#conn-banner")
        assert banner.is_hidden()
        central.kill()
        stopped = time.monotonic()
        banner.wait_for(state="visible", timeout=5_000)
        assert time.monotonic() - stopped < 5
        assert banner.inner_text() == "Mất kết nối – đang thử lại"
        assert page.locator("form.filters button").is_disabled()
        Path(os.environ.get("EDGE_SCREENSHOT_DIR") or tmp_path, "central-banner-phone.png").parent.mkdir(exist_ok=True)
        page.screenshot(path=str(Path(os.environ.get("EDGE_SCREENSHOT_DIR") or tmp_path) / "central-banner-phone.png"))
        central.start()
        banner.wait_for(state="hidden", timeout=10_000)
        assert page.locator("form.filters button").is_enabled()
        assert "/events" in page.url


def test_fleet_page_shows_the_real_demo_going_offline(central_app, broker, tmp_path, chromium):
    """`edge demo` (every service on simulators) reports to central; when it stops, the fleet
    page, left open in the browser, shows the device offline within seconds."""
    import signal
    import subprocess
    import sys

    c = central_app(staff_file=staff(tmp_path))
    # Stopped by the test once the page has shown it online (SIGTERM: the supervisor's graceful
    # stop, as its own --seconds does): a fixed run of 8 s could end, on a loaded machine, before
    # the browser had signed in and looked.
    demo = subprocess.Popen([sys.executable, "-m", "edge", "demo", "--broker", broker.url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: any(d["state"] == "online" for d in c.get("/api/devices")), what="demo device online")
        with closing(Pages(chromium)) as browser:
            page = browser.new_page()
            sign_in(page, c.url, "binh", "771204")
            assert page.locator('[data-state="online"]').count() == 1
            demo.send_signal(signal.SIGTERM)                # the demo stops
            demo.wait(60)
            # the page refreshes every few seconds: the same 20 s as for a crashed device above
            page.wait_for_selector('[data-state="offline"]', timeout=20_000)
            assert "Mất kết nối" in page.content()
        [device] = c.get("/api/devices")
        assert device["state"] == "offline" and set(device["services"]) >= {"pager", "locker"}
        assert c.app.consumer.stats()["stored"] > 0 and c.app.consumer.stats()["rejected"] == {}
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)


def test_events_in_the_managers_words_and_a_bad_day_as_a_page(central_app, devices, tmp_path, chromium):
    c, (desk, desk2, kiosk, kiosk2) = seeded(central_app, devices, tmp_path)
    kiosk.event("vision", "verified", decision="reject", reason="no_match", dossier="HS-0001")
    kiosk.event("qr", "code_scanned", kind="payment", reason="vietqr payment code: recognised and ignored")
    kiosk.event("locker", "door_opened", compartment=2, reason="pickup")
    desk.event("pager", "rating", counter="1", queue="dat-dai", score=4, ticket="A017")
    wait_until(lambda: len(c.get("/api/ratings")) == 1, what="the rating stored")
    shots = Path(os.environ.get("EDGE_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with closing(Pages(chromium)) as browser:
        page = browser.new_page(viewport=DESK)
        sign_in(page, c.url, path="/events")
        details = page.locator("table.events tbody").inner_text()
        assert "Không khớp" in details and "Mã thanh toán" in details and "Đất đai" in details
        assert "no_match" not in details and "dat-dai" not in details and "vietqr" not in details
        page.fill('input[name="day"]', "31/02/2026")
        page.click('form.filters button[type="submit"]')
        assert "không hợp lệ" in page.locator('p.notice[role="alert"]').inner_text()      # in the page, translated
        page.goto(c.url + "/events")
        page.screenshot(path=str(shots / "central-events-fields.png"), full_page=False)
        page.goto(c.url + "/ratings")
        assert "gammu" not in page.content()
        page.screenshot(path=str(shots / "central-ratings.png"), full_page=True)
        phone = browser.new_page(viewport=PHONE)
        sign_in(phone, c.url, path="/queues")
        phone.goto(c.url + "/queues?day=h%C3%B4m-qua")
        assert "hôm-qua" in phone.locator('p.notice[role="alert"]').inner_text()
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        phone.screenshot(path=str(shots / "central-error-phone.png"), full_page=False)
