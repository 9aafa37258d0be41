"""The screens' web app: pages, JSON endpoints and server-sent event streams (aiohttp).

Built by `build_app(service)` and run by `KioskService` inside the supervisor's event loop. One
module per screen, each with `add_routes(app)`:

- `pages`     the HTML pages, icon, strings, index list, `/api/ping`
- `pickup`    the pickup kiosk (`/api/kiosk/*`), through `service.flow` (edge.kiosk.flows)
- `reception` the reception desk (`/api/reception/*`): QR → procedure, tickets, camera stream
- `counter`   the counter panel's pager actions (`POST /api/pager/{action}`)
- `display`   the wall display's pager view and its stream, and the spoken call
- `loading`   staff loading into the locker (`/api/loading`)
- `status`    the technician's status (`/api/status`)
- `login`     staff login (`/api/staff/*`)

and what they share: `guard` (the JSON error answer, staff login and kiosk-screen-only checks) and
`common` (app keys, request parsing, JSON, event streams). The desk screens call the pager, qr and
locker peers directly. Every refusal is a JSON answer naming what was wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from edge.kiosk.web import counter, display, loading, login, pages, pickup, reception, status
from edge.kiosk.web.common import MAX_BODY_BYTES, STATIC_DIR, SVC, Latest
from edge.kiosk.web.guard import error_middleware
from edge.kiosk.web.reception import pager_priorities, queue_known, queue_name
from edge.kiosk.web.status import broker_link, cpu_temperature, disk_usage

if TYPE_CHECKING:
    from edge.kiosk.service import KioskService

__all__ = ["build_app", "SCREENS", "STATIC_DIR", "Latest", "broker_link", "cpu_temperature", "disk_usage",
           "pager_priorities", "queue_known", "queue_name"]

SCREENS = [pages, display, pickup, reception, counter, loading, status, login]


def build_app(svc: "KioskService") -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[error_middleware])
    app[SVC] = svc
    for screen in SCREENS:
        screen.add_routes(app)
    return app
