"""The JSON API contract (design §3) and the dashboard pages, fed by simulated devices."""

from __future__ import annotations

import csv
import re
import datetime as dt
import io
import time

import pytest

from .conftest import AUTH, TZ, pinned_now, wait_until


@pytest.fixture
def fed(central_app, devices):
    """Central with a desk (4 tickets) and a kiosk (locker snapshot, an alarm), all stored."""
    now = pinned_now()
    c = central_app(clock=lambda: now)
    desk, kiosk = devices("hanoi-bd", "desk-1"), devices("hanoi-bd", "kiosk-1")
    wait_until(lambda: desk.acked and kiosk.acked, what="devices online")
    t0 = now - 3600                                        # an hour of tickets before now
    desk.event("pager", "ticket_issued", ticket="A001", queue="A", ts=t0)
    desk.event("pager", "ticket_issued", ticket="A002", queue="A", ts=t0 + 60)
    desk.event("pager", "ticket_called", ticket="A001", counter=1, ts=t0 + 300)
    desk.event("pager", "ticket_issued", ticket="A003", queue="A", ts=t0 + 400)
    desk.event("pager", "ticket_called", ticket="A002", counter=2, ts=t0 + 660)
    desk.event("pager", "ticket_served", ticket="A001", ts=t0 + 900)
    desk.event("pager", "rating", ticket="A001", rating=5, ts=t0 + 910)
    desk.event("pager", "ticket_issued", ticket="B001", queue="B", ts=t0 + 500)
    desk.event("pager", "ticket_no_show", ticket="B001", ts=t0 + 800)
    kiosk.state("locker", {"compartments": {         # the locker service's snapshot shape
        "1": {"size": "M", "state": "occupied", "door": "closed", "occupied": True},
        "2": {"size": "M", "state": "expired", "door": "closed", "occupied": True},
        "3": {"size": "S", "state": "free", "door": "open", "occupied": False},
        "4": {"size": "L", "state": "opening", "door": "closed", "occupied": True},
        "5": {"size": "L", "state": "free", "door": "closed", "occupied": False}}})
    kiosk.event("locker", "alarm", alarm="left_open", compartment=3)
    morning = dt.datetime.fromtimestamp(now, TZ).replace(hour=7, minute=30, second=0, microsecond=0)
    night = morning.timestamp() - 3600                     # 06:30: collected overnight
    kiosk.event("locker", "loaded", receipt="HS-001", compartment=1, deadline=now + 3600, ts=night - 86400)
    kiosk.event("locker", "loaded", receipt="HS-002", compartment=4, deadline=now + 5 * 86400, ts=night - 600)
    kiosk.event("locker", "loaded", receipt="HS-003", compartment=5, deadline=now + 5 * 86400, ts=night - 7200)
    kiosk.event("locker", "collected", receipt="HS-003", compartment=5, ts=night)
    wait_until(lambda: c.app.consumer.stats()["stored"] == 14, what="14 events stored")
    wait_until(lambda: c.get("/api/lockers"), what="locker snapshot stored")
    return c, desk, kiosk


def test_health_and_devices_follow_the_contract(fed):
    c, desk, kiosk = fed
    health = c.get("/api/health")
    assert health["ok"] is True and health["db"] is True and health["broker"] is True
    listed = c.get("/api/devices")
    assert [(d["site"], d["device"]) for d in listed] == [("hanoi-bd", "desk-1"), ("hanoi-bd", "kiosk-1")]
    for d in listed:
        assert set(d) == {"site", "device", "state", "last_seen", "version", "services"}
        assert d["state"] == "online" and d["version"] == "1.2.0" and d["services"] == {"pager": "ok", "locker": "ok"}
        assert abs(d["last_seen"] - time.time()) < 120


def test_events_newest_first_with_service_each_id_once(fed):
    c, desk, kiosk = fed
    got = c.get("/api/events?site=hanoi-bd&device=desk-1&limit=100")
    assert [e["id"] for e in got] == list(reversed(desk.ids))
    assert all(e["service"] == "pager" for e in got)
    assert got[-1]["type"] == "ticket_issued" and got[-1]["ticket"] == "A001" and got[-1]["seq"] == 1
    assert len(c.get("/api/events?site=hanoi-bd&device=desk-1&limit=3")) == 3
    assert c.get("/api/events?site=hanoi-bd&device=nobody") == []


def test_events_without_device_is_a_clear_400(fed):
    c, _, _ = fed
    import urllib.error
    with pytest.raises(urllib.error.HTTPError) as err:
        c.get("/api/events?site=hanoi-bd")
    assert err.value.code == 400 and b"site and device are required" in err.value.read()


def test_queue_figures_of_the_day(fed):
    c, _, _ = fed
    rows = {r["queue"]: r for r in c.get("/api/queues")}
    a, b = rows["A"], rows["B"]
    assert (a["issued"], a["waiting"], a["served"], a["no_shows"]) == (3, 1, 1, 0)
    assert a["wait_avg_s"] == pytest.approx(450) and a["service_avg_s"] == pytest.approx(600)
    assert a["rating_avg"] == 5 and a["ratings"] == 1
    assert (b["issued"], b["waiting"], b["no_shows"]) == (1, 0, 1)
    hours = c.get("/api/queues/hours")
    assert len(hours) == 24 and sum(h["tickets"] for h in hours) == 4
    wait_until(lambda: c.get("/api/queues/days")[-1]["tickets"] == 4, what="daily roll-up refreshed")
    assert len(c.get("/api/queues/days")) == 30


def test_lockers_and_alarms(fed):
    c, _, kiosk = fed
    [locker] = c.get("/api/lockers")
    assert (locker["compartments"], locker["occupied"], locker["open_doors"]) == (5, 3, 1)
    assert (locker["waiting"], locker["expiring"], locker["collected_overnight"]) == (2, 1, 1)
    [alarm] = c.get("/api/alarms")
    assert (alarm["device"], alarm["kind"], alarm["subject"]) == ("kiosk-1", "left_open", "compartment:3")
    kiosk.event("locker", "door_closed", compartment=3)
    wait_until(lambda: c.get("/api/alarms") == [], what="alarm cleared by door_closed")
    # The locker service's own form: the kind as event type with a target, cleared by alarm_cleared.
    kiosk.event("locker", "board_offline", target="board:1", error="no reply")
    wait_until(lambda: [a["subject"] for a in c.get("/api/alarms")] == ["board:1"], what="board alarm")
    kiosk.event("locker", "alarm_cleared", alarm="board_offline", target="board:1")
    wait_until(lambda: c.get("/api/alarms") == [], what="board alarm cleared")


def test_device_offline_shows_and_raises_an_alarm(central_app, devices):
    c = central_app(offline_alarm_s=0.5)
    d = devices("hue-tt", "desk-9")
    wait_until(lambda: c.get("/api/devices"), what="device listed")
    d.crash()                        # the broker publishes the will (offline)
    wait_until(lambda: c.get("/api/devices")[0]["state"] == "offline", what="device offline")
    wait_until(lambda: any(a["kind"] == "device_offline" for a in c.get("/api/alarms")), what="offline alarm")


def test_csv_export_of_a_table(fed):
    c, _, _ = fed
    response, body = c.get("/api/queues?format=csv", raw=True)
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert {r["queue"] for r in rows} == {"A", "B"} and "wait_p90_s" in rows[0]
    _, body = c.get("/api/devices?format=csv", raw=True)
    assert body.decode("utf-8-sig").splitlines()[0].startswith("site,device,state,last_seen")


def test_pages_in_vietnamese_with_english_toggle(fed):
    c, _, _ = fed
    for path in ("/", "/queues", "/lockers", "/events?site=hanoi-bd&device=desk-1"):
        response, body = c.get(path, raw=True)
        text = body.decode()
        assert response.status == 200 and 'lang="vi"' in text
        # Everything from this server: no CDN, no script or style from another host.
        assert "cdn" not in text.lower() and not re.search(r'(src|href)="(https?:)?//', text)
    _, fleet = c.get("/", raw=True)
    assert "Trực tuyến" in fleet.decode() and "desk-1" in fleet.decode()
    _, queues = c.get("/queues", raw=True)
    assert "<svg" in queues.decode() and "Số phiếu theo giờ" in queues.decode()
    response, english = c.get("/queues?lang=en", raw=True)
    assert "Tickets by hour today" in english.decode() and "lang=en" in response.headers["Set-Cookie"]
    _, cookie_page = c.get("/lockers", raw=True, headers={**AUTH, "Cookie": "lang=en"})
    assert "Results waiting" in cookie_page.decode()
