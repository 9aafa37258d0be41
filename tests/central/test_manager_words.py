"""What a manager reads on the dashboard (QA, issue 19): the events page translates its key fields
(decisions, reasons, queue names from the pager's snapshot), takes a day as dd/mm/yyyy, and every
page shows a bad query argument as a translated error inside the page, not a raw JSON 400."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest

from .conftest import AUTH, pinned_now, wait_until


@pytest.fixture
def office(central_app, devices):
    now = pinned_now()                  # "today" on the dashboard, whatever the hour of the run
    app = central_app(clock=lambda: now)
    desk, kiosk = devices("hn", "desk-1"), devices("hn", "kiosk-1")
    desk.state("pager", {"services": {"dat-dai": {"name": "Đất đai", "name_en": "Land", "waiting": 1},
                                      "ho-tich": {"name": "Hộ tịch", "name_en": "Civil status", "waiting": 0}},
                         "counters": {}, "cards_out": 3, "cards_free": 96})
    desk.event("pager", "ticket_issued", ticket="A001", queue="dat-dai", ts=now)
    kiosk.event("vision", "verified", decision="reject", reason="no_match", dossier="X")
    kiosk.event("locker", "door_opened", compartment=3, reason="pickup")
    kiosk.event("qr", "code_scanned", kind="unknown", reason="not a procedure, receipt, appointment or payment code")
    kiosk.event("qr", "code_scanned", kind="payment",
                reason="vietqr payment code: recognised and ignored (not an office code)")
    wait_until(lambda: app.app.consumer.stats()["stored"] == 5, what="5 events stored")
    wait_until(lambda: app.get("/api/queues"), what="pager snapshot")
    return app


def page(app, path: str) -> tuple[int, str]:
    request = urllib.request.Request(app.url + path, headers=AUTH)
    try:
        with urllib.request.urlopen(request, timeout=15) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def cells(html: str) -> str:
    """The events table's key fields as text (the raw JSON on demand is left out)."""
    return " ".join(re.findall(r'<span class="kv">(.*?)</span>', html))


def test_events_key_fields_are_in_the_managers_words(office):
    status, html = page(office, "/events")
    assert status == 200
    shown = cells(html)
    for word in ("Đất đai", "Từ chối", "Không khớp", "Công dân nhận kết quả", "Mã không nhận ra",
                 "Mã thanh toán, không phải mã của bộ phận một cửa"):
        assert word in shown, word
    for raw in ("dat-dai", "no_match", "reject", "pickup", "not a procedure", "vietqr"):
        assert raw not in shown, raw
    assert "vietqr payment code" in html                     # still there, in the raw JSON on demand
    english = cells(page(office, "/events?lang=en")[1])
    assert "Land" in english and "No match" in english and "See the raw JSON" not in english


def test_events_day_is_written_and_read_as_dd_mm_yyyy(office):
    status, html = page(office, "/events?day=07%2F12%2F2026")
    assert status == 200
    assert 'name="day" value="07/12/2026"' in html and 'type="date"' not in html
    assert page(office, "/events?day=2026-12-07")[0] == 200    # ISO still understood (links, API)


@pytest.mark.parametrize("path, words", [
    ("/queues?day=h%C3%B4m-qua", "Ngày “hôm-qua” không hợp lệ"),
    ("/events?day=31/02/2026", "Ngày “31/02/2026” không hợp lệ"),
    ("/events?limit=nhi%E1%BB%81u", "cần một số nguyên"),
    ("/queues?day=x&lang=en", "The day “x” is not valid"),
])
def test_a_bad_query_argument_is_a_translated_error_inside_the_page(office, path, words):
    status, html = page(office, path)
    assert status == 400
    assert html.lstrip().lower().startswith("<!doctype html>") and words in html
    assert '{"error"' not in html


def test_the_json_api_keeps_its_json_errors(office):
    status, body = page(office, "/api/queues?day=x")
    assert status == 400 and body.startswith('{"error"')


def test_ratings_page_labels_tickets_names_the_queue_and_says_sms_is_not_set_up(central_app, devices):
    now = pinned_now()                  # the rating on the dashboard's "today", whatever the hour
    app = central_app(clock=lambda: now)
    desk = devices("hn", "desk-1")
    desk.state("pager", {"services": {"ho-tich": {"name": "Hộ tịch", "name_en": "Civil status", "waiting": 0}},
                         "counters": {}, "cards_out": 0, "cards_free": 99})
    desk.event("pager", "rating", counter="2", queue="ho-tich", score=4, ticket="A017", ts=now)
    wait_until(lambda: app.get("/api/ratings?site=hn"), what="the counter rating stored")
    wait_until(lambda: app.get("/api/queues"), what="pager snapshot")
    assert app.get("/api/ratings?site=hn")[0]["service"] == "ho-tich"     # was None: events carry `queue`
    html = page(app, "/ratings")[1]
    summary = html[html.index('id="rating-summary"'):html.index('id="rating-latest"')]
    assert "<td>Hộ tịch</td>" in summary and "ho-tich" not in summary
    latest = html[html.index('id="rating-latest"'):]
    assert "<small>Số phiếu</small> A017" in latest
    assert "--sms" not in html and "gammu|http" not in html
    assert "Chưa thiết lập gửi tin nhắn SMS" in html and "docs/central.md" in html
    ticks = re.findall(r'class="ax" text-anchor="end">([^<]*)</text>', html)
    assert ticks and max(float(x) for x in ticks) == 5          # a /5 score's axis ends at 5


def test_todays_bar_of_the_30_day_chart_agrees_with_todays_count_while_the_rollup_lags(central_app, devices, pg):
    import psycopg

    now = pinned_now()                  # the 15 tickets and the dashboard's "today" on one day
    app = central_app(clock=lambda: now)
    desk = devices("hn", "desk-1")
    for n in range(15):
        desk.event("pager", "ticket_issued", ticket=f"A{n:03d}", queue="dat-dai", ts=now - 60 * n)
    wait_until(lambda: sum(r["issued"] for r in app.get("/api/queues?site=hn")) == 15, what="15 tickets today")
    wait_until(lambda: app.get("/api/queues/days?site=hn")[-1]["tickets"] == 15, what="roll-up")
    with psycopg.connect(pg.dsn, autocommit=True) as conn:       # the roll-up one round behind: 13 of 15
        conn.execute("UPDATE queue_daily SET issued = 13")
    today = app.get("/api/queues/days?site=hn")[-1]
    assert today["tickets"] == 15 == sum(r["issued"] for r in app.get("/api/queues?site=hn"))


@pytest.mark.parametrize("path", ["/", "/queues", "/lockers", "/events", "/commands", "/ratings", "/no-such-page"])
def test_no_page_answers_bad_arguments_with_raw_json_or_english(central_app, path):
    app = central_app()
    request = urllib.request.Request(app.url + path + "?day=x&limit=y&from=z&to=w", headers=AUTH)
    try:
        with urllib.request.urlopen(request, timeout=15) as r:
            kind, body = r.headers.get_content_type(), r.read().decode()
    except urllib.error.HTTPError as err:
        kind, body = err.headers.get_content_type(), err.read().decode()
    assert kind == "text/html" and '{"error"' not in body and "Not Found" not in body
