"""Citizens' ratings and SMS delivery on the dashboard (edge.central.ratings, edge.central.sms).

- `/danh-gia` (open, no staff login; reached by the QR on the receipt or the counter panel, an SVG
  from `/danh-gia/qr?ma=CODE`):
  dossier code + phone -> a one-time code by SMS -> a rating 1-5 and an optional comment.
  Plain HTML forms, no script; bad input is answered on the page and stores nothing.
- `GET /api/ratings?site=S&from=YYYY-MM-DD&to=YYYY-MM-DD` (login, like every read API; without
  `from`, the last 90 days):
  `[{"site","receipt","score","channel":"sms"|"web"|"counter","ts",…}]`, never a phone number.
- `/ratings` (login): averages per office, channel, service and counter, the latest ratings, and
  the delivery of each result-ready SMS.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import time
from urllib.parse import urlencode

import segno

from aiohttp import web

from edge.central import auth, db, ratings, sms
from edge.central.web import charts, data
from edge.central.web.common import (CENTRAL_KEY, STAFF_KEY, TEXT, add_nav, is_https, lang_of, pick, render,
                                     respond)

PUBLIC_PATHS = ("/danh-gia", "/danh-gia/ma", "/danh-gia/qr")
LATEST_EPOCH_S = 253402300799.0   # 9999-12-31T23:59:59Z, the last second a date here can name
DEFAULT_DAYS = 90   # /api/ratings without `from`: the last 90 days (the counter ratings scan event partitions)

TEXT.setdefault("ratings", ("Đánh giá", "Ratings"))
# Texts of the citizens' rating page (/danh-gia: polite, "Ông/Bà") and of the managers' ratings page.
# A word every dashboard page uses (site, counter, service, time) is not repeated here: rt() reads it
# from common.TEXT.
RTEXT = {
    "page_title": ("Đánh giá sự hài lòng", "Rate our service"),
    "intro": ("Ông/Bà nhập mã hồ sơ và số điện thoại đã nhận tin nhắn báo kết quả. Chúng tôi sẽ gửi mã xác "
              "nhận qua SMS để bảo đảm chính Ông/Bà đánh giá.",
              "Enter your dossier code and the phone number that received the result SMS. We send a "
              "confirmation code by SMS so that only you can rate."),
    "receipt": ("Mã hồ sơ", "Dossier code"), "phone": ("Số điện thoại", "Phone number"),
    "get_code": ("Nhận mã xác nhận", "Send me a code"),
    "code_sent": ("Đã gửi mã xác nhận tới {phone}. Mã có hiệu lực 10 phút.",
                  "A confirmation code was sent to {phone}. It is valid for 10 minutes."),
    "code": ("Mã xác nhận (6 chữ số)", "Confirmation code (6 digits)"),
    "score": ("Mức độ hài lòng", "How satisfied are you?"),
    "s1": ("1 – Rất không hài lòng", "1 – Very dissatisfied"), "s2": ("2 – Không hài lòng", "2 – Dissatisfied"),
    "s3": ("3 – Bình thường", "3 – Neutral"), "s4": ("4 – Hài lòng", "4 – Satisfied"),
    "s5": ("5 – Rất hài lòng", "5 – Very satisfied"),
    "comment": ("Góp ý (không bắt buộc)", "Comment (optional)"), "send": ("Gửi đánh giá", "Send my rating"),
    "thanks": ("Cảm ơn Ông/Bà đã đánh giá hồ sơ {receipt}.", "Thank you for rating dossier {receipt}."),
    "no_sms": ("Dịch vụ tin nhắn chưa được bật tại đơn vị này, Ông/Bà vui lòng đánh giá tại quầy.",
               "SMS is not set up at this office; please rate at the counter."),
    "summary": ("Điểm trung bình", "Averages"), "latest": ("Đánh giá gần đây", "Latest ratings"),
    "channel": ("Kênh", "Channel"), "count": ("Số lượt", "Count"), "average": ("Trung bình", "Average"),
    # site, counter, service and time: the dashboard's own words (common.TEXT), as on every other page
    "score_h": ("Điểm", "Score"), "comment_h": ("Góp ý", "Comment"),
    "dossier": ("Hồ sơ", "Dossier"), "delivery": ("Tin nhắn báo kết quả", "Result SMS delivery"),
    "kind": ("Loại tin", "Message"), "status": ("Trạng thái", "Status"), "attempts": ("Lần gửi", "Attempts"),
    "sent": ("Gửi lúc", "Sent"), "delivered": ("Đến máy lúc", "Delivered"), "error": ("Lỗi", "Error"),
    "none": ("Chưa có", "None yet"),
    "sms_state": ("Gửi qua {sender}: {sent} tin đã gửi, {failed} thất bại, {incoming} tin nhận",
                  "Sending through {sender}: {sent} sent, {failed} failed, {incoming} received"),
    "sms_off": ("Chưa thiết lập gửi tin nhắn SMS: công dân chưa nhận được tin báo kết quả và chỉ đánh giá được "
                "tại quầy. Nhờ kỹ thuật viên thiết lập theo tài liệu docs/central.md, mục “Citizen SMS”.",
                "SMS is not set up: citizens get no result message and can rate only at the counter. Ask the "
                "technician to set it up as described in docs/central.md, section “Citizen SMS”."),
    "ticket": ("Số phiếu", "Ticket"), "ref": ("Hồ sơ / số phiếu", "Dossier / ticket"),
    "per_day": ("Điểm trung bình theo ngày, 30 ngày qua (mọi kênh)", "Average rating per day, last 30 days (all channels)"), "ch_sms": ("SMS", "SMS"), "ch_web": ("Web", "Web"),
    "ch_counter": ("Bàn phím tại quầy", "Counter keypad"),
    "k_result_ready": ("Báo kết quả + PIN", "Result ready + PIN"), "k_reminder": ("Nhắc hạn", "Reminder"),
    "k_expired": ("Quá hạn", "Expired"),
    "st_queued": ("Chờ gửi", "Queued"), "st_submitted": ("Đã chuyển modem", "At the modem"),
    "st_sent": ("Đã gửi", "Sent"), "st_delivered": ("Đã đến máy", "Delivered"), "st_failed": ("Thất bại", "Failed"),
    "st_cancelled": ("Huỷ", "Cancelled"),
}


def rt(lang: str, key: str, **fields) -> str:
    """A text of the ratings pages (RTEXT), or the dashboard's word for what every page shows (TEXT)."""
    vi, en = RTEXT[key] if key in RTEXT else TEXT[key]
    text = en if lang == "en" else vi
    return text.format(**fields) if fields else text


_MIGRATED: set[str] = set()   # databases whose rating/SMS tables this process has checked


async def _sync(central, func, *args):
    """Run a sync edge.central.ratings/sms function on its own connection, off the event loop.
    The tables are created on first use, so the pages work before (or without) `--sms`."""
    dsn = central.config.ingest.dsn

    def call():
        with db.connect(dsn) as conn:
            if dsn not in _MIGRATED:
                db.migrate(conn)
                sms.migrate(conn)
                _MIGRATED.add(dsn)
            return func(conn, *args)
    return await asyncio.to_thread(call)


# -- the citizens' page ---------------------------------------------------------------------------

def _public(request: web.Request, step: str, *, status: int = 200, **context) -> web.Response:
    lang = lang_of(request)
    form = {"receipt": "", "phone": "", "comment": "", "error": None, "info": None, **context}
    return render(request, "danh_gia.html", "ratings",
                  {"step": step, "rt": lambda key, **kw: rt(lang, key, **kw), **form}, status=status)


def _refused(request: web.Request, err: ratings.RatingRefused, step: str, **context) -> web.Response:
    message = err.message_en if lang_of(request) == "en" else err.message_vi
    status = 429 if err.reason.startswith("rate_") else 400
    return _public(request, step, status=status, error=message, **context)


async def rating_page(request: web.Request) -> web.Response:
    receipt = request.query.get("ma", "")[:64]        # the QR on the receipt carries the dossier code
    return _public(request, "ask", receipt=receipt)


async def request_code(request: web.Request) -> web.Response:
    central = request.app[CENTRAL_KEY]
    form = await request.post()
    receipt, phone = str(form.get("receipt", ""))[:64], str(form.get("phone", ""))[:32]
    if getattr(central, "sms", None) is None:
        return _public(request, "ask", status=503, error=rt(lang_of(request), "no_sms"), receipt=receipt, phone=phone)
    try:
        masked = await _sync(central, ratings.request_code, central.config.sms.texts, receipt, phone,
                             request.remote or "?")
    except ratings.RatingRefused as err:
        return _refused(request, err, "ask", receipt=receipt, phone=phone)
    central.sms.wake()
    return _public(request, "rate", receipt=receipt.strip().upper(), phone=phone,
                   info=rt(lang_of(request), "code_sent", phone=masked))


async def submit_rating(request: web.Request) -> web.Response:
    central = request.app[CENTRAL_KEY]
    form = await request.post()
    receipt, phone = str(form.get("receipt", ""))[:64], str(form.get("phone", ""))[:32]
    comment = str(form.get("comment", ""))[:2000]
    try:
        await _sync(central, ratings.submit, receipt, phone, str(form.get("code", ""))[:16],
                    str(form.get("score", "")), comment)
    except ratings.RatingRefused as err:
        return _refused(request, err, "rate", receipt=receipt, phone=phone, comment=comment)
    return _public(request, "done", receipt=receipt.strip().upper())


async def rating_qr(request: web.Request) -> web.Response:
    """`/danh-gia/qr?ma=CODE`: the QR for the receipt or the counter panel (SVG), opening this
    office's rating page with the dossier code filled in."""
    receipt = request.query.get("ma", "").strip().upper()
    if not ratings.RECEIPT_RE.match(receipt):   # a citizen may type this address: answer on the page, politely
        return _refused(request, ratings.RatingRefused("receipt"), "ask", receipt=request.query.get("ma", "")[:64])
    scheme = "https" if is_https(request) else "http"
    url = f"{scheme}://{request.host}/danh-gia?{urlencode({'ma': receipt})}"
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=4, border=2, xmldecl=False, title=url)
    return web.Response(body=out.getvalue(), content_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})


# -- staff: API and page ----------------------------------------------------------------------------

def _day(request: web.Request, name: str, tz) -> float | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        if raw.replace(".", "", 1).isdigit():
            if float(raw) > LATEST_EPOCH_S:     # PostgreSQL's to_timestamp fails beyond (a 500)
                raise ValueError(raw)
            return float(raw)
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f'{{"error": "{name} must be YYYY-MM-DD or epoch seconds"}}',
                                 content_type="application/json") from None
    return dt.datetime.combine(day, dt.time(), tz).timestamp() + (86400 if name == "to" else 0)


async def api_ratings(request: web.Request) -> web.Response:
    central, staff = request.app[CENTRAL_KEY], request[STAFF_KEY]
    site = request.query.get("site") or None
    if site and not staff.may_see(site):
        raise web.HTTPForbidden(text='{"error": "this staff member may not see that site"}',
                                content_type="application/json")
    since, until = _day(request, "from", central.tz), _day(request, "to", central.tz)
    if since is None:
        since = (until or time.time()) - DEFAULT_DAYS * 86400
    rows = await _sync(central, ratings.list_ratings, site, since, until)
    rows = [r for r in rows if staff.may_see(r["site"])]
    return respond(request, auth.redact(rows, staff), "ratings")


async def api_sms(request: web.Request) -> web.Response:
    central, staff = request.app[CENTRAL_KEY], request[STAFF_KEY]
    rows = [r for r in await _sync(central, sms.delivery, request.query.get("site") or None)
            if staff.may_see(r["site"])]
    return respond(request, auth.redact(rows, staff), "sms")


async def staff_page(request: web.Request) -> web.Response:
    central, staff = request.app[CENTRAL_KEY], request[STAFF_KEY]
    lang = lang_of(request)
    since = time.time() - 30 * 86400
    rows = [r for r in await _sync(central, ratings.list_ratings, None, since, None) if staff.may_see(r["site"])]
    delivery = [r for r in await _sync(central, sms.delivery, None, 100) if staff.may_see(r["site"])]
    names = data.queue_names(await central.db.run(data.pager_offices, None, staff.sites))
    summary = ratings.summary(rows)
    for row in summary:         # a counter rating's queue by the name the pager base gives it
        pair = names.get((row["site"], row["service"])) or names.get(row["service"])
        row["service"] = pick(lang, pair) if pair else row["service"]
    return render(request, "ratings.html", "ratings", {
        "rt": lambda key, **kw: rt(lang, key, **kw), "summary": summary,
        "daily": daily_chart(rows, central.tz, rt(lang, "per_day")),
        "latest": auth.redact(list(reversed(rows))[:50], staff), "delivery": auth.redact(delivery, staff),
        "sms": central.sms.stats() if getattr(central, "sms", None) is not None else None}, refresh=30)


def daily_chart(rows: list[dict], tz, title: str) -> charts.BarChart:
    """Average score per local day over the last 30 days (a gap where nobody rated)."""
    today = dt.datetime.now(tz).date()
    days = [today - dt.timedelta(days=n) for n in range(29, -1, -1)]
    scores: dict = {}
    for r in rows:
        scores.setdefault(dt.datetime.fromtimestamp(r["ts"], tz).date(), []).append(r["score"])
    values = [round(sum(scores[d]) / len(scores[d]), 2) if d in scores else None for d in days]
    return charts.bar_chart(values, [d.strftime("%d/%m") for d in days], title=title, unit="/5", color="#2da44e",
                            integer=False, scale=(5.0, 1.0))


def add_routes(app: web.Application) -> None:
    add_nav("ratings", "/ratings")
    app.add_routes([
        web.get("/danh-gia", rating_page), web.post("/danh-gia/ma", request_code), web.post("/danh-gia", submit_rating),
        web.get("/danh-gia/qr", rating_qr),
        web.get("/api/ratings", api_ratings), web.get("/api/sms", api_sms), web.get("/ratings", staff_page),
    ])

