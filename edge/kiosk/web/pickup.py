"""The pickup kiosk's API (`/api/kiosk/*`): the citizen's session as the touch screen drives it.

Every step goes through `service.flow` (edge.kiosk.flows.PickupFlow). The session id (which
cancels the session or types PINs into it) and the live camera picture are served to the kiosk's
own screen only (`guard.kiosk_screen_only`).
"""

from __future__ import annotations

import json

from aiohttp import web

from edge.kiosk.staff import is_loopback
from edge.kiosk.web.common import SSE_KEEPALIVE_S, SVC, dumps, quiet_disconnect, read_body, sse_open, sse_send, text_field
from edge.kiosk.web.guard import kiosk_screen_only

# The screen's buttons, as (flow step, URL path); touch: still typing on the keypad, the session waits.
STEPS = (("start", "start"), ("code", "code"), ("use_pin", "use-pin"), ("pin", "pin"),
         ("cancel", "cancel"), ("lang", "lang"), ("touch", "touch"))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/kiosk", kiosk_screen_only(kiosk_view))
    r.add_get("/api/kiosk/events", kiosk_screen_only(quiet_disconnect(kiosk_events)))
    r.add_get("/api/kiosk/layout", kiosk_layout)
    for step, path in STEPS:
        r.add_post(f"/api/kiosk/{path}", kiosk_screen_only(kiosk_step(step)))
    r.add_get("/api/kiosk/camera.jpg", kiosk_screen_only(kiosk_camera))  # the live picture, at the face step only


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
    return web.json_response({"compartments": ids}, dumps=dumps)


def kiosk_step(step: str):
    async def handler(request: web.Request) -> web.Response:
        flow = request.app[SVC].flow
        body = await read_body(request) if request.can_read_body else {}
        if step == "start":
            view = await flow.start(source="screen")
        elif step == "code":
            view = await flow.submit_code(text_field(body, "session", 64), text_field(body, "code"))
        elif step == "use_pin":
            view = await flow.use_pin(text_field(body, "session", 64))
        elif step == "pin":
            view = await flow.submit_pin(text_field(body, "session", 64), text_field(body, "pin", 32))
        elif step == "touch":
            view = await flow.touch(text_field(body, "session", 64))
        elif step == "cancel":
            view = await flow.cancel(text_field(body, "session", 64, required=False))
        else:
            view = flow.set_language(text_field(body, "lang", 4))
        return web.json_response(view)
    return handler


async def kiosk_events(request: web.Request) -> web.StreamResponse:
    svc = request.app[SVC]
    stream = await sse_open(request)
    seen = -1
    while not svc._closing.is_set():
        view = await svc.flow.changed(seen, SSE_KEEPALIVE_S)
        if svc._closing.is_set():
            break
        if view["version"] != seen:
            seen = view["version"]
            await sse_send(stream, view)
        else:
            await stream.write(b": keepalive\n\n")
    return stream
