"""The wall display's data (`/api/pager`, open like `/display`), its stream of the pager's view
(`/api/pager/events`, with the last recall) and its spoken call (`/api/display/voice`)."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from edge.kiosk import voice
from edge.kiosk.web.common import SSE_KEEPALIVE_S, SVC, dumps, need, quiet_disconnect, sse_open

PAGER_POLL_S = 0.5  # the pager view is polled for the display's stream (no callbacks to register)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/display/voice", voice.handler(lambda request: request.app[SVC]))
    app.router.add_get("/api/pager", pager_view)
    app.router.add_get("/api/pager/events", quiet_disconnect(pager_events))


async def pager_view(request: web.Request) -> web.Response:
    return web.json_response(need(request.app[SVC].ctx.pager(), "pager").view(), dumps=dumps)


async def pager_events(request: web.Request) -> web.StreamResponse:
    svc = request.app[SVC]
    stream = await sse_open(request)
    last, idle = None, 0.0
    seen_row, recalled = _last_outbox_row(svc.ctx.store), None
    while not svc._closing.is_set():
        pager = svc.ctx.pager()
        view = pager.view() if pager is not None else {"error": "pager not running"}
        seen_row, recalled = _recalls_since(svc.ctx.store, seen_row, recalled)
        if recalled:  # a recall changes no number on the pager's view: the display hears it from its event
            view = {**view, "recalled": recalled}
        text = dumps(view)
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
