"""The JSON API (design §3): health (open, no data), devices, events, gaps, alarms, queues,
lockers, and staff commands (`POST /api/cmd`, operators only, door-moving ones confirmed twice).

Every read answers only about the sites the caller may see; dossier codes are masked for viewers.
"""

from __future__ import annotations

import psycopg
from aiohttp import web

from edge.central import auth, queries
from edge.central.web import commands
from edge.central.web.common import CENTRAL_KEY, STAFF_KEY, day_arg, int_arg, json_response, respond
from edge.central.web.guard import check_csrf, identify
from edge.safejson import UnsafeJson, loads_object

MAX_EVENTS = 1000


def _visible(request: web.Request, rows: list[dict]) -> list[dict]:
    staff: auth.Staff = request[STAFF_KEY]
    return [r for r in rows if staff.may_see(r.get("site", ""))]


def _site_device(request: web.Request) -> tuple[str, str]:
    site, device = request.query.get("site"), request.query.get("device")
    if not site or not device:
        raise web.HTTPBadRequest(text='{"error": "site and device are required: /api/events?site=S&device=D&limit=N"}',
                                 content_type="application/json")
    if not request[STAFF_KEY].may_see(site):
        raise web.HTTPForbidden(text='{"error": "this staff member may not see that site"}',
                                content_type="application/json")
    return site, device


async def health(request: web.Request) -> web.Response:
    central = request.app[CENTRAL_KEY]
    db_ok = await central.db.ping()
    broker_ok = central.broker_ok()
    body = {"ok": db_ok and broker_ok, "db": db_ok, "broker": broker_ok}
    try:
        signed_in = await identify(request) is not None
    except psycopg.Error:        # sessions live in PostgreSQL: with it down, answer as to anyone
        signed_in = False
    if signed_in:                # counters only for signed-in staff
        body["ingest"] = central.consumer_stats()
    return json_response(body)


async def devices(request: web.Request) -> web.Response:
    rows = _visible(request, await request.app[CENTRAL_KEY].db.run(queries.devices))
    if request.query.get("full") != "1" and request.query.get("format") != "csv":
        rows = [{k: r[k] for k in ("site", "device", "state", "last_seen", "version", "services")} for r in rows]
    return respond(request, rows, "devices")


async def events(request: web.Request) -> web.Response:
    site, device = _site_device(request)
    limit = int_arg(request, "limit", 100, 1, MAX_EVENTS)
    rows = await request.app[CENTRAL_KEY].db.run(queries.events, site, device, limit)
    return respond(request, auth.redact(rows, request[STAFF_KEY]), f"events-{site}-{device}")


async def gaps(request: web.Request) -> web.Response:
    site, device = _site_device(request)
    return respond(request, await request.app[CENTRAL_KEY].db.run(queries.gaps, site, device), f"gaps-{site}-{device}")


async def alarms(request: web.Request) -> web.Response:
    open_only = request.query.get("all") != "1"
    rows = await request.app[CENTRAL_KEY].db.run(lambda conn: queries.alarms(conn, open_only=open_only))
    return respond(request, _visible(request, rows), "alarms")


def _site_arg(request: web.Request) -> str | None:
    site = request.query.get("site") or None
    if site is not None and not request[STAFF_KEY].may_see(site):
        raise web.HTTPForbidden(text='{"error": "this staff member may not see that site"}',
                                content_type="application/json")
    return site


async def queues(request: web.Request) -> web.Response:
    central = request.app[CENTRAL_KEY]
    day, site = day_arg(request, central.tz), _site_arg(request)
    rows = _visible(request, await central.db.run(queries.queue_summary, day, site))
    return respond(request, rows, f"queues-{day}")


async def queue_hours(request: web.Request) -> web.Response:
    central = request.app[CENTRAL_KEY]
    day, site = day_arg(request, central.tz), _site_arg(request)
    if site is None and request[STAFF_KEY].sites is not None:
        raise web.HTTPBadRequest(text='{"error": "site is required for a staff member limited to some sites"}',
                                 content_type="application/json")
    return respond(request, await central.db.run(queries.queue_by_hour, day, central.tz, site), f"queue-hours-{day}")


async def queue_days(request: web.Request) -> web.Response:
    central = request.app[CENTRAL_KEY]
    day, site = day_arg(request, central.tz), _site_arg(request)
    if site is None and request[STAFF_KEY].sites is not None:
        raise web.HTTPBadRequest(text='{"error": "site is required for a staff member limited to some sites"}',
                                 content_type="application/json")
    return respond(request, await central.db.run(queries.queue_days, day, 30, site), f"queue-days-{day}")


async def lockers(request: web.Request) -> web.Response:
    central = request.app[CENTRAL_KEY]
    return respond(request, _visible(request, await central.db.run(queries.lockers, central.tz, central.now())), "lockers")


async def command(request: web.Request) -> web.Response:
    """One step of a staff command: 202 with a confirmation id for a door-moving one, else sent.
    From a browser session the request must carry the page's CSRF token (X-CSRF-Token)."""
    if not check_csrf(request, request.headers.get("X-CSRF-Token")):
        return json_response({"error": "X-CSRF-Token header missing or wrong"}, 403)
    try:   # safejson: deep nesting (RecursionError, a 500 before) and 1e999 are refused by name
        body = loads_object(await request.read())
    except UnsafeJson as err:
        return json_response({"error": f"body must be a JSON object: {err.detail}"}, 400)
    status, payload = await commands.step(request, body)
    return json_response(payload, status)


def add_routes(app: web.Application) -> None:
    app.add_routes([
        web.get("/api/health", health), web.get("/api/devices", devices), web.get("/api/events", events),
        web.get("/api/gaps", gaps), web.get("/api/alarms", alarms), web.get("/api/queues", queues),
        web.get("/api/queues/hours", queue_hours), web.get("/api/queues/days", queue_days),
        web.get("/api/lockers", lockers), web.post("/api/cmd", command),
    ])
