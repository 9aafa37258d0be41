"""`/lockers`: per result locker, the counts and a grid of its compartments (free / waiting /
overdue / fault) with each waiting result's deadline, and the locker alarms."""

from __future__ import annotations

from aiohttp import web

from edge.central import queries
from edge.central.web import data
from edge.central.web.common import CENTRAL_KEY, STAFF_KEY, render


async def page(request: web.Request) -> web.Response:
    central, staff = request.app[CENTRAL_KEY], request[STAFF_KEY]
    now = central.now()
    summary = {(r["site"], r["device"]): r for r in await central.db.run(queries.lockers, central.tz, now)}
    grids = await central.db.run(data.locker_grids, now, staff.sites)
    for grid in grids:
        grid["summary"] = summary.get((grid["site"], grid["device"]), {})
    alarms = [a for a in await central.db.run(queries.alarms)
              if a["service"] in ("locker", "lockers") and staff.may_see(a["site"])]
    return render(request, "lockers.html", "lockers", {"grids": grids, "alarms": alarms, "now": now}, refresh=10)


def add_routes(app: web.Application) -> None:
    app.add_routes([web.get("/lockers", page)])
