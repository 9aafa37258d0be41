"""The citizens' `/danh-gia` page over HTTP (no staff login), the one-time code going out through
gammu's outbox, and `/api/ratings` + `/ratings` behind the login."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
import uuid

import psycopg
import pytest

from edge.central import sms
from edge.central.sms import SmsConfig

from .conftest import AUTH, wait_until

CODE = "000.00.01.H29-261207-0077"
PHONE = "+84912345678"


def form(url: str, fields: dict | None = None) -> tuple[int, str]:
    data = None if fields is None else urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=15) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):
        return None


def gammu_outbox_code(dsn: str) -> str:
    """The code as the modem would send it: the last text gammu-smsd has to send."""
    def code():
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute('SELECT "TextDecoded" FROM outbox WHERE "TextDecoded" LIKE %s ORDER BY "ID" DESC '
                               'LIMIT 1', ("Mã xác nhận%",)).fetchone()
        return row and re.search(r": (\d{6}) ", row[0]).group(1)
    return wait_until(code, what="the code in gammu's outbox")


@pytest.fixture
def office(central_app, pg):
    c = central_app(sms=SmsConfig(poll_s=0.2))      # gammu sender; no daemon: texts wait in its outbox
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        sms.queue_text(conn, ref=uuid.uuid4().hex, kind="result_ready", phone=PHONE, body="…", site="hn",
                       device="kiosk-01", receipt=CODE, has_pin=True)
    return c


def test_a_citizen_rates_on_the_web_with_a_code_sent_by_sms(office, pg):
    status, page = form(f"{office.url}/danh-gia?ma={CODE}")
    assert status == 200 and f'value="{CODE}"' in page and "Mất kết nối" in page   # open: no login
    status, page = form(f"{office.url}/danh-gia/ma", {"receipt": CODE, "phone": "0912.345.678"})
    assert status == 200 and "Đã gửi mã xác nhận tới 091****678" in page and 'name="code"' in page
    assert "912345678" not in page.replace("0912.345.678", "")                   # only what they typed
    code = gammu_outbox_code(pg.dsn)
    wrong = "000000" if code != "000000" else "111111"
    status, page = form(f"{office.url}/danh-gia", {"receipt": CODE, "phone": "0912345678", "code": wrong,
                                                   "score": "4", "comment": ""})
    assert status == 400 and "Mã xác nhận không đúng" in page
    status, page = form(f"{office.url}/danh-gia", {"receipt": CODE, "phone": "0912345678", "code": code,
                                                   "score": "4", "comment": "Nhanh, chu đáo"})
    assert status == 200 and "Cảm ơn Ông/Bà đã đánh giá hồ sơ" in page
    rows = office.get("/api/ratings?site=hn&from=2020-01-01")
    assert [(r["receipt"], r["score"], r["channel"], r["comment"]) for r in rows] == [(CODE, 4, "web", "Nhanh, chu đáo")]
    response, page = office.get("/ratings", raw=True)
    assert "Nhanh, chu đáo" in page.decode() and CODE in page.decode()


@pytest.mark.parametrize("fields, status, says", [
    ({"receipt": CODE, "phone": "09123abc78"}, 400, "Số điện thoại không hợp lệ"),
    ({"receipt": "<script>", "phone": "0912345678"}, 400, "Mã hồ sơ không hợp lệ"),
    ({"receipt": "HS-KHONG-CO", "phone": "0912345678"}, 400, "Không tìm thấy hồ sơ"),
    ({"receipt": CODE, "phone": "0987654321"}, 400, "Không tìm thấy hồ sơ"),
])
def test_bad_code_requests_are_answered_on_the_page_and_send_nothing(office, pg, fields, status, says):
    got, page = form(f"{office.url}/danh-gia/ma", fields)
    assert got == status and says in page and "<script>" not in page
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM sms_messages WHERE kind = 'otp'").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM ratings").fetchone()[0] == 0


def test_a_flood_of_code_requests_is_refused_politely(office, pg):
    answers = [form(f"{office.url}/danh-gia/ma", {"receipt": CODE, "phone": "0912345678"})[0] for _ in range(5)]
    assert answers == [200, 200, 200, 429, 429]
    status, page = form(f"{office.url}/danh-gia/ma", {"receipt": CODE, "phone": "0912345678"})
    assert "Ông/Bà vui lòng thử lại sau" in page


def test_ratings_api_and_page_need_a_login(office):
    assert form(f"{office.url}/api/ratings")[0] == 401
    assert form(f"{office.url}/ratings")[0] == 302
    assert office.get("/api/ratings", headers=AUTH) == []
    with pytest.raises(urllib.error.HTTPError) as err:
        office.get("/api/ratings?from=yesterday")
    assert err.value.code == 400


def test_without_sms_the_ratings_api_works_and_the_page_says_to_rate_at_the_counter(central_app):
    plain = central_app()                       # no --sms: counter ratings only
    assert plain.get("/api/ratings") == []
    status, page = form(f"{plain.url}/danh-gia/ma", {"receipt": CODE, "phone": "0912345678"})
    assert status == 503 and "đánh giá tại quầy" in page


def test_the_qr_for_a_receipt_opens_the_rating_page_with_its_code(office):
    import numpy as np

    from edge.qr import decode

    request = urllib.request.Request(f"{office.url}/danh-gia/qr?ma={CODE.lower()}")
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("image/svg+xml")
        svg = r.read().decode()
    # draw the SVG's modules into an image and read it back with the project's own decoder
    scale = 4
    size = int(re.search(r'width="(\d+)"', svg).group(1))
    image = np.full((size + 40, size + 40), 255, np.uint8)
    path = re.search(r' d="([^"]+)"', svg).group(1)
    x = y = 0.0
    for cmd, num in re.findall(r"([MmHhVv])(-?[\d.]+(?: -?[\d.]+)?)", path):
        nums = [float(n) for n in num.split()]
        if cmd == "M":
            x, y = nums
        elif cmd == "m":
            x, y = x + nums[0], y + nums[1]
        elif cmd == "h":
            x0, x = x, x + nums[0]
            image[20 + int((y - 0.5) * scale):20 + int((y + 0.5) * scale),
                  20 + int(x0 * scale):20 + int(x * scale)] = 0
    texts = [s.text for s in decode(image)]
    assert texts == [f"{office.url}/danh-gia?ma={urllib.parse.quote(CODE)}"]
    assert form(f"{office.url}/danh-gia/qr?ma=<b>")[0] == 400


def test_a_bad_code_in_the_qr_address_gets_the_citizens_page_with_a_polite_message(central_app):
    office = central_app()
    status, page = form(f"{office.url}/danh-gia/qr?ma=BAD%20CODE!")
    assert status == 400
    assert "Mã hồ sơ không hợp lệ (chỉ gồm chữ, số và . - _ /)." in page and "<form" in page
    assert 'value="BAD CODE!"' in page and "expected a dossier code" not in page
    status, page = form(f"{office.url}/danh-gia/qr?ma=&lang=en")
    assert status == 400 and "Invalid dossier code" in page


@pytest.mark.browser
def test_a_citizen_rates_on_a_phone_in_chromium_and_sees_when_central_goes_away(office, pg, chromium):
    context = chromium.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN")  # the run's one Chromium
    try:
        page = context.new_page()
        page.goto(f"{office.url}/danh-gia?ma={CODE}")          # as from the QR on the receipt
        assert page.input_value("input[name=receipt]") == CODE
        page.fill("input[name=phone]", "0912 345 678")
        page.click("#ask button")
        page.wait_for_selector("#info")
        assert "091****678" in page.inner_text("#info")
        page.fill("input[name=code]", gammu_outbox_code(pg.dsn))
        page.check("input[name=score][value='5']")
        page.fill("textarea[name=comment]", "Rất nhanh")
        page.click("#rate button")
        page.wait_for_selector("#thanks")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390   # no sideways scrolling
        import asyncio   # central's web server goes away (the fixture stops the rest)
        runner, office.app.runner = office.app.runner, None
        asyncio.run_coroutine_threadsafe(runner.cleanup(), office.loop).result(15)
        # it asks every 2 s: a deadline with room for a loaded machine (it returns when shown)
        page.wait_for_selector("#conn-banner:not([hidden])", timeout=15_000)
        assert page.inner_text("#conn-banner") == "Mất kết nối – đang thử lại"
    finally:
        context.close()
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT score, channel, comment FROM ratings").fetchall() == [(5, "web", "Rất nhanh")]
