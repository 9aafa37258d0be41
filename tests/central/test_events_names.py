"""The events page names every event the demo device sends (the face check, the QR scans, the
kiosk sessions were shown as raw `verified`, `code_scanned`, … and were missing from the type
filter), and shows the score of a counter rating."""

from __future__ import annotations

from .conftest import wait_until


def test_events_page_names_face_qr_kiosk_events_and_offers_them_in_the_filter(central_app, devices):
    office = central_app()
    device = devices("hn", "kiosk-01")
    device.event("vision", "verified", decision="accept", reason="match", dossier="X")
    device.event("qr", "code_scanned", kind="procedure_url", code="1.001193")
    device.event("kiosk", "session_ended", outcome="cancelled", seconds=5.2)
    device.event("pager", "rating", counter="2", queue="ho-tich", score=4, ticket="A017")
    wait_until(lambda: len(office.get("/api/events?site=hn&device=kiosk-01")) == 4, what="4 events stored")
    _, page = office.get("/events?site=hn", raw=True)
    text = page.decode()
    for name in ("Xác minh khuôn mặt", "Quét mã QR", "Kết thúc phiên nhận kết quả"):
        assert name in text
        assert text.count(name) >= 2, name           # in the table and as a choice of the type filter
    assert ">verified<" not in text and ">code_scanned<" not in text
    assert "<small>Điểm</small> 4</span>" in text                 # the rating's score, not just its ticket
