"""The counter panel's actions (`POST /api/pager/{action}`): call next, recall, no-show, transfer,
done, pause/resume, rating, check-in. The browser's JSON is checked by the pager's `commands`, the
same schema as over MQTT and from a GPIO panel (PagerService.action), and audited with who was
logged in."""

from __future__ import annotations

from aiohttp import web

from edge.kiosk.web.common import SVC, actor, dumps, need, read_body
from edge.kiosk.web.guard import staff_only

# The pager actions a counter screen may ask for. A resume is a pause with paused=false.
PAGER_ACTIONS = ("call_next", "recall", "no_show", "transfer", "done", "pause", "rate", "checkin")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/pager/{action}", staff_only(pager_action))


async def pager_action(request: web.Request) -> web.Response:
    svc = request.app[SVC]
    action = request.match_info["action"]
    if action not in PAGER_ACTIONS:
        raise ValueError(f"unknown counter action '{action}' (expected one of {', '.join(PAGER_ACTIONS)})")
    pager = need(svc.ctx.pager(), "pager")
    args = await read_body(request)
    result = await pager.action(action, args)  # checked by the pager's `commands`, as over MQTT
    with svc.ctx.store.transaction() as tx:
        tx.audit(actor(request), f"counter.{action}", args=args)
    return web.json_response({"ok": True, "result": result}, dumps=dumps)
