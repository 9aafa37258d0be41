"""End to end, as an office runs it: a staff member loads a result with the citizen's phone at the
kiosk's loading screen API -> the device's `locker/notify` over a real mosquitto -> `edge central`
with `--sms gammu` -> a real gammu-smsd (dummy phone) sends it; the PIN in that SMS opens the right
compartment; the citizen's `DG` text comes back in through gammu-smsd -> the rating on the
dashboard and `/api/ratings`. And the phone and PIN appear nowhere else (events, state, audit, logs)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from edge.central.sms import SmsConfig
from edge.config import from_dict
from edge.locker.pins import hash_pin
from edge.supervisor import Supervisor

from .conftest import wait_until
from .smskit import GammuSmsd, have_gammu, sentitems

pytestmark = pytest.mark.skipif(not have_gammu(), reason="gammu-smsd is not installed (make setup installs it)")

CODE = "000.00.01.H29-261207-0042"
PHONE_TYPED, PHONE = "0912 345 678", "+84912345678"
CHROMIUM = "/usr/bin/chromium"


def http(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


class Kiosk:
    """The kiosk device as `edge run` starts it (locker on its pty simulator, kiosk screens, MQTT)."""

    def __init__(self, broker_url: str, data_dir):
        self.base: str | None = None       # the kiosk's own address once it listens (port 0: no race)
        self.supervisor = Supervisor(from_dict({
            "site": "hn", "device": "kiosk-01", "role": "kiosk", "data_dir": str(data_dir),
            "broker": {"url": broker_url},
            "locker": {"driver": "kerong", "port": "sim", "rate_limit_s": 0.5, "poll_interval_s": 0.1,
                       "staff_pins": {"staff-1": hash_pin("2580")}, "sim": {"auto_close_s": 1.0},
                       "compartments": {"1": {"board": 0, "lock": 1, "size": "S"},
                                        "2": {"board": 0, "lock": 2, "size": "M"}}},
            "kiosk": {"port": 0, "face_pause_s": 0.1},
        }))
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.run = asyncio.run_coroutine_threadsafe(self.supervisor.run(), self.loop)
        wait_until(self._ready, what="the kiosk up")

    def _ready(self):
        self.base = getattr(self.supervisor.peers.get("kiosk"), "url", None)
        if self.base is None:
            return False
        try:
            return http(self.base + "/api/status")["services"].get("locker") == "ok"
        except OSError:
            return False

    def stop(self):
        self.loop.call_soon_threadsafe(self.supervisor.request_stop)
        self.run.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)


def load_on_the_screen(base: str) -> dict:
    """A staff member at the loading screen in Chromium: staff PIN, dossier, size, the citizen's phone."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 768}, locale="vi-VN")
            page.goto(base + "/loading")
            page.wait_for_selector("body[data-ready='1']")
            page.fill("#staff_pin", "2580")
            page.fill("#receipt", CODE)
            page.select_option("#size", "M")
            page.fill("#phone", PHONE_TYPED)
            page.click("#load")
            page.wait_for_function("document.querySelector('#answer').textContent.includes('091****678')")
            answer = page.inner_text("#answer")
            assert "ngăn số 2" in answer and page.input_value("#phone") == ""   # cleared for the next citizen
        finally:
            browser.close()
    return {"ok": True, "compartment": 2, "sms_to": "091****678"}


@pytest.mark.parametrize("at", ["api", pytest.param("screen", marks=pytest.mark.browser)])
def test_loading_with_a_phone_sends_the_pin_through_gammu_and_a_dg_text_lands_on_the_dashboard(
        pg, central_app, broker, tmp_path, caplog, at):
    if at == "screen" and not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    caplog.set_level(logging.INFO)
    smsd = GammuSmsd(pg.port, tmp_path / "gammu", database=pg.name).start(pg.dsn)
    office = central_app(sms=SmsConfig(poll_s=0.2))
    kiosk = Kiosk(broker.url, tmp_path / "device")
    try:
        # 1. the staff member loads the result with the citizen's mobile number
        loaded = load_on_the_screen(kiosk.base) if at == "screen" else http(
            kiosk.base + "/api/loading", {"staff_pin": "2580", "receipt": CODE, "size": "M", "phone": PHONE_TYPED})
        assert loaded["ok"] and loaded["compartment"] == 2 and loaded["sms_to"] == "091****678"

        # 2. gammu-smsd sent it (every part: central marks it sent once gammu's outbox is empty of
        #    it): the text with the PIN, to +84…, created by edge; its delivery on the dashboard
        delivery = wait_until(lambda: [d for d in office.get("/api/sms") if d["status"] == "sent"],
                              what="delivery on the dashboard")
        assert delivery[0]["receipt"] == CODE and delivery[0]["kind"] == "result_ready"
        parts = [s for s in sentitems(pg.dsn) if s["number"] == PHONE]
        assert len(parts) == delivery[0]["parts"] and {p["creator"] for p in parts} == {"edge"}
        text = "".join(p["text"] for p in parts)
        assert CODE in text and "ngăn 2" in text
        pin = re.search(r"Mã PIN: (\d{6})\.", text).group(1)

        # 3. the citizen collects with the PIN from the SMS: the right compartment opens
        locker = kiosk.supervisor.peers["locker"]
        wait_until(lambda: locker.flows.doors()[2]["door"] == "closed"
                   and locker.flows.doors()[2]["last_pulse"] < time.time() - 0.6, what="door 2 closed again")
        view = http(kiosk.base + "/api/kiosk/start", {})
        view = http(kiosk.base + "/api/kiosk/code", {"session": view["session"], "code": CODE})
        view = http(kiosk.base + "/api/kiosk/pin", {"session": view["session"], "pin": pin})
        assert view["step"] == "open" and view["compartment"] == 2

        # 4. the citizen rates by SMS from that phone; another phone is answered but not counted
        smsd.receive("+84987654321", f"DG {CODE} 1")
        smsd.receive(PHONE, f"ĐG  {CODE.lower()}  5")
        rows = wait_until(lambda: office.get("/api/ratings?site=hn"), what="the rating in /api/ratings")
        assert [(r["site"], r["receipt"], r["score"], r["channel"]) for r in rows] == [("hn", CODE, 5, "sms")]
        answers = wait_until(lambda: (a := {s["number"]: s["text"] for s in sentitems(pg.dsn)
                                            if s["id"] != parts[0]["id"] and s["part"] == 1}) and len(a) == 2 and a,
                             what="both answers sent")
        assert answers[PHONE].startswith("Cảm ơn") and "không gắn với hồ sơ" in answers["+84987654321"]
        response, page = office.get("/ratings", raw=True)
        page = page.decode()
        assert response.status == 200 and CODE in page and ("Đã gửi" in page or "Đã đến máy" in page)
        assert "Gửi qua gammu" in page
        assert office.get("/api/health")["ingest"]["sms"]["sent"] >= 1
    finally:
        kiosk.stop()
        smsd.stop()

    # 5. privacy: the phone and the PIN only ever travelled on locker/notify
    secrets = ("912345678", "912 345", pin)
    device_db = next((tmp_path / "device").rglob("*.db"))
    with sqlite3.connect(device_db) as lite:
        device_text = "\n".join(str(r) for t in ("outbox", "audit", "locker_assignments", "commands")
                                for r in lite.execute(f"SELECT * FROM {t}")
                                if t != "outbox" or r[1] != "locker/notify")
        assert not lite.execute("SELECT 1 FROM outbox WHERE topic = 'locker/notify' AND published IS NULL").fetchall()
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        central_text = "\n".join(str(r) for q in ("SELECT body FROM events", "SELECT snapshot FROM service_state",
                                                  "SELECT body FROM sms_messages", "SELECT * FROM ratings",
                                                  "SELECT detail FROM alarms") for r in conn.execute(q))
        assert conn.execute("SELECT count(*) FROM sms_messages WHERE body IS NOT NULL "
                            "AND kind = 'result_ready'").fetchone()[0] == 0   # the PIN left central's tables
    logs = "\n".join(r.getMessage() for r in caplog.records)
    logs += smsd.log_text()          # gammu-smsd at debuglevel 0 (docs/central.md) logs no text, no number
    for secret in secrets:
        alone = re.compile(rf"(?<!\d){re.escape(secret)}(?!\d)")   # a PIN, not digits inside a timestamp
        assert not alone.search(device_text), f"{secret!r} in the device's store"
        assert not alone.search(central_text), f"{secret!r} in central's events/state/ratings"
        assert not alone.search(logs), f"{secret!r} in a log line"
    assert "091****678" in device_text   # masked, so staff can still see an SMS went out


def test_edge_central_run_with_sms_gammu_creates_gammus_tables(pg, broker, central_process, tmp_path):
    from .conftest import staff_file

    office = central_process(broker.url, pg.dsn, "central-sms", [
        "--sms", "gammu", "--sms-ascii", "--sms-office", "UBND Phường 1", "--staff", staff_file(tmp_path)]).start()
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        assert conn.execute('SELECT "Version" FROM gammu').fetchone()[0] == 17
    assert office.get("/api/ratings") == []


@pytest.mark.parametrize("argv, says", [
    (["--sms", "http"], "--sms http needs --sms-http FILE"),
    (["--sms", "gammu", "--gammu-sql", "/nonexistent/pgsql.sql"], "pgsql.sql not found"),
    (["--sms", "gammu", "--sms-templates", "BAD"], "--sms-templates BAD"),
])
def test_edge_central_run_refuses_bad_sms_options_by_name(argv, says):
    import subprocess
    import sys

    nowhere = "postgresql://edge@127.0.0.1:1/edge"     # refused before any connection is tried
    run = subprocess.run([sys.executable, "-m", "edge", "central", "run", "--db", nowhere, *argv],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and says in run.stderr
