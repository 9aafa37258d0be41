"""`/login` and `/logout`: staff id + PIN against the staff file, lockout kept in PostgreSQL.

Before there is a session the login form is protected by a double-submit token: a random value
in a cookie and the same value in the form (another site can post a form but not read or set
this server's cookie).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import math
import re
import secrets
import time

from aiohttp import web

from edge.central import auth
from edge.central.web import guard
from edge.central.web.common import CENTRAL_KEY, STAFF_KEY, is_https, lang_of, render, t

log = logging.getLogger(__name__)
LOGIN_CSRF_COOKIE = "edge_login_csrf"
SAFE_NEXT = re.compile(r"/[A-Za-z0-9/_.~%?&=+-]*")


def _safe_next(value: str | None) -> str:
    """Only a path on this server (never `//other.host` or `https://…`) after a login."""
    # Only plain URL characters: browsers drop tabs and newlines, so "/\t/evil" would become "//evil".
    if value and SAFE_NEXT.fullmatch(value) and not value.startswith("//"):
        return value
    return "/"


def _form(request: web.Request, *, error: str | None = None, staff_id: str = "", status: int = 200,
          next_path: str | None = None) -> web.Response:
    # The same token while the cookie lives: a second GET (another tab, the browser's favicon
    # request landing here) must not invalidate the form already on screen.
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not (20 <= len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()):
        token = secrets.token_urlsafe(24)
    response = render(request, "login.html", "login", {
        "form_csrf": token, "error": error, "staff_id": staff_id[:auth.STAFF_ID_MAX],
        "next": _safe_next(next_path or request.query.get("next"))}, status=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="Strict",
                        secure=is_https(request), path="/login")
    return response


async def login_page(request: web.Request) -> web.Response:
    if await guard.identify(request) is not None and request.method == "GET":
        raise web.HTTPFound(_safe_next(request.query.get("next")))
    return _form(request)


async def login_submit(request: web.Request) -> web.Response:
    central, lang = request.app[CENTRAL_KEY], lang_of(request)
    form = await request.post()
    staff_id = str(form.get("staff_id", "")).strip()[:auth.STAFF_ID_MAX]
    pin = str(form.get("pin", ""))[:256]
    again = functools.partial(_form, request, next_path=str(form.get("next", "")))   # the form, shown again
    cookie, sent = request.cookies.get(LOGIN_CSRF_COOKIE, ""), str(form.get("csrf", ""))
    if not cookie or not hmac.compare_digest(cookie, sent):
        return again(error=t(lang, "login_csrf"), staff_id=staff_id, status=403)
    if not staff_id:
        return again(error=t(lang, "login_failed"), status=401)
    until = await central.db.run(auth.locked_until, staff_id)
    if until is not None:
        minutes = max(1, math.ceil((until - time.time()) / 60))
        return again(error=t(lang, "login_locked", minutes=minutes), staff_id=staff_id, status=429)
    staff = await asyncio.to_thread(auth.verify_login, central.staff, staff_id, pin)
    if staff is None:
        failures = await central.db.run(auth.record_failure, staff_id)
        log.warning("central: failed login for staff id %r (%d in a row)", staff_id, failures)
        if failures >= auth.MAX_FAILURES or await central.db.run(auth.locked_until, staff_id):
            return again(error=t(lang, "login_locked", minutes=auth.LOCKOUT_S // 60), staff_id=staff_id, status=429)
        return again(error=t(lang, "login_failed"), staff_id=staff_id, status=401)
    await central.db.run(auth.clear_failures, staff_id)
    session_id, _ = await central.db.run(auth.new_session, staff_id)
    log.info("central: %s (%s) signed in", staff.id, staff.role)
    response = see_other(_safe_next(str(form.get("next", "")) or None))
    guard.set_session_cookie(response, request, session_id)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


async def logout(request: web.Request) -> web.Response:
    form = await request.post()
    if not guard.check_csrf(request, str(form.get("csrf", ""))):
        raise web.HTTPForbidden(text="CSRF token missing or wrong")
    session_id = request.cookies.get(guard.SESSION_COOKIE)
    if session_id:
        await request.app[CENTRAL_KEY].db.run(auth.end_session, session_id)
    log.info("central: %s signed out", request[STAFF_KEY].id)
    response = see_other("/login")
    response.del_cookie(guard.SESSION_COOKIE, path="/")
    return response


def see_other(location: str) -> web.Response:
    """A 303 redirect that can carry cookies (a raised HTTPException should not)."""
    return web.Response(status=303, headers={"Location": location})


def add_routes(app: web.Application) -> None:
    app.add_routes([web.get("/login", login_page), web.post("/login", login_submit), web.post("/logout", logout)])
