"""Staff login for the desk screens (`/login`, `/api/staff/*`): PIN check, lockout, session cookie.
The rules themselves (hashes, lockouts, sessions) are in edge.kiosk.staff."""

from __future__ import annotations

import asyncio

from aiohttp import web

from edge.errors import EdgeError
from edge.kiosk.staff import COOKIE, LoginRefused
from edge.kiosk.web.common import SVC, read_body, text_field
from edge.kiosk.web.guard import check_origin, served_over_tls


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/staff/me", staff_me)
    app.router.add_post("/api/staff/login", staff_login)
    app.router.add_post("/api/staff/logout", staff_logout)


async def staff_me(request: web.Request) -> web.Response:
    auth = request.app[SVC].staff
    session = auth.session(request.cookies.get(COOKIE))
    return web.json_response({"required": auth.required, "configured": bool(auth.pins),
                              "staff": session.staff if session else None})


async def staff_login(request: web.Request) -> web.Response:
    svc = request.app[SVC]
    auth = svc.staff
    check_origin(request)
    if not auth.pins:
        raise EdgeError("staff login is not configured on this device ([kiosk] staff_pins)")
    body = await read_body(request)
    staff, pin = text_field(body, "staff", 64).strip(), text_field(body, "pin", 32)
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
    check_origin(request)
    session = svc.staff.logout(request.cookies.get(COOKIE))
    if session is not None:
        with svc.ctx.store.transaction() as tx:
            tx.audit(f"staff:{session.staff}", "staff.logout", remote=request.remote or "?")
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response
