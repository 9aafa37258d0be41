"""The HTML pages, the browser icon, the strings (`/api/i18n`), the index page's list of screens and
the connection check every screen polls (`/api/ping`, which also says the office's time zone)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web

from edge.kiosk import i18n
from edge.kiosk.web.common import STATIC_DIR, SVC
from edge.kiosk.web.guard import staff_only

if TYPE_CHECKING:
    from edge.kiosk.service import KioskService

PAGES = {"/": "index.html", "/kiosk": "kiosk.html", "/reception": "reception.html",
         "/counter": "counter.html", "/display": "display.html", "/loading": "loading.html",
         "/status": "status.html", "/login": "login.html"}
# Desk screens for staff only: behind a staff login when the kiosk is on the LAN (edge.kiosk.staff).
STAFF_PAGES = ("/reception", "/counter", "/loading", "/status")
OFFICE_UTC_OFFSET_H = 7.0  # Vietnam, when this device runs no pager (whose [pager] utc_offset_h says it)


def add_routes(app: web.Application) -> None:
    for path, page in PAGES.items():
        app.router.add_get(path, staff_only(_page(page), page=True) if path in STAFF_PAGES else _page(page))
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    app.router.add_get("/api/i18n", get_i18n)
    app.router.add_get("/api/ping", ping)  # the screens' connection banner (common.js) polls this
    app.router.add_get("/favicon.ico", favicon)  # every browser asks for it: the device's icon, not a 404 in the log
    app.router.add_get("/api/screens", screens)  # the index page's list (every counter)


def _page(name: str):
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-store"})
    return handler


async def favicon(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "favicon.svg", headers={"Content-Type": "image/svg+xml",
                                                                 "Cache-Control": "max-age=86400"})


async def ping(request: web.Request) -> web.Response:
    # The office's time zone rides along: the screens show office time, not the machine's (often UTC).
    return web.json_response({"ok": True, "utc_offset_h": office_utc_offset_h(request.app[SVC])},
                             headers={"Cache-Control": "no-store"})


def office_utc_offset_h(svc: "KioskService") -> float:
    """Hours from UTC of the office's clock: the pager's configured `utc_offset_h` (also what the
    queue day and the dashboard use), else Vietnam's."""
    pager = svc.ctx.pager()
    return pager.utc_offset_h() if pager is not None else OFFICE_UTC_OFFSET_H


async def screens(request: web.Request) -> web.Response:
    """The screens of this device as paths (the index page lists them), with the display's voice setting."""
    svc = request.app[SVC]
    paths = {name: urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")
             for name, url in svc.screen_urls().items()}
    return web.json_response({"screens": paths, "voice": svc.voice_mode, "highlight_s": svc.highlight_s})


async def get_i18n(request: web.Request) -> web.Response:
    lang = request.query.get("lang", request.app[SVC].language)
    return web.json_response(i18n.table(lang if lang in i18n.LANGUAGES else "vi"))
