"""The wall display's data (`/api/pager`, open like `/display`), its stream of the pager's view
(`/api/pager/events`, with the last recall) and its spoken call (`/api/display/voice`)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from edge.events import Listener, Message
from edge.kiosk import voice
from edge.kiosk.web.common import SSE_KEEPALIVE_S, SVC, dumps, need, quiet_disconnect, sse_open

# The stream hears the pager's committed messages on the device's bus (edge.events), the same the
# broker gets: a change reaches the screens as it commits, with no polling of the pager's view.
PAGER_TOPICS = "pager/#"


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/display/voice", voice.handler(lambda request: request.app[SVC]))
    app.router.add_get("/api/pager", pager_view)
    app.router.add_get("/api/pager/events", quiet_disconnect(pager_events))


async def pager_view(request: web.Request) -> web.Response:
    return web.json_response(need(request.app[SVC].ctx.pager(), "pager").view(), dumps=dumps)


async def pager_events(request: web.Request) -> web.StreamResponse:
    """The pager's view each time the pager commits a change, with its last recall; a keepalive
    after SSE_KEEPALIVE_S of silence (the view is read again then too)."""
    svc = request.app[SVC]
    stream = await sse_open(request)
    last, recalled, quiet = None, None, False
    closing = asyncio.ensure_future(svc._closing.wait())
    try:
        with svc.ctx.bus.listen(PAGER_TOPICS) as heard:  # before the first view: no change falls between
            while not svc._closing.is_set():
                text = dumps(_view(svc, recalled))
                if text != last:
                    last = text
                    await stream.write(f"data: {text}\n\n".encode())
                elif quiet:
                    await stream.write(b": keepalive\n\n")
                messages = await _next_messages(heard, closing, SSE_KEEPALIVE_S)
                quiet = not messages
                for message in messages:
                    recalled = _recall(message, recalled)
    finally:
        closing.cancel()
    return stream


def _view(svc, recalled: dict | None) -> dict:
    pager = svc.ctx.pager()
    view = pager.view() if pager is not None else {"error": "pager not running"}
    if recalled:  # a recall changes no number on the pager's view: the display hears it from its event
        view = {**view, "recalled": recalled}
    return view


async def _next_messages(heard: Listener, closing: asyncio.Future, timeout_s: float) -> list[Message]:
    """The next committed pager messages (all those queued, so one burst is one view); [] after
    `timeout_s` of silence or when the kiosk is closing."""
    get = asyncio.ensure_future(heard.get())
    try:
        done, _ = await asyncio.wait({get, closing}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not get.done():  # timed out, closing, or the screen went away: a message not taken stays queued
            get.cancel()
    if get not in done:
        return []
    messages = [get.result()]
    while (more := heard.get_nowait()) is not None:
        messages.append(more)
    return messages


def _recall(message: Message, recalled: dict | None) -> dict | None:
    """A `ticket_recalled` event (counter panel, GPIO keypad or MQTT alike) as {"ticket", "counter",
    "id": its outbox row}; the last one seen otherwise."""
    if message.type == "ticket_recalled" and message.topic == "pager/event":
        return {"ticket": message.payload.get("ticket"), "counter": message.payload.get("counter"),
                "id": message.row_id}
    return recalled
