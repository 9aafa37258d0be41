"""What every dashboard screen shares: texts (Vietnamese, English fallback), formatting of times
and durations, query-argument parsing, JSON/CSV answers and the page renderer.

Pages are Jinja2 templates (`edge/central/templates/`) with autoescape on: a value from a query
string, an event or a device is always escaped by the template, never pasted into HTML here.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from edge import alarm_kinds
from edge.central import queries

CENTRAL_KEY = web.AppKey("central", object)   # the CentralApp (service.py)
_RequestKey = getattr(web, "RequestKey", None)  # aiohttp >= 3.13 wants typed request keys
MAX_BODY = 64 * 1024                          # bytes a form or API call may send (make_app)
STAFF_KEY = _RequestKey("staff", object) if _RequestKey else "staff"   # the signed-in auth.Staff
CSRF_KEY = _RequestKey("csrf", str) if _RequestKey else "csrf"          # the session's CSRF token

TEXT = {
    "title": ("Bảng điều khiển một cửa", "One-stop office dashboard"),
    "fleet": ("Thiết bị", "Fleet"), "queues": ("Hàng chờ", "Queues"), "lockers": ("Tủ trả kết quả", "Lockers"),
    "events": ("Sự kiện", "Events"), "commands": ("Lệnh từ xa", "Commands"),
    "site": ("Điểm", "Site"), "device": ("Thiết bị", "Device"), "state": ("Trạng thái", "State"),
    "since": ("Từ lúc", "Since"), "last_seen": ("Lần cuối", "Last seen"), "version": ("Phiên bản", "Version"),
    "services": ("Dịch vụ", "Services"), "service": ("Dịch vụ", "Service"), "missing": ("Sự kiện thiếu", "Missing events"),
    "alarms": ("Cảnh báo", "Alarms"), "open_alarms": ("Cảnh báo đang mở", "Open alarms"),
    "online": ("Trực tuyến", "Online"), "offline": ("Mất kết nối", "Offline"),
    "kind": ("Loại", "Kind"), "subject": ("Vị trí", "Where"), "opened": ("Mở lúc", "Opened"),
    "none": ("Không có", "None"), "csv": ("Tải CSV", "CSV"), "no_data": ("Chưa có dữ liệu", "No data yet"),
    "queue": ("Hàng", "Queue"), "issued": ("Số phiếu", "Tickets"), "waiting": ("Đang chờ", "Waiting now"),
    "wait_avg": ("Chờ TB", "Avg wait"), "wait_p90": ("Chờ P90", "P90 wait"), "service_avg": ("Phục vụ TB", "Avg service"),
    "no_shows": ("Vắng mặt", "No-shows"), "rating": ("Đánh giá", "Rating"), "served": ("Đã phục vụ", "Served"),
    "by_hour": ("Số phiếu theo giờ hôm nay", "Tickets by hour today"),
    "last_30": ("Số phiếu 30 ngày qua", "Tickets, last 30 days"),
    "wait_30": ("Thời gian chờ TB 30 ngày qua (phút)", "Average wait, last 30 days (min)"),
    "tickets_unit": ("phiếu", "tickets"), "minutes_unit": ("phút", "min"),
    "day": ("Ngày", "Day"), "compartments": ("Ngăn", "Compartments"), "occupied": ("Đang dùng", "Occupied"),
    "results_waiting": ("Kết quả chờ nhận", "Results waiting"), "expiring": ("Quá hạn / sắp hết hạn", "Expired or nearing expiry"),
    "open_doors": ("Cửa đang mở", "Doors open"), "collected": ("Nhận qua đêm", "Collected overnight"),
    "type": ("Loại", "Type"), "time": ("Thời gian", "Time"), "details": ("Chi tiết", "Details"),
    "raw": ("JSON gốc", "Raw JSON"), "filter": ("Lọc", "Filter"), "all": ("Tất cả", "All"),
    "gaps": ("Khoảng thiếu seq", "Seq gaps"), "recovery": ("Khôi phục", "Recovery"),
    "requested": ("Đã yêu cầu gửi lại", "Resend requested"),
    "unrecoverable": ("Không thể khôi phục", "Unrecoverable"), "lost": ("thiết bị không còn giữ", "no longer on the device"),
    "broker": ("Broker", "Broker"),
    "send": ("Gửi lệnh", "Send"), "recent": ("Lệnh gần đây", "Recent commands"), "staff": ("Nhân viên", "Staff"),
    "args": ("Tham số (JSON)", "Arguments (JSON)"), "result": ("Kết quả", "Result"),
    "confirm_q": ("Lệnh này làm mở cửa tủ. Xác nhận lần nữa?", "This command moves locker doors. Confirm again?"),
    "confirm": ("Xác nhận gửi lệnh", "Confirm and send"), "cancel": ("Huỷ", "Cancel"),
    "need_operator": ("Chỉ nhân viên vận hành mới gửi được lệnh.", "Only operators can send commands."),
    "not_your_site": ("Ông/Bà không được quyền với điểm này.", "You have no rights for this site."),
    "sent_ok": ("Thiết bị đã thực hiện lệnh.", "The device carried out the command."),
    "sent_refused": ("Thiết bị từ chối lệnh", "The device refused the command"),
    "send_failed": ("Không gửi được lệnh", "The command could not be sent"),
    "confirm_expired": ("Xác nhận đã hết hạn hoặc không hợp lệ: hãy gửi lại lệnh.",
                        "The confirmation expired or is unknown: send the command again."),
    "bad_args": ("Tham số phải là JSON dạng {\"tên\": giá trị}.", "Arguments must be a JSON object {\"name\": value}."),
    "missing_fields": ("Cần điền điểm, thiết bị, dịch vụ và loại lệnh.", "Fill in site, device, service and type."),
    "door_command": ("mở cửa tủ", "moves doors"),
    "login": ("Đăng nhập", "Sign in"), "logout": ("Đăng xuất", "Sign out"),
    "staff_id": ("Mã nhân viên", "Staff id"), "pin": ("Mã PIN hoặc mật khẩu", "PIN or password"),
    "login_failed": ("Mã nhân viên hoặc PIN không đúng.", "Wrong staff id or PIN."),
    "login_locked": ("Tài khoản tạm khoá do nhập sai nhiều lần. Thử lại sau {minutes} phút.",
                     "Too many wrong attempts: locked. Try again in {minutes} min."),
    "login_csrf": ("Phiên đăng nhập đã hết hạn, vui lòng nhập lại.", "The form expired, please sign in again."),
    "role_viewer": ("xem", "viewer"), "role_operator": ("vận hành", "operator"), "role_admin": ("quản trị", "admin"),
    "counters": ("Quầy", "Counters"), "counter": ("Quầy", "Counter"), "now_serving": ("Đang phục vụ", "Now serving"),
    "next": ("Số tiếp theo", "Next"), "paused": ("Tạm nghỉ", "Paused"), "open": ("Đang mở", "Open"),
    "served_today": ("Đã phục vụ hôm nay", "Served today"),
    "cards": ("Thẻ rung", "Pager cards"), "cards_out": ("Đang phát", "In use"), "cards_free": ("Còn lại", "Left"),
    "cards_low": ("Sắp hết thẻ rung: tiếp nhận sẽ phải dừng khi hết thẻ.",
                  "Pager cards running out: reception stops when none are left."),
    "cards_none": ("Đã hết thẻ rung: tiếp nhận đang bị chặn.", "No pager cards left: reception is blocked."),
    "est_wait": ("Ước tính chờ", "Estimated wait"),
    "grid": ("Sơ đồ ngăn tủ", "Compartment map"), "deadline": ("Hạn nhận", "Deadline"),
    "c_free": ("Trống", "Free"), "c_waiting": ("Chờ nhận", "Waiting"), "c_overdue": ("Quá hạn", "Overdue"),
    "c_fault": ("Lỗi", "Fault"), "door_open": ("cửa mở", "door open"),
    "conn_lost": ("Mất kết nối – đang thử lại", "Connection lost – retrying"),
    "db_down": ("Cơ sở dữ liệu tạm thời không trả lời – đang thử lại. Vui lòng tải lại trang sau ít phút.",
                "The database is not answering – retrying. Please reload the page in a few minutes."),
    "limit": ("Số dòng", "Rows"),
    "day_hint": ("ngày/tháng/năm", "dd/mm/yyyy"),
    "cmd_sent": ("Đã gửi, đang chờ thiết bị trả lời", "Sent, waiting for the device"),
    "cmd_ok": ("Thiết bị đã thực hiện", "Done by the device"),
    "cmd_refused": ("Thiết bị từ chối", "Refused by the device"),
    "cmd_timeout": ("Thiết bị không trả lời (mất kết nối?): hãy kiểm tra tại chỗ trước khi gửi lại",
                    "No answer from the device (offline?): check on site before sending again"),
    "error_title": ("Không mở được trang", "The page could not be shown"), "back": ("Quay lại", "Back"),
    "bad_day": ("Ngày “{value}” không hợp lệ: hãy nhập theo dạng ngày/tháng/năm, ví dụ 07/12/2026.",
                "The day “{value}” is not valid: write it as dd/mm/yyyy, e.g. 07/12/2026."),
    "bad_number": ("Ô “{field}” cần một số nguyên, không phải “{value}”.",
                   "The field “{field}” needs a whole number, not “{value}”."),
    "bad_request": ("Yêu cầu không hợp lệ: hãy quay lại trang trước và thử lại.",
                    "The request is not valid: go back and try again."),
    "forbidden": ("Ông/Bà không có quyền làm việc này, hoặc biểu mẫu đã hết hạn: hãy tải lại trang.",
                  "You may not do this, or the form expired: reload the page."),
    "not_found": ("Không có trang này.", "There is no such page."),
    "too_large": ("Nội dung gửi lên quá lớn (tối đa {kb} KB): hãy rút gọn tham số.",
                  "What was sent is too large (at most {kb} KB): shorten the arguments."),
}

# Event types as a manager reads them (unknown types are shown as they are); an event that is an
# alarm kind (board_offline, open_not_detected) reads as that alarm does (edge/alarm_kinds.py).
EVENT_TYPES = {
    "ticket_issued": ("Phát phiếu", "Ticket issued"), "ticket_called": ("Gọi số", "Ticket called"),
    "ticket_served": ("Phục vụ xong", "Served"), "ticket_done": ("Phục vụ xong", "Served"),
    "ticket_transferred": ("Chuyển hàng", "Transferred"), "ticket_rejoined": ("Xếp hàng lại", "Rejoined"),
    "card_returned": ("Trả thẻ rung", "Card returned"), "ticket_no_show": ("Vắng mặt", "No-show"),
    "ticket_recalled": ("Gọi lại", "Recalled"), "counter_paused": ("Quầy tạm nghỉ", "Counter paused"),
    "counter_resumed": ("Quầy mở lại", "Counter resumed"), "rating": ("Đánh giá", "Rating"),
    "loaded": ("Nạp kết quả vào tủ", "Result loaded"), "collected": ("Công dân đã nhận", "Collected"),
    "expired": ("Quá hạn nhận", "Expired"), "reclaimed": ("Thu hồi", "Reclaimed"),
    "door_opened": ("Cửa mở", "Door opened"), "door_closed": ("Cửa đóng", "Door closed"),
    "pulse_sent": ("Đã mở khoá", "Unlock pulse"), "open_not_detected": alarm_kinds.ALARM_KINDS["open_not_detected"],
    "open_failed": ("Mở thất bại", "Open failed"), "pin_locked": ("Khoá PIN", "PIN locked"),
    "alarm": ("Cảnh báo", "Alarm"), "alarm_cleared": ("Hết cảnh báo", "Alarm cleared"),
    "maintenance": ("Bảo trì ngăn", "Maintenance"), "board_offline": alarm_kinds.ALARM_KINDS["board_offline"],
    "verified": ("Xác minh khuôn mặt", "Face check"), "enrolled": ("Đăng ký khuôn mặt", "Face enrolled"),
    "deleted": ("Xoá mẫu khuôn mặt", "Face template deleted"), "code_scanned": ("Quét mã QR", "QR code scanned"),
    "catalog_imported": ("Nạp danh mục thủ tục", "Procedure catalog imported"),
    "session_ended": ("Kết thúc phiên nhận kết quả", "Pickup session ended"),
    "lockout": ("Khoá do nhập sai", "Locked out after wrong entries"),
}
ALARM_KINDS = alarm_kinds.ALARM_KINDS  # one table for the dashboard, the e-mails and the device's status screen
SERVICE_NAMES = {"pager": ("Xếp hàng", "Queue"), "locker": ("Tủ kết quả", "Lockers"), "vision": ("Nhận diện", "Face"),
                 "qr": ("Mã QR", "QR"), "kiosk": ("Màn hình", "Kiosk"), "device": ("Thiết bị", "Device")}
# Fields worth a glance in the events table, in this order; the rest stays in the raw JSON.
KEY_FIELDS = ("ticket", "queue", "service", "counter", "card", "compartment", "receipt", "deadline", "alarm",
              "target", "rating", "score", "kind", "decision", "outcome", "reason", "error", "door", "occupied")
FIELD_LABELS = {
    "ticket": ("Số", "Ticket"), "queue": ("Hàng", "Queue"), "counter": ("Quầy", "Counter"), "card": ("Thẻ", "Card"),
    "compartment": ("Ngăn", "Compartment"), "receipt": ("Hồ sơ", "Dossier"), "deadline": ("Hạn", "Deadline"),
    "alarm": ("Cảnh báo", "Alarm"), "target": ("Vị trí", "Where"), "rating": ("Điểm", "Score"),
    "reason": ("Lý do", "Reason"), "error": ("Lỗi", "Error"), "door": ("Cửa", "Door"),
    "occupied": ("Có đồ", "Occupied"), "service": ("Dịch vụ", "Service"), "score": ("Điểm", "Score"),
    "decision": ("Kết quả", "Decision"), "outcome": ("Kết quả", "Outcome"), "kind": ("Loại mã", "Code kind"),
}

# Values of the key fields as a manager reads them: (field, value) -> (vi, en). A value not listed
# is shown as it is, except free English text (a device's reason sentence): see field_value().
FIELD_VALUES = {
    ("decision", "accept"): ("Chấp nhận", "Accepted"), ("decision", "reject"): ("Từ chối", "Rejected"),
    ("decision", "retry"): ("Thử lại", "Retry"), ("decision", "locked"): ("Bị khoá", "Locked"),
    ("reason", "match"): ("Khớp khuôn mặt", "Face matches"), ("reason", "no_match"): ("Không khớp", "No match"),
    ("reason", "ambiguous"): ("Không phân biệt được", "Ambiguous"),
    ("reason", "pickup"): ("Công dân nhận kết quả", "Citizen pickup"), ("reason", "load"): ("Nạp kết quả", "Loading"),
    ("reason", "reclaim"): ("Thu hồi", "Reclaim"), ("reason", "audit"): ("Kiểm tra ngăn", "Audit"),
    ("reason", "remote"): ("Lệnh từ xa", "Remote command"), ("reason", "request"): ("Theo yêu cầu", "On request"),
    ("reason", "retention"): ("Hết hạn lưu", "Retention ended"),
    ("outcome", "cancelled"): ("Đã huỷ", "Cancelled"), ("outcome", "collected"): ("Đã nhận", "Collected"),
    ("outcome", "timeout"): ("Hết giờ", "Timed out"), ("outcome", "done"): ("Xong", "Done"),
    ("outcome", "refused"): ("Bị từ chối", "Refused"),
    ("kind", "procedure"): ("Mã thủ tục", "Procedure code"), ("kind", "procedure_url"): ("Mã thủ tục", "Procedure code"),
    ("kind", "portal_uuid"): ("Mã thủ tục", "Procedure code"), ("kind", "receipt"): ("Mã hồ sơ", "Dossier code"),
    ("kind", "appointment"): ("Lịch hẹn", "Appointment"), ("kind", "payment"): ("Mã thanh toán", "Payment code"),
    ("kind", "unknown"): ("Mã không nhận ra", "Unrecognised code"),
    ("door", "open"): ("Mở", "Open"), ("door", "closed"): ("Đóng", "Closed"),
}
# A device's free-text reason (English, for its log) shown by what it means; the sentence stays in the raw JSON.
REASON_GIST = (("payment code", ("Mã thanh toán, không phải mã của bộ phận một cửa", "A payment code, not an office code")),
               ("not a procedure", ("Không phải mã thủ tục, hồ sơ hay lịch hẹn", "Not an office code")),
               ("url", ("Đường dẫn không được chấp nhận", "Link not accepted")),
               ("", ("Xem JSON gốc", "See the raw JSON")))


def field_value(lang: str, field: str, value) -> str:
    """One key field's value in the manager's language (see FIELD_VALUES, REASON_GIST)."""
    if isinstance(value, bool):
        return ("có" if value else "không") if lang != "en" else ("yes" if value else "no")
    text = str(value)
    if (field, text) in FIELD_VALUES:
        return pick(lang, FIELD_VALUES[(field, text)])
    if field == "reason" and text.startswith("remote:"):
        return f'{pick(lang, FIELD_VALUES[("reason", "remote")])}: {field_value(lang, "reason", text[7:])}'
    if field in ("reason", "error") and " " in text:       # a sentence for the device's log, in English
        lowered = text.lower()
        return pick(lang, next(gist for needle, gist in REASON_GIST if needle in lowered))
    return text


def lang_of(request: web.Request) -> str:
    lang = request.query.get("lang") or request.cookies.get("lang") or "vi"
    return "en" if lang == "en" else "vi"


def t(lang: str, key: str, **fields) -> str:
    vi, en = TEXT[key]
    text = en if lang == "en" else vi
    return text.format(**fields) if fields else text


def pick(lang: str, pair) -> str:
    return pair[1] if lang == "en" else pair[0]


def fmt_time(ts, tz: ZoneInfo, *, with_date: bool = True) -> str:
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not ts:
        return "–"
    try:
        moment = dt.datetime.fromtimestamp(ts, tz)
    except (OverflowError, OSError, ValueError):
        return "–"
    return moment.strftime("%d/%m %H:%M:%S" if with_date else "%H:%M")


def fmt_duration(seconds, lang: str) -> str:
    """A wait or service time as people say it: "45 giây", "12 phút", "1 giờ 05 phút", "3 ngày"."""
    if seconds is None:
        return "–"
    seconds = max(0, round(seconds))
    en = lang == "en"
    if seconds < 60:
        return f"{seconds} {'s' if en else 'giây'}"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} {'min' if en else 'phút'}"
    if seconds < 2 * 86400:
        return f"{minutes // 60} {'h' if en else 'giờ'} {minutes % 60:02d} {'min' if en else 'phút'}"
    return f"{seconds // 86400} {'days' if en else 'ngày'}"


# -- query arguments -------------------------------------------------------------------------
def _bad_request(message: str, key: str = "bad_request", **fields) -> web.HTTPBadRequest:
    """A 400: JSON `{"error": message}` for the API; a page shows TEXT[key] instead (see errors.py)."""
    return with_page_text(web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json"),
                          key, **fields)


def with_page_text(err: web.HTTPException, key: str, **fields) -> web.HTTPException:
    """Mark an HTTP error with the translated text a page shows for it (TEXT[key].format(**fields))."""
    err.page_text = (key, fields)
    return err


def int_arg(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_request(f"{name} must be an integer, got {raw!r}", "bad_number", field=name,
                           value=raw[:40]) from None
    return max(lo, min(hi, value))


def parse_day(raw: str) -> dt.date:
    """YYYY-MM-DD (ISO, the API) or dd/mm/yyyy (how a Vietnamese office writes a date)."""
    raw = raw.strip()
    if "/" in raw:
        parts = raw.split("/")
        if len(parts) == 3 and all(p.isdigit() for p in parts) and len(parts[2]) == 4:
            return dt.date(int(parts[2]), int(parts[1]), int(parts[0]))
        raise ValueError(raw)
    return dt.date.fromisoformat(raw)


def day_arg(request: web.Request, tz: ZoneInfo) -> dt.date:
    raw = request.query.get("day")
    if not raw:
        return queries.local_day(tz, request.app[CENTRAL_KEY].now())
    try:
        return parse_day(raw)
    except ValueError:
        raise _bad_request(f"day must be YYYY-MM-DD or dd/mm/yyyy, got {raw!r}", "bad_day", value=raw[:40]) from None


def fmt_day(day: dt.date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else ""


# -- answers ---------------------------------------------------------------------------------
def json_response(rows, status: int = 200) -> web.Response:
    return web.json_response(rows, status=status, dumps=lambda obj: json.dumps(obj, ensure_ascii=False, default=str))


def respond(request: web.Request, rows: list[dict], name: str) -> web.Response:
    if request.query.get("format") == "csv":
        return csv_response(rows, name)
    return json_response(rows)


def csv_cell(value):
    """A CSV cell that a spreadsheet shows as text: a leading =, +, -, @ (or tab/CR) would make
    Excel or LibreOffice run it as a formula, so such text gets a leading apostrophe."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_response(rows: list[dict], name: str) -> web.Response:
    out = io.StringIO()
    columns = list(rows[0].keys()) if rows else []
    for row in rows:
        columns += [k for k in row if k not in columns]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
    safe_name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return web.Response(body=("\ufeff" + out.getvalue()).encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{safe_name}.csv"'})


def query_string(**params) -> str:
    """`a=1&b=2` with every value URL-encoded (None values left out)."""
    return urlencode({k: v for k, v in params.items() if v is not None and v != ""})


# -- pages ---------------------------------------------------------------------------------
NAV = [("fleet", "/"), ("queues", "/queues"), ("lockers", "/lockers"), ("events", "/events"), ("commands", "/commands")]


def add_nav(key: str, path: str) -> None:
    """A new screen's link in the header (e.g. a ratings page added by another module)."""
    if (key, path) not in NAV:
        NAV.append((key, path))


def render(request: web.Request, template: str, current: str, context: dict, *, refresh: int | None = None,
           status: int = 200) -> web.Response:
    """A page from its template inside base.html: header, language toggle, live banner."""
    lang = lang_of(request)
    central = request.app[CENTRAL_KEY]
    toggle = dict(request.query)
    toggle["lang"] = "vi" if lang == "en" else "en"
    base = {"lang": lang, "t": lambda key, **kw: t(lang, key, **kw), "nav": NAV, "current": current,
            "staff": request.get(STAFF_KEY), "csrf": request.get(CSRF_KEY), "toggle_qs": urlencode(toggle),
            "refresh": refresh, "tz": central.tz,
            "fmt_time": lambda ts, **kw: fmt_time(ts, central.tz, **kw),
            "fmt_duration": lambda s: fmt_duration(s, lang), "pick": lambda pair: pick(lang, pair),
            "alarm_text": lambda kind: pick(lang, ALARM_KINDS.get(kind, (kind, kind))),
            "service_text": lambda name: pick(lang, SERVICE_NAMES.get(name, (name, name)))}
    response = aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)
    if "lang" in request.query:
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="Lax", httponly=True,
                            secure=is_https(request))
    return response


def is_https(request: web.Request) -> bool:
    """Served over TLS, or behind a proxy that says the browser used https."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
