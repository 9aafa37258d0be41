"""The office dashboard and JSON API (aiohttp), served by `edge central run` on the office LAN.

Pages are server-rendered HTML with SVG charts drawn here: no JavaScript framework, no CDN, so
they work with no internet. Vietnamese by default, `?lang=en` switches (kept in a cookie). Every
table links to the same data as CSV (`/api/...?format=csv`).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import html
import io
import json
import logging
import secrets
import time
from zoneinfo import ZoneInfo

import psycopg
from aiohttp import web

from edge.central import queries

log = logging.getLogger(__name__)

MAX_EVENTS = 1000
CONFIRM_TTL_S = 120
# Command types that open a door: they need a second confirmation by the same staff member.
NEEDS_CONFIRM = ("open", "open_compartment", "unlock", "open_all", "remote_open")

TEXT = {
    "title": ("Bảng điều khiển một cửa", "One-stop office dashboard"),
    "fleet": ("Thiết bị", "Fleet"), "queues": ("Hàng chờ", "Queues"), "lockers": ("Tủ trả kết quả", "Lockers"),
    "site": ("Điểm", "Site"), "device": ("Thiết bị", "Device"), "state": ("Trạng thái", "State"),
    "since": ("Từ lúc", "Since"), "last_seen": ("Lần cuối", "Last seen"), "version": ("Phiên bản", "Version"),
    "services": ("Dịch vụ", "Services"), "missing": ("Sự kiện thiếu", "Missing events"),
    "alarms": ("Cảnh báo", "Alarms"), "open_alarms": ("Cảnh báo đang mở", "Open alarms"),
    "online": ("Trực tuyến", "Online"), "offline": ("Mất kết nối", "Offline"),
    "kind": ("Loại", "Kind"), "subject": ("Vị trí", "Where"), "opened": ("Mở lúc", "Opened"),
    "none": ("Không có", "None"), "csv": ("Tải CSV", "CSV"),
    "queue": ("Hàng", "Queue"), "issued": ("Số phiếu", "Tickets"), "waiting": ("Đang chờ", "Waiting now"),
    "wait_avg": ("Chờ TB", "Avg wait"), "wait_p90": ("Chờ P90", "P90 wait"), "service_avg": ("Phục vụ TB", "Avg service"),
    "no_shows": ("Vắng mặt", "No-shows"), "rating": ("Đánh giá", "Rating"), "served": ("Đã phục vụ", "Served"),
    "by_hour": ("Số phiếu theo giờ hôm nay", "Tickets by hour today"),
    "last_30": ("Số phiếu 30 ngày qua", "Tickets, last 30 days"),
    "wait_30": ("Thời gian chờ TB 30 ngày qua (phút)", "Average wait, last 30 days (min)"),
    "day": ("Ngày", "Day"), "compartments": ("Ngăn", "Compartments"), "occupied": ("Đang dùng", "Occupied"),
    "results_waiting": ("Kết quả chờ nhận", "Results waiting"), "expiring": ("Quá hạn / sắp hết hạn", "Expired or nearing expiry"),
    "open_doors": ("Cửa đang mở", "Doors open"), "collected": ("Nhận qua đêm", "Collected overnight"),
    "events": ("Sự kiện", "Events"), "type": ("Loại", "Type"), "time": ("Thời gian", "Time"),
    "gaps": ("Khoảng thiếu seq", "Seq gaps"), "ingest": ("Tiếp nhận", "Ingestion"),
    "recovery": ("Khôi phục", "Recovery"), "requested": ("Đã yêu cầu gửi lại", "Resend requested"),
    "unrecoverable": ("Không thể khôi phục", "Unrecoverable"), "lost": ("thiết bị không còn giữ", "no longer on the device"),
    "db": ("CSDL", "Database"), "broker": ("Broker", "Broker"), "ok": ("tốt", "ok"), "down": ("lỗi", "down"),
    "health_ok": ("Hệ thống hoạt động bình thường", "All systems normal"),
    "health_bad": ("Có sự cố", "Problem"),
    "commands": ("Lệnh từ xa", "Remote commands"), "token": ("Mã nhân viên", "Staff token"),
    "send": ("Gửi lệnh", "Send"), "recent": ("Lệnh gần đây", "Recent commands"), "staff": ("Nhân viên", "Staff"),
    "args": ("Tham số (JSON)", "Arguments (JSON)"), "result": ("Kết quả", "Result"),
    "confirm_q": ("Xác nhận mở tủ từ xa?", "Confirm the remote opening?"),
    "confirm": ("Xác nhận mở", "Confirm opening"), "cancel": ("Huỷ", "Cancel"),
    "need_role": ("Cần mã nhân viên có quyền vận hành.", "A staff token with the operator role is required."),
}


def _lang(request: web.Request) -> str:
    lang = request.query.get("lang") or request.cookies.get("lang") or "vi"
    return "en" if lang == "en" else "vi"


def t(lang: str, key: str) -> str:
    vi, en = TEXT[key]
    return en if lang == "en" else vi


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def fmt_time(ts, tz: ZoneInfo) -> str:
    if not ts:
        return "–"
    return dt.datetime.fromtimestamp(ts, tz).strftime("%d/%m %H:%M:%S")


def fmt_minutes(seconds) -> str:
    return "–" if seconds is None else f"{seconds / 60:.1f}′"


def fmt_duration(seconds: float, lang: str) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} {'min' if lang == 'en' else 'phút'}"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d}"
    return f"{seconds // 86400} {'d' if lang == 'en' else 'ngày'}"


# -- SVG charts, drawn here so the page needs nothing from the internet -----------------------
def bar_chart(values: list, labels: list[str], *, width: int = 720, height: int = 220, color: str = "#1f6feb",
              unit: str = "", title: str = "") -> str:
    """A labelled bar chart as inline SVG; None values leave a gap."""
    left, bottom, top = 44, 28, 22
    plot_w, plot_h = width - left - 8, height - bottom - top
    numbers = [v for v in values if v is not None]
    peak = max(numbers) if numbers and max(numbers) > 0 else 1
    step = plot_w / max(1, len(values))
    parts = [f'<svg class="chart" role="img" aria-label="{esc(title)}" viewBox="0 0 {width} {height}" '
             f'width="100%" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="{left}" y="14" class="ct">{esc(title)}</text>']
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" class="ax" text-anchor="end">{peak * frac:.0f}{unit}</text>')
    label_every = max(1, len(values) // 12)
    for i, (value, label) in enumerate(zip(values, labels)):
        x = left + i * step
        if value:
            h = plot_h * value / peak
            parts.append(f'<rect x="{x + step * 0.15:.1f}" y="{top + plot_h - h:.1f}" width="{step * 0.7:.1f}" '
                         f'height="{h:.1f}" fill="{color}"><title>{esc(label)}: {value:.0f}{unit}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{height - 10}" class="ax" text-anchor="middle">{esc(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


STYLE = """
body{font-family:"Noto Sans","DejaVu Sans",sans-serif;margin:0;background:#f6f8fa;color:#1f2328}
header{background:#0b3d91;color:#fff;padding:10px 20px;display:flex;gap:24px;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}header a.cur{border-bottom:3px solid #ffd33d}
header .lang{margin-left:auto;font-weight:400}main{padding:16px 20px}
table{border-collapse:collapse;background:#fff;margin:8px 0 18px;min-width:60%}
th,td{border:1px solid #d0d7de;padding:5px 9px;text-align:left;font-size:14px}th{background:#eef2f6}
.badge{border-radius:10px;padding:1px 8px;font-size:13px;color:#fff}.online,.ok{background:#1a7f37}
.offline,.down{background:#cf222e}.degraded{background:#bf8700}.unknown{background:#6e7781}
.alarm{color:#cf222e;font-weight:600}.chart{background:#fff;border:1px solid #d0d7de;margin:6px 0 16px;max-width:760px}
.grid{stroke:#d8dee4}.ax{font-size:11px;fill:#57606a}.ct{font-size:13px;font-weight:600;fill:#1f2328}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #d0d7de;padding:8px 14px;min-width:120px}
.card b{font-size:24px;display:block}form.cmd label{display:inline-block;margin:0 8px 8px 0}
button{padding:6px 14px}button.danger{background:#cf222e;color:#fff;border:0;font-weight:600}small{color:#57606a}h2{margin:14px 0 4px;font-size:18px}
"""


def page(request: web.Request, current: str, body: str, *, refresh: int | None = None) -> web.Response:
    lang = _lang(request)
    other = "en" if lang == "vi" else "vi"
    nav = "".join(f'<a href="{path}" class="{"cur" if key == current else ""}">{t(lang, key)}</a>'
                  for key, path in (("fleet", "/"), ("queues", "/queues"), ("lockers", "/lockers"),
                                    ("commands", "/commands")))
    query = dict(request.query)
    query["lang"] = other
    toggle = f'<a class="lang" href="?{esc("&".join(f"{k}={v}" for k, v in query.items()))}">{"English" if other == "en" else "Tiếng Việt"}</a>'
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    text = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">{meta}'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{t(lang, "title")}</title>'
            f'<style>{STYLE}</style></head><body><header><strong>{t(lang, "title")}</strong>{nav}{toggle}</header>'
            f'<main>{body}</main></body></html>')
    response = web.Response(text=text, content_type="text/html")
    if "lang" in request.query:
        response.set_cookie("lang", lang, max_age=365 * 86400)
    return response


def table(lang: str, columns: list[tuple[str, str]], rows: list[list[str]], csv_href: str | None = None) -> str:
    """columns: (text key, css class); rows: already-escaped cell HTML."""
    head = "".join(f"<th>{t(lang, key)}</th>" for key, _ in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not rows:
        body = f'<tr><td colspan="{len(columns)}"><small>{t(lang, "none")}</small></td></tr>'
    link = f' <a href="{esc(csv_href)}"><small>{t(lang, "csv")}</small></a>' if csv_href else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{link}"


# -- data access ---------------------------------------------------------------------------
class AsyncDb:
    """One shared async connection for the web side, reopened after a failure."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self._conn: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def run(self, func, *args):
        async with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=5)
                    return await func(self._conn, *args)
                except psycopg.OperationalError:
                    await self.close()
                    if attempt == 2:
                        raise

    async def ping(self) -> bool:
        try:
            await self.run(lambda conn: conn.execute("SELECT 1"))
            return True
        except psycopg.Error:
            return False

    async def close(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None


def _respond(request: web.Request, rows: list[dict], name: str) -> web.Response:
    if request.query.get("format") == "csv":
        return csv_response(rows, name)
    return web.json_response(rows, dumps=lambda obj: json.dumps(obj, ensure_ascii=False, default=str))


def csv_response(rows: list[dict], name: str) -> web.Response:
    out = io.StringIO()
    columns = list(rows[0].keys()) if rows else []
    for row in rows:
        columns += [k for k in row if k not in columns]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v for k, v in row.items()})
    return web.Response(body=("\ufeff" + out.getvalue()).encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _int_arg(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"{name} must be an integer, got {raw!r}"}),
                                 content_type="application/json") from None
    return max(lo, min(hi, value))


def _day_arg(request: web.Request, tz: ZoneInfo) -> dt.date:
    raw = request.query.get("day")
    if not raw:
        return queries.local_day(tz)
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"day must be YYYY-MM-DD, got {raw!r}"}),
                                 content_type="application/json") from None


# -- handlers ------------------------------------------------------------------------------
class Handlers:
    def __init__(self, central):
        self.c = central          # CentralApp (service.py): .db, .tz, .consumer_stats(), .send_command()
        self._pending: dict[str, dict] = {}

    async def health(self, request):
        db_ok = await self.c.db.ping()
        broker_ok = self.c.broker_ok()
        return web.json_response({"ok": db_ok and broker_ok, "db": db_ok, "broker": broker_ok,
                                  "ingest": self.c.consumer_stats()})

    async def devices(self, request):
        rows = await self.c.db.run(queries.devices)
        if request.query.get("full") != "1" and request.query.get("format") != "csv":
            rows = [{k: r[k] for k in ("site", "device", "state", "last_seen", "version", "services")} for r in rows]
        return _respond(request, rows, "devices")

    async def events(self, request):
        site, device = request.query.get("site"), request.query.get("device")
        if not site or not device:
            return _bad("site and device are required: /api/events?site=S&device=D&limit=N")
        limit = _int_arg(request, "limit", 100, 1, MAX_EVENTS)
        return _respond(request, await self.c.db.run(queries.events, site, device, limit), f"events-{site}-{device}")

    async def gaps(self, request):
        site, device = request.query.get("site"), request.query.get("device")
        if not site or not device:
            return _bad("site and device are required")
        return _respond(request, await self.c.db.run(queries.gaps, site, device), f"gaps-{site}-{device}")

    async def alarms(self, request):
        open_only = request.query.get("all") != "1"
        return _respond(request, await self.c.db.run(lambda conn: queries.alarms(conn, open_only=open_only)), "alarms")

    async def queues(self, request):
        day = _day_arg(request, self.c.tz)
        rows = await self.c.db.run(queries.queue_summary, day, request.query.get("site"))
        return _respond(request, rows, f"queues-{day}")

    async def queue_hours(self, request):
        day = _day_arg(request, self.c.tz)
        rows = await self.c.db.run(queries.queue_by_hour, day, self.c.tz, request.query.get("site"))
        return _respond(request, rows, f"queue-hours-{day}")

    async def queue_days(self, request):
        day = _day_arg(request, self.c.tz)
        rows = await self.c.db.run(queries.queue_days, day, 30, request.query.get("site"))
        return _respond(request, rows, f"queue-days-{day}")

    async def lockers(self, request):
        rows = await self.c.db.run(queries.lockers, self.c.tz, time.time())
        return _respond(request, rows, "lockers")

    # -- staff commands (token with a role; a door open needs a second confirmation) --
    async def command(self, request):
        staff = self.c.staff_for(request.headers.get("Authorization", ""))
        if staff is None:
            return _bad("a staff token with the operator role is required (Authorization: Bearer TOKEN)", 403)
        try:
            body = await request.json()
        except ValueError:
            return _bad("body must be JSON")
        status, payload = await self._command_step(staff, body)
        return web.json_response(payload, status=status)

    async def _command_step(self, staff: str, body) -> tuple[int, dict]:
        """One step of a staff command: (202, confirm token) for a door opening, else send it."""
        if not isinstance(body, dict):
            return 400, {"error": "body must be a JSON object"}
        if body.get("confirm"):
            pending = self._pending.pop(str(body["confirm"]), None)
            if pending is None or pending["staff"] != staff or pending["expires"] < time.monotonic():
                return 409, {"error": "unknown or expired confirmation"}
            body = pending["request"]
        else:
            missing = [k for k in ("site", "device", "service", "type") if not isinstance(body.get(k), str) or not body[k]]
            if missing:
                return 400, {"error": f"missing or non-string field(s): {', '.join(missing)}"}
            if not isinstance(body.get("args", {}), dict):
                return 400, {"error": "args must be a JSON object"}
            if body["type"] in NEEDS_CONFIRM:
                token = secrets.token_urlsafe(12)
                self._pending = {k: v for k, v in self._pending.items() if v["expires"] > time.monotonic()}
                self._pending[token] = {"staff": staff, "request": body, "expires": time.monotonic() + CONFIRM_TTL_S}
                return 202, {"confirm": token, "expires_in": CONFIRM_TTL_S,
                             "message": f"confirm {body['type']} on {body['site']}/{body['device']}/{body['service']}"}
        try:
            cmd, result = await self.c.send_command(staff, body)
        except Exception as err:  # CommandError, ConfigError (no key): reported to the caller
            return 502, {"error": str(err)}
        return 200, {"id": cmd["id"], "result": result}

    async def commands_page(self, request):
        """Staff form for remote commands; a door opening shows a second confirmation step."""
        lang, tz = _lang(request), self.c.tz
        notice, form = "", dict(request.query)
        if request.method == "POST":
            form = {k: str(v) for k, v in (await request.post()).items()}
            staff = self.c.staff_for(form.get("token", ""))
            if staff is None:
                notice = f'<p class="alarm">{t(lang, "need_role")}</p>'
            else:
                try:
                    body = {"confirm": form["confirm"]} if form.get("confirm") else {
                        "site": form.get("site", ""), "device": form.get("device", ""),
                        "service": form.get("service", ""), "type": form.get("type", ""),
                        "args": json.loads(form.get("args") or "{}")}
                except ValueError as err:
                    body, notice = None, f'<p class="alarm">args: {esc(err)}</p>'
                if body is not None:
                    status, answer = await self._command_step(staff, body)
                    if status == 202:
                        return page(request, "commands", self._confirm_form(lang, form, answer))
                    cls = "" if status == 200 and answer.get("result", {}).get("ok") else "alarm"
                    notice = f'<p class="{cls}"><b>{status}</b> {esc(json.dumps(answer, ensure_ascii=False))}</p>'
        recent = await self.c.db.run(lambda conn: queries.recent_commands(conn, 50))
        rows = [[fmt_time(r["sent_at"], tz), esc(r["actor"]), f'{esc(r["site"])}/{esc(r["device"])}/{esc(r["service"])}',
                 esc(r["type"]), f'<small>{esc(json.dumps(r["args"], ensure_ascii=False))}</small>',
                 f'<small>{esc(json.dumps(r["result"], ensure_ascii=False)) if r["result"] else "–"}</small>'] for r in recent]
        fields = "".join(
            f'<label>{t(lang, key)}<br><input name="{name}" value="{esc(form.get(name, default))}"></label> '
            for key, name, default in (("site", "site", ""), ("device", "device", ""), ("services", "service", "locker"),
                                       ("type", "type", "status"), ("args", "args", "{}")))
        body = (f'<h2>{t(lang, "commands")}</h2>{notice}<form method="post" action="/commands" class="cmd">'
                f'<label>{t(lang, "token")}<br><input type="password" name="token" value="{esc(form.get("token", ""))}"></label> '
                f'{fields}<button>{t(lang, "send")}</button></form><h2>{t(lang, "recent")}</h2>' +
                table(lang, [("time", ""), ("staff", ""), ("device", ""), ("type", ""), ("args", ""), ("result", "")], rows))
        return page(request, "commands", body)

    @staticmethod
    def _confirm_form(lang: str, form: dict, answer: dict) -> str:
        return (f'<h2 class="alarm">{t(lang, "confirm_q")}</h2><p>{esc(answer["message"])} '
                f'<code>{esc(form.get("args", ""))}</code></p><form method="post" action="/commands">'
                f'<input type="hidden" name="token" value="{esc(form.get("token", ""))}">'
                f'<input type="hidden" name="confirm" value="{esc(answer["confirm"])}">'
                f'<button class="danger">{t(lang, "confirm")}</button> <a href="/commands">{t(lang, "cancel")}</a></form>')

    # -- pages --
    async def fleet_page(self, request):
        lang, tz, now = _lang(request), self.c.tz, time.time()
        devices = await self.c.db.run(queries.devices)
        alarms = await self.c.db.run(queries.alarms)
        rows = []
        for d in devices:
            services = " ".join(f'<span class="badge {esc(v)}">{esc(k)}</span>' for k, v in sorted(d["services"].items()))
            since = f'{fmt_time(d["since"], tz)} <small>({fmt_duration(now - d["since"], lang)})</small>' if d["since"] else "–"
            rows.append([esc(d["site"]), f'<a href="/events?site={esc(d["site"])}&device={esc(d["device"])}">{esc(d["device"])}</a>',
                         f'<span class="badge {d["state"]}" data-state="{d["state"]}">{t(lang, d["state"])}</span>',
                         since, fmt_time(d["last_seen"], tz), esc(d["version"]), services,
                         f'<span class="{"alarm" if d["missing"] else ""}">{d["missing"]}</span>',
                         f'<span class="{"alarm" if d["alarms"] else ""}">{d["alarms"]}</span>'])
        online = sum(d["state"] == "online" for d in devices)
        cards = (f'<div class="cards"><div class="card"><b>{online}/{len(devices)}</b>{t(lang, "online")}</div>'
                 f'<div class="card"><b class="{"alarm" if alarms else ""}">{len(alarms)}</b>{t(lang, "open_alarms")}</div>'
                 f'<div class="card"><b>{"✓" if self.c.broker_ok() else "✗"}</b>{t(lang, "broker")}</div></div>')
        alarm_rows = [[esc(a["site"]), esc(a["device"]), f'<span class="alarm">{esc(a["kind"])}</span>', esc(a["subject"]),
                       fmt_time(a["opened_at"], tz)] for a in alarms]
        body = (cards + f'<h2>{t(lang, "fleet")}</h2>' +
                table(lang, [("site", ""), ("device", ""), ("state", ""), ("since", ""), ("last_seen", ""),
                             ("version", ""), ("services", ""), ("missing", ""), ("alarms", "")], rows, "/api/devices?format=csv") +
                f'<h2>{t(lang, "open_alarms")}</h2>' +
                table(lang, [("site", ""), ("device", ""), ("kind", ""), ("subject", ""), ("opened", "")], alarm_rows,
                      "/api/alarms?format=csv"))
        return page(request, "fleet", body, refresh=3)

    async def queues_page(self, request):
        lang, tz = _lang(request), self.c.tz
        day, site = _day_arg(request, tz), request.query.get("site")
        summary = await self.c.db.run(queries.queue_summary, day, site)
        hours = await self.c.db.run(queries.queue_by_hour, day, tz, site)
        days = await self.c.db.run(queries.queue_days, day, 30, site)
        total = sum(r["issued"] for r in summary)
        waiting = sum(r["waiting"] for r in summary)
        served = sum(r["served"] for r in summary)
        cards = (f'<div class="cards"><div class="card"><b>{total}</b>{t(lang, "issued")}</div>'
                 f'<div class="card"><b>{waiting}</b>{t(lang, "waiting")}</div>'
                 f'<div class="card"><b>{served}</b>{t(lang, "served")}</div></div>')
        rows = [[esc(r["site"]), esc(r["queue"] or "–"), str(r["issued"]), str(r["waiting"]), fmt_minutes(r["wait_avg_s"]),
                 fmt_minutes(r["wait_p90_s"]), fmt_minutes(r["service_avg_s"]), str(r["no_shows"]),
                 "–" if r["rating_avg"] is None else f'{r["rating_avg"]:.1f} ({r["ratings"]})'] for r in summary]
        qs = f"day={day}" + (f"&site={site}" if site else "")
        charts = (bar_chart([h["tickets"] for h in hours], [f'{h["hour"]}h' for h in hours], title=t(lang, "by_hour")) +
                  bar_chart([d["tickets"] for d in days], [d["day"][8:10] + "/" + d["day"][5:7] for d in days],
                            title=t(lang, "last_30"), color="#0b3d91") +
                  bar_chart([None if d["wait_avg_s"] is None else d["wait_avg_s"] / 60 for d in days],
                            [d["day"][8:10] + "/" + d["day"][5:7] for d in days], title=t(lang, "wait_30"), color="#bf8700"))
        body = (f'<h2>{t(lang, "queues")} — {day.strftime("%d/%m/%Y")}</h2>' + cards +
                table(lang, [("site", ""), ("queue", ""), ("issued", ""), ("waiting", ""), ("wait_avg", ""), ("wait_p90", ""),
                             ("service_avg", ""), ("no_shows", ""), ("rating", "")], rows, f"/api/queues?{qs}&format=csv") +
                charts + f'<small><a href="/api/queues/hours?{qs}&format=csv">{t(lang, "by_hour")} CSV</a> · '
                         f'<a href="/api/queues/days?{qs}&format=csv">{t(lang, "last_30")} CSV</a></small>')
        return page(request, "queues", body, refresh=30)

    async def lockers_page(self, request):
        lang, tz = _lang(request), self.c.tz
        rows_data = await self.c.db.run(queries.lockers, tz, time.time())
        alarms = [a for a in await self.c.db.run(queries.alarms) if a["service"] in ("locker", "lockers")]
        rows = [[esc(r["site"]), esc(r["device"]), str(r["compartments"]), str(r["occupied"]), str(r["waiting"]),
                 f'<span class="{"alarm" if r["expiring"] else ""}">{r["expiring"]}</span>',
                 f'<span class="{"alarm" if r["open_doors"] else ""}">{r["open_doors"]}</span>',
                 str(r["collected_overnight"])] for r in rows_data]
        alarm_rows = [[esc(a["site"]), esc(a["device"]), f'<span class="alarm">{esc(a["kind"])}</span>', esc(a["subject"]),
                       fmt_time(a["opened_at"], tz)] for a in alarms]
        body = (f'<h2>{t(lang, "lockers")}</h2>' +
                table(lang, [("site", ""), ("device", ""), ("compartments", ""), ("occupied", ""), ("results_waiting", ""),
                             ("expiring", ""), ("open_doors", ""), ("collected", "")], rows, "/api/lockers?format=csv") +
                f'<h2>{t(lang, "open_alarms")}</h2>' +
                table(lang, [("site", ""), ("device", ""), ("kind", ""), ("subject", ""), ("opened", "")], alarm_rows))
        return page(request, "lockers", body, refresh=10)

    async def events_page(self, request):
        lang, tz = _lang(request), self.c.tz
        site, device = request.query.get("site", ""), request.query.get("device", "")
        events = await self.c.db.run(queries.events, site, device, 200)
        gaps = await self.c.db.run(queries.gaps, site, device)
        rows = [[fmt_time(e.get("ts"), tz), str(e.get("seq")), esc(e.get("service")), esc(e.get("type")),
                 f'<small>{esc(json.dumps({k: v for k, v in e.items() if k not in ("id", "seq", "ts", "type", "service")}, ensure_ascii=False))}</small>']
                for e in events]
        gap_rows = [[str(g["first_missing"]), str(g["last_missing"]), _recovery_text(lang, g, tz)] for g in gaps]
        qs = f"site={site}&device={device}"
        body = (f'<h2>{t(lang, "events")}: {esc(site)}/{esc(device)}</h2>' +
                table(lang, [("time", ""), ("missing", ""), ("services", ""), ("type", ""), ("events", "")], rows,
                      f"/api/events?{qs}&limit={MAX_EVENTS}&format=csv").replace(f"<th>{t(lang, 'missing')}</th>", "<th>seq</th>", 1) +
                f'<h2>{t(lang, "gaps")}</h2>' +
                f"<table><tr><th>seq</th><th>…</th><th>{t(lang, 'recovery')}</th></tr>" +
                "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in gap_rows) + "</table>")
        return page(request, "fleet", body)


def _recovery_text(lang: str, gap: dict, tz: ZoneInfo) -> str:
    """A gap's recovery state: unrecoverable, resend requested at …, or nothing yet."""
    if gap.get("unrecoverable"):
        return f'<span class="alarm">{t(lang, "unrecoverable")}</span>'
    parts = []
    if gap.get("requested_at"):
        parts.append(f'{t(lang, "requested")}: {fmt_time(gap["requested_at"], tz)} (×{gap["requests"]})')
    if gap.get("lost"):
        parts.append(f'{gap["lost"]} seq {t(lang, "lost")}')
    return esc(" · ".join(parts)) or "–"


def make_app(central) -> web.Application:
    h = Handlers(central)
    app = web.Application(client_max_size=64 * 1024)
    app.add_routes([
        web.get("/api/health", h.health), web.get("/api/devices", h.devices), web.get("/api/events", h.events),
        web.get("/api/gaps", h.gaps), web.get("/api/alarms", h.alarms), web.get("/api/queues", h.queues),
        web.get("/api/queues/hours", h.queue_hours), web.get("/api/queues/days", h.queue_days),
        web.get("/api/lockers", h.lockers), web.post("/api/cmd", h.command),
        web.get("/", h.fleet_page), web.get("/queues", h.queues_page), web.get("/lockers", h.lockers_page),
        web.get("/events", h.events_page), web.get("/commands", h.commands_page), web.post("/commands", h.commands_page),
    ])
    return app
