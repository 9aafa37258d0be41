"""Who may reach what: the JSON error answer for every refusal, the staff login check for the desk
screens (with the Origin check on a state change), and the pickup session kept to the kiosk's own
screen."""

from __future__ import annotations

import json
from urllib.parse import quote, urlsplit

from aiohttp import web

from edge.errors import EdgeError
from edge.kiosk import messages
from edge.kiosk.flows import SessionError
from edge.kiosk.staff import COOKIE, is_loopback
from edge.kiosk.web.common import STAFF, SVC


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
                check_origin(request)
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


def check_origin(request: web.Request) -> None:
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
