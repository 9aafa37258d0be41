"""The dashboard's door: who is asking (bearer token or login session), CSRF checks, headers.

Open without a login: `/api/health` (no fleet data), `/login`, `/static/…` and the citizens' rating
page `/danh-gia` (edge.central.web.ratings). Everything else
needs `Authorization: Bearer TOKEN` (a token from the staff file) or a session cookie made by
the login page. Pages without either redirect to the login page; APIs answer 401.
"""

from __future__ import annotations

import hmac
import logging
from urllib.parse import urlencode

import psycopg
from aiohttp import web

from edge.central import auth
from edge.central.web import errors
from edge.central.web.common import CENTRAL_KEY, CSRF_KEY, STAFF_KEY, is_https, lang_of, t

log = logging.getLogger(__name__)
SESSION_COOKIE = "edge_session"
# /danh-gia: the citizens' rating page (edge.central.web.ratings), reached from a receipt's QR code.
OPEN_PATHS = ("/api/health", "/login", "/danh-gia", "/danh-gia/ma", "/danh-gia/qr")
# No script or style from anywhere but this server, no framing, forms post only here.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


async def identify(request: web.Request) -> auth.Staff | None:
    """The staff member behind a request (sets request[STAFF_KEY]/[CSRF_KEY]), or None."""
    central = request.app[CENTRAL_KEY]
    token = _bearer(request)
    if token is not None:
        return central.staff.by_token(token)
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    found = await central.db.run(auth.session, session_id)
    if found is None:
        return None
    staff_id, csrf = found
    login = central.staff.logins.get(staff_id)
    if login is None:                 # removed from the staff file since: the session ends
        return None
    request[CSRF_KEY] = csrf
    return login.staff


@web.middleware
async def guard(request: web.Request, handler):
    try:
        return await _guarded(request, handler)
    except web.HTTPException as err:            # a page shows its error translated, inside the page
        page = errors.page_for(request, err) if err.status >= 400 else None
        if page is None:
            raise
        return _headers(page)
    except psycopg.OperationalError as err:     # PostgreSQL away: say so, the page's script retries
        log.warning("central: %s %s: database unavailable: %s", request.method, request.path, err)
        if request.path.startswith("/api/"):
            return _headers(web.json_response({"error": "database unavailable, retrying"}, status=503))
        lang = lang_of(request)
        return _headers(web.Response(text=t(lang, "db_down"), status=503, content_type="text/plain"))


async def _guarded(request: web.Request, handler):
    path = request.path
    if path in OPEN_PATHS or path.startswith("/static/"):
        return _headers(await handler(request))
    staff = await identify(request)
    if staff is None:
        if path.startswith("/api/"):
            raise web.HTTPUnauthorized(text='{"error": "login or Authorization: Bearer TOKEN required"}',
                                       content_type="application/json",
                                       headers={"WWW-Authenticate": 'Bearer realm="edge-central"'})
        target = path + ("?" + request.query_string if request.query_string else "")
        raise web.HTTPFound("/login?" + urlencode({"next": target}))
    request[STAFF_KEY] = staff
    return _headers(await handler(request))


def _headers(response: web.StreamResponse) -> web.StreamResponse:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.content_type == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def check_csrf(request: web.Request, submitted: str | None) -> bool:
    """A form or fetch from a signed-in browser must carry the session's CSRF token. A bearer
    token is not sent by browsers on their own, so it needs none."""
    if _bearer(request) is not None:
        return True
    expected = request.get(CSRF_KEY)
    return bool(expected and submitted and hmac.compare_digest(expected, submitted))


def set_session_cookie(response: web.StreamResponse, request: web.Request, session_id: str) -> None:
    response.set_cookie(SESSION_COOKIE, session_id, max_age=auth.SESSION_S, httponly=True, samesite="Strict",
                        secure=is_https(request), path="/")


def require_operator(request: web.Request, site: str | None = None) -> str | None:
    """None when the signed-in staff may command (that site), else the text key of the refusal."""
    staff: auth.Staff = request[STAFF_KEY]
    if not staff.may_command:
        return "need_operator"
    if site is not None and not staff.may_see(site):
        return "not_your_site"
    return None
