"""The screens' web app: pages, JSON endpoints and server-sent event streams (aiohttp).

Built by `build_app(service)` and run by `KioskService` inside the supervisor's event loop. The
pickup journey goes through `service.flow` (edge.kiosk.flows); the desk screens call the pager,
qr and locker peers directly. Every refusal is a JSON answer naming what was wrong.
"""

from __future__ import annotations

import asyncio
import dataclasses
import glob
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

from aiohttp import web

from edge.errors import EdgeError
from edge.kiosk import i18n, messages, voice
from edge.kiosk.flows import SessionError
from edge.kiosk.receipts import require_dossier_code
from edge.kiosk.staff import COOKIE, LoginRefused, is_loopback
from edge.qr.codes import PROCEDURE_KINDS
from edge.safejson import UnsafeJson, loads_object

if TYPE_CHECKING:
    from edge.kiosk.service import KioskService

P = TypeVar("P")  # a peer's protocol (edge.peers)
STATIC_DIR = Path(__file__).parent / "static"
PAGES = {"/": "index.html", "/kiosk": "kiosk.html", "/reception": "reception.html",
         "/counter": "counter.html", "/display": "display.html", "/loading": "loading.html",
         "/status": "status.html", "/login": "login.html"}
# Desk screens for staff only: behind a staff login when the kiosk is on the LAN (edge.kiosk.staff).
STAFF_PAGES = ("/reception", "/counter", "/loading", "/status")
SSE_KEEPALIVE_S = 15.0
PAGER_POLL_S = 0.5  # the pager view is polled for the display's stream (no callbacks to register)
# The pager actions a counter screen may ask for; the browser's JSON is checked by the pager's
# `commands`, the same schema as over MQTT (PagerService.action). A resume is a pause with paused=false.
PAGER_ACTIONS = ("call_next", "recall", "no_show", "transfer", "done", "pause", "rate", "checkin")
MAX_BODY_BYTES = 16 * 1024
SVC = web.AppKey("svc", object)  # the KioskService behind the app
# The open event stream of a request (RequestKey is aiohttp >= 3.12; a plain key before).
SSE = web.RequestKey("sse", web.StreamResponse) if hasattr(web, "RequestKey") else "sse"
STAFF = web.RequestKey("staff", str) if hasattr(web, "RequestKey") else "staff"  # the logged-in staff id


class Latest:
    """The latest value and a version, with waiters woken on each change (for event streams)."""

    def __init__(self):
        self.value, self.version = None, 0
        self._event = asyncio.Event()

    def publish(self, value) -> None:
        self.value, self.version = value, self.version + 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def next(self, after: int, timeout_s: float):
        if self.version <= after:
            try:
                await asyncio.wait_for(self._event.wait(), timeout_s)
            except asyncio.TimeoutError:
                pass
        return self.value, self.version


# -- the web app -------------------------------------------------------------------------------------

def build_app(svc: "KioskService") -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[error_middleware])
    app[SVC] = svc
    for path, page in PAGES.items():
        app.router.add_get(path, staff_only(_page(page), page=True) if path in STAFF_PAGES else _page(page))
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    r = app.router
    r.add_get("/api/i18n", get_i18n)
    r.add_get("/api/ping", ping)  # the screens' connection banner (common.js) polls this
    r.add_get("/favicon.ico", favicon)  # every browser asks for it: the device's icon, not a 404 in the log
    r.add_get("/api/screens", screens)  # the index page's list (every counter)
    r.add_get("/api/display/voice", voice.handler(lambda request: request.app[SVC]))
    # The citizen's pickup session belongs to the kiosk's own screen: its id (which cancels the
    # session or types PINs into it) and the live camera picture are served to no other machine.
    r.add_get("/api/kiosk", kiosk_screen_only(kiosk_view))
    r.add_get("/api/kiosk/events", kiosk_screen_only(_quiet_disconnect(kiosk_events)))
    r.add_get("/api/kiosk/layout", kiosk_layout)
    for step, path in (("start", "start"), ("code", "code"), ("use_pin", "use-pin"), ("pin", "pin"),
                       ("cancel", "cancel"), ("lang", "lang"),
                       ("touch", "touch")):  # touch: still typing on the keypad, the session waits
        r.add_post(f"/api/kiosk/{path}", kiosk_screen_only(kiosk_step(step)))
    r.add_get("/api/kiosk/camera.jpg", kiosk_screen_only(kiosk_camera))  # the live picture, at the face step only
    r.add_post("/api/reception/scan", staff_only(reception_scan))
    r.add_post("/api/reception/issue", staff_only(reception_issue))
    r.add_get("/api/reception/events", staff_only(_quiet_disconnect(reception_events)))
    r.add_get("/api/pager", pager_view)  # the wall display's data: open, like /display
    r.add_get("/api/pager/events", _quiet_disconnect(pager_events))
    r.add_post("/api/pager/{action}", staff_only(pager_action))
    r.add_post("/api/loading", staff_only(loading_submit))
    r.add_get("/api/status", staff_only(status_view))
    r.add_get("/api/staff/me", staff_me)
    r.add_post("/api/staff/login", staff_login)
    r.add_post("/api/staff/logout", staff_logout)
    return app


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Every failure becomes a JSON answer that names what was wrong; nothing leaks a traceback."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except SessionError as err:
        return web.json_response({"ok": False, "error": str(err), "stale": True}, status=409)
    except (EdgeError, ValueError, TypeError, KeyError) as err:
        request.app[SVC].log.info("kiosk: %s %s refused: %s", request.method, request.path, err)
        text = str(err) or type(err).__name__
        # The raw text stays for logs and API users; screens show the translated code (edge.kiosk.messages).
        return web.json_response({"ok": False, "error": text, **messages.explain(text)}, status=400)


# -- staff login ------------------------------------------------------------------------------------

def staff_only(handler, page: bool = False):
    """Let a request through only with a live staff session, when staff login is on (LAN, or asked for).

    The cookie is SameSite=Strict, so another site's page cannot send it; a POST must also carry this
    site's own Origin (defence in depth against a browser or proxy that drops SameSite).
    """
    async def wrapped(request: web.Request) -> web.StreamResponse:
        auth = request.app[SVC].staff
        if not auth.required:
            session = auth.session(request.cookies.get(COOKIE))  # attribution only, when someone logged in
        else:
            if request.method not in ("GET", "HEAD"):
                _check_origin(request)
            session = auth.session(request.cookies.get(COOKIE))
            if session is None:
                if page:
                    raise web.HTTPSeeOther("/login?next=" + quote(request.path_qs, safe=""))
                request.app[SVC].log.info("kiosk: %s %s refused: no staff login (from %s)",
                                          request.method, request.path, request.remote)
                return web.json_response({"ok": False, "error": "staff.login_required", "login": True}, status=401)
        if session is not None:
            request[STAFF] = session.staff
        return await handler(request)
    wrapped.__name__ = handler.__name__
    return wrapped


def from_kiosk_screen(request: web.Request) -> bool:
    """The kiosk's own touch screen: a browser on this machine, not a request relayed by a proxy
    (a TLS proxy on the Pi would make every LAN client look local)."""
    relayed = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    return is_loopback(request.remote or "") and not relayed


def served_over_tls(request: web.Request) -> bool:
    """HTTPS here, or through a TLS proxy on this machine that says so: cookies get `Secure`."""
    if request.secure:
        return True
    return is_loopback(request.remote or "") and request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def kiosk_screen_only(handler):
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not from_kiosk_screen(request):
            request.app[SVC].log.warning("kiosk: %s %s from %s refused: the pickup session is the kiosk screen's",
                                         request.method, request.path, request.remote)
            return web.json_response({"ok": False, "error": "kiosk.screen_only"}, status=403)
        return await handler(request)
    return guarded


def _check_origin(request: web.Request) -> None:
    """A state-changing staff request must come from a page of this very server."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        raise web.HTTPForbidden(text=json.dumps({"ok": False, "error": "staff.bad_origin"}),
                                content_type="application/json")
    parts = urlsplit(origin)
    if parts.scheme != request.scheme or parts.netloc.lower() != request.host.lower():
        request.app[SVC].log.warning("kiosk: %s %s refused: Origin %r is not this server (%r)",
                                     request.method, request.path, origin, request.host)
        raise web.HTTPForbidden(text=json.dumps({"ok": False, "error": "staff.bad_origin"}),
                                content_type="application/json")


def _actor(request: web.Request) -> str:
    staff = request.get(STAFF)
    return f"staff:{staff}" if staff else "kiosk"


async def staff_me(request: web.Request) -> web.Response:
    auth = request.app[SVC].staff
    session = auth.session(request.cookies.get(COOKIE))
    return web.json_response({"required": auth.required, "configured": bool(auth.pins),
                              "staff": session.staff if session else None})


async def staff_login(request: web.Request) -> web.Response:
    svc = request.app[SVC]
    auth = svc.staff
    _check_origin(request)
    if not auth.pins:
        raise EdgeError("staff login is not configured on this device ([kiosk] staff_pins)")
    body = await _body(request)
    staff, pin = _text(body, "staff", 64).strip(), _text(body, "pin", 32)
    remote = request.remote or "?"
    try:
        auth.refuse_if_locked(staff, remote)
        ok = await asyncio.to_thread(auth.pin_matches, staff, pin)  # PBKDF2 off the event loop
        session = auth.record(staff, remote, ok)
    except LoginRefused as err:
        locked = err.retry_after_s is not None
        with svc.ctx.store.transaction() as tx:
            tx.audit("kiosk", "staff.login_refused", staff=staff, remote=remote, locked=locked)
        svc.log.warning("kiosk: staff login refused for %r from %s: %s", staff, remote, err)
        if locked:
            return web.json_response({"ok": False, "error": "staff.locked",
                                      "minutes": max(1, round(err.retry_after_s / 60))}, status=429,
                                     headers={"Retry-After": str(int(err.retry_after_s) + 1)})
        return web.json_response({"ok": False, "error": "staff.wrong"}, status=401)
    with svc.ctx.store.transaction() as tx:
        tx.audit(f"staff:{staff}", "staff.login", remote=remote)
    svc.log.info("kiosk: staff %r logged in from %s", staff, remote)
    response = web.json_response({"ok": True, "staff": staff})
    response.set_cookie(COOKIE, session.token, max_age=int(auth.session_s), path="/", httponly=True,
                        samesite="Strict", secure=served_over_tls(request))
    return response


async def staff_logout(request: web.Request) -> web.Response:
    svc = request.app[SVC]
    _check_origin(request)
    session = svc.staff.logout(request.cookies.get(COOKIE))
    if session is not None:
        with svc.ctx.store.transaction() as tx:
            tx.audit(f"staff:{session.staff}", "staff.logout", remote=request.remote or "?")
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


async def favicon(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "favicon.svg", headers={"Content-Type": "image/svg+xml",
                                                                 "Cache-Control": "max-age=86400"})


def _page(name: str):
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-store"})
    return handler


async def _body(request: web.Request) -> dict:
    # safejson, as for MQTT commands: deep nesting (RecursionError), 1e999 and NUL are refused by name
    try:
        return loads_object(await request.read())
    except UnsafeJson as err:
        if err.reason == "not_object":
            raise ValueError("request body must be a JSON object") from err
        raise ValueError(f"request body is not JSON: {err.detail}") from err


def _text(body: dict, key: str, max_len: int = 512, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be text")
    if len(value) > max_len:
        raise ValueError(f"'{key}' is longer than {max_len} characters")
    return value


async def ping(request: web.Request) -> web.Response:
    # The office's time zone rides along: the screens show office time, not the machine's (often UTC).
    return web.json_response({"ok": True, "utc_offset_h": office_utc_offset_h(request.app[SVC])},
                             headers={"Cache-Control": "no-store"})


OFFICE_UTC_OFFSET_H = 7.0  # Vietnam, when this device runs no pager (whose [pager] utc_offset_h says it)


def office_utc_offset_h(svc: "KioskService") -> float:
    """Hours from UTC of the office's clock: the pager's configured `utc_offset_h` (also what the
    queue day and the dashboard use), else Vietnam's."""
    offset = getattr(getattr(svc.ctx.pager(), "config", None), "utc_offset_h", None)
    return float(offset) if isinstance(offset, (int, float)) else OFFICE_UTC_OFFSET_H


async def screens(request: web.Request) -> web.Response:
    """The screens of this device as paths (the index page lists them), with the display's voice setting."""
    svc = request.app[SVC]
    paths = {name: urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")
             for name, url in svc.screen_urls().items()}
    return web.json_response({"screens": paths, "voice": svc.voice_mode, "highlight_s": svc.highlight_s})


async def get_i18n(request: web.Request) -> web.Response:
    lang = request.query.get("lang", request.app[SVC].language)
    return web.json_response(i18n.table(lang if lang in i18n.LANGUAGES else "vi"))


# -- pickup kiosk ---------------------------------------------------------------------------------

async def kiosk_view(request: web.Request) -> web.Response:
    return web.json_response(request.app[SVC].flow.view())


async def kiosk_camera(request: web.Request) -> web.Response:
    """One JPEG of the vision camera while the citizen is at the face step (204 otherwise: never
    a picture of whoever walks by), and only to the kiosk's own browser on this machine: a
    citizen's face never goes over the LAN. The page mirrors it, as a mirror shows a face."""
    svc = request.app[SVC]
    if not is_loopback(request.remote or ""):
        raise web.HTTPForbidden(text=json.dumps({"ok": False, "error": "the camera picture is for this device's own screen"}),
                                content_type="application/json")
    vision = svc.ctx.vision()
    jpeg = vision.preview() if svc.flow.view()["step"] == "face" and vision is not None else None
    if not jpeg:
        return web.Response(status=204, headers={"Cache-Control": "no-store"})
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def kiosk_layout(request: web.Request) -> web.Response:
    """The compartment numbers, so the open one can be shown in place (no occupancy, no codes)."""
    locker = request.app[SVC].ctx.locker()
    ids = list(locker.view()["compartments"]) if locker is not None else []
    return web.json_response({"compartments": ids}, dumps=_dumps)


def kiosk_step(step: str):
    async def handler(request: web.Request) -> web.Response:
        flow = request.app[SVC].flow
        body = await _body(request) if request.can_read_body else {}
        if step == "start":
            view = await flow.start(source="screen")
        elif step == "code":
            view = await flow.submit_code(_text(body, "session", 64), _text(body, "code"))
        elif step == "use_pin":
            view = await flow.use_pin(_text(body, "session", 64))
        elif step == "pin":
            view = await flow.submit_pin(_text(body, "session", 64), _text(body, "pin", 32))
        elif step == "touch":
            view = await flow.touch(_text(body, "session", 64))
        elif step == "cancel":
            view = await flow.cancel(_text(body, "session", 64, required=False))
        else:
            view = flow.set_language(_text(body, "lang", 4))
        return web.json_response(view)
    return handler


async def kiosk_events(request: web.Request) -> web.StreamResponse:
    svc = request.app[SVC]
    stream = await _sse_open(request)
    seen = -1
    while not svc._closing.is_set():
        view = await svc.flow.changed(seen, SSE_KEEPALIVE_S)
        if svc._closing.is_set():
            break
        if view["version"] != seen:
            seen = view["version"]
            await _sse_send(stream, view)
        else:
            await stream.write(b": keepalive\n\n")
    return stream


def _quiet_disconnect(handler):
    """A screen that navigates away closes its event stream: that ends the stream, it is no error."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ConnectionResetError:
            return request.get(SSE) or web.Response(status=204)
    wrapped.__name__ = handler.__name__
    return wrapped


async def _sse_open(request: web.Request) -> web.StreamResponse:
    stream = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                         "X-Accel-Buffering": "no"})
    await stream.prepare(request)
    request[SSE] = stream
    return stream


async def _sse_send(stream: web.StreamResponse, data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, default=str)
    await stream.write(f"data: {text}\n\n".encode())


# -- reception ------------------------------------------------------------------------------------

async def reception_scan(request: web.Request) -> web.Response:
    """A procedure QR (bare code or portal URL) → the catalog entry to show at the desk."""
    svc = request.app[SVC]
    text = _text(await _body(request), "text", 1024)
    try:
        from edge.qr import parse
    except ImportError as err:
        raise EdgeError("the QR parser is not installed") from err
    parsed = parse(text)
    result = {"ok": True, "kind": parsed.kind, "code": parsed.code, "reason": parsed.reason}
    if parsed.kind not in PROCEDURE_KINDS:
        return web.json_response({**result, "ok": False, "error": "reception.not_procedure"})
    qr = svc.ctx.qr()
    entry = qr.catalog_lookup(parsed.code or parsed.fields.get("uuid")) if qr is not None else None
    if not entry:
        return web.json_response({**result, "ok": False, "error": "reception.not_found"})
    result["procedure"] = {**entry, "queue_name": queue_name(svc, entry.get("queue_service")),
                           "queue_known": queue_known(svc, entry.get("queue_service"))}
    result["priorities"] = pager_priorities(svc)
    return web.json_response(result)


async def reception_events(request: web.Request) -> web.StreamResponse:
    """Server-sent procedures as the desk's camera reads them (a typed code goes through /scan)."""
    svc = request.app[SVC]
    stream = await _sse_open(request)
    seen = svc.reception.version
    while not svc._closing.is_set():
        item, version = await svc.reception.next(seen, SSE_KEEPALIVE_S)
        if svc._closing.is_set():
            break
        if version != seen and item is not None:
            await _sse_send(stream, item)
        elif version == seen:
            await stream.write(b": keepalive\n\n")
        seen = version
    return stream


async def reception_issue(request: web.Request) -> web.Response:
    svc = request.app[SVC]
    body = await _body(request)
    pager = _need(svc.ctx.pager(), "pager")
    service = _text(body, "service", 64)
    priority = _text(body, "priority", 64, required=False) or None
    ticket = await pager.issue(service, priority=priority, source="desk")
    with svc.ctx.store.transaction() as tx:
        tx.audit(_actor(request), "reception.issue", service=service, priority=priority, ticket=ticket.get("ticket"))
    return web.json_response({"ok": True, **ticket})


def queue_name(svc: "KioskService", service_id: str | None) -> str | None:
    """The pager service's display name (Vietnamese) for a catalog queue id."""
    entry = _pager_services(svc).get(service_id)
    return entry.get("name") if isinstance(entry, dict) and entry.get("name") else service_id


def queue_known(svc: "KioskService", service_id: str | None) -> bool:
    """True when the pager has a queue for this catalog queue id (else reception cannot issue a card)."""
    return service_id in _pager_services(svc)


def pager_priorities(svc: "KioskService") -> list[str]:
    pager = svc.ctx.pager()
    return pager.priorities() if pager is not None else []


def _pager_services(svc: "KioskService") -> dict:
    """The pager's queues by id ({} when no pager runs here)."""
    pager = svc.ctx.pager()
    return pager.view()["services"] if pager is not None else {}


# -- pager: counter panel and wall display --------------------------------------------------------------

async def pager_view(request: web.Request) -> web.Response:
    return web.json_response(_need(request.app[SVC].ctx.pager(), "pager").view(), dumps=_dumps)


async def pager_events(request: web.Request) -> web.StreamResponse:
    svc = request.app[SVC]
    stream = await _sse_open(request)
    last, idle = None, 0.0
    seen_row, recalled = _last_outbox_row(svc.ctx.store), None
    while not svc._closing.is_set():
        pager = svc.ctx.pager()
        view = pager.view() if pager is not None else {"error": "pager not running"}
        seen_row, recalled = _recalls_since(svc.ctx.store, seen_row, recalled)
        if recalled:  # a recall changes no number on the pager's view: the display hears it from its event
            view = {**view, "recalled": recalled}
        text = _dumps(view)
        if text != last:
            last, idle = text, 0.0
            await stream.write(f"data: {text}\n\n".encode())
        elif idle >= SSE_KEEPALIVE_S:
            idle = 0.0
            await stream.write(b": keepalive\n\n")
        try:
            await asyncio.wait_for(svc._closing.wait(), PAGER_POLL_S)
        except asyncio.TimeoutError:
            idle += PAGER_POLL_S
    return stream


def _last_outbox_row(store) -> int:
    rows = store.query("SELECT max(row_id) AS last FROM outbox")
    return (rows[0]["last"] if rows else None) or 0


def _recalls_since(store, after: int, recalled: dict | None) -> tuple[int, dict | None]:
    """The pager's newest `ticket_recalled` event after outbox row `after` (counter panel, GPIO
    keypad or MQTT alike), as {"ticket", "counter", "id"}; the last one seen otherwise."""
    for row in store.query("SELECT row_id, payload FROM outbox WHERE row_id > ? AND topic = 'pager/event' "
                           "ORDER BY row_id", (after,)):
        after = row["row_id"]
        try:
            event = json.loads(row["payload"])
        except ValueError:
            continue
        if event.get("type") == "ticket_recalled":
            recalled = {"ticket": event.get("ticket"), "counter": event.get("counter"), "id": row["row_id"]}
    return after, recalled


async def pager_action(request: web.Request) -> web.Response:
    svc = request.app[SVC]
    action = request.match_info["action"]
    if action not in PAGER_ACTIONS:
        raise ValueError(f"unknown counter action '{action}' (expected one of {', '.join(PAGER_ACTIONS)})")
    pager = _need(svc.ctx.pager(), "pager")
    args = await _body(request)
    result = await pager.action(action, args)  # checked by the pager's `commands`, as over MQTT
    with svc.ctx.store.transaction() as tx:
        tx.audit(_actor(request), f"counter.{action}", args=args)
    return web.json_response({"ok": True, "result": result}, dumps=_dumps)


# -- staff loading --------------------------------------------------------------------------------

async def loading_submit(request: web.Request) -> web.Response:
    svc = request.app[SVC]
    body = await _body(request)
    locker = _need(svc.ctx.locker(), "locker")
    staff_pin = _text(body, "staff_pin", 32)
    receipt = require_dossier_code(_text(body, "receipt", 64))  # only what the pickup kiosk can find
    size = _text(body, "size", 16, required=False) or None
    pin = (_text(body, "pin", 16, required=False) or "").strip() or None
    # The citizen's mobile for the result-ready SMS: the locker checks it, makes the PIN and sends it.
    phone = (_text(body, "phone", 32, required=False) or "").strip() or None
    days = body.get("deadline_days")
    if days in ("", None):
        days = None
    elif not isinstance(days, int) or isinstance(days, bool):
        raise ValueError("'deadline_days' must be a whole number of days")
    # The locker checks the staff PIN and audits the loading; the kiosk never stores either PIN.
    result = await locker.load(staff_pin, receipt, size, pin=pin, deadline_days=days, phone=phone)
    with svc.ctx.store.transaction() as tx:  # the locker audits the loading itself; this says who was logged in
        tx.audit(_actor(request), "loading.load", receipt=receipt, compartment=result.get("compartment"))
    return web.json_response({"ok": True, **result}, dumps=_dumps)


# -- status -------------------------------------------------------------------------------------------

async def status_view(request: web.Request) -> web.Response:
    return web.json_response(request.app[SVC].device_status(), dumps=_dumps)


def broker_link(store, clock, connected=None) -> dict:
    """The broker link: connected now (None when unknown), messages waiting, the last one acknowledged."""
    rows = store.query("SELECT max(published) AS last FROM outbox")
    last = rows[0]["last"] if rows else None
    return {"connected": None if connected is None else connected(), "pending": store.pending_count(),
            "last_ack_s_ago": None if last is None else round(clock() - last, 1)}


def disk_usage(path: Path) -> dict:
    target = Path(path)
    while not target.exists() and target != target.parent:
        target = target.parent
    usage = shutil.disk_usage(target)
    return {"path": str(target), "free_gb": round(usage.free / 1e9, 2), "used_pct": round(100 * usage.used / usage.total, 1)}


def cpu_temperature(pattern: str = "/sys/class/thermal/thermal_zone*/temp") -> float | None:
    """The hottest thermal zone in °C, or None where the machine has none (a VM, a container)."""
    values = []
    for path in glob.glob(pattern):
        try:
            values.append(int(Path(path).read_text().strip()) / 1000.0)
        except (OSError, ValueError):
            continue
    return max(values) if values else None


# -- helpers ------------------------------------------------------------------------------------------

def _need(peer: P | None, name: str) -> P:
    """The peer, typed (edge.peers), or a clear error when that service does not run here."""
    if peer is None:
        raise EdgeError(f"the {name} service is not running on this device")
    return peer


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _json_default(value):
    if hasattr(value, "__dataclass_fields__"):
        return dataclasses.asdict(value)
    return str(value)

