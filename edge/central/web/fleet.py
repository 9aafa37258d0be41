"""`/`: the fleet at a glance (devices online, open alarms, pager cards) and the device table."""

from __future__ import annotations

import time

from aiohttp import web

from edge.central import queries
from edge.central.web import data
from edge.central.web.common import CENTRAL_KEY, STAFF_KEY, render


async def page(request: web.Request) -> web.Response:
    central, staff = request.app[CENTRAL_KEY], request[STAFF_KEY]
    devices = [d for d in await central.db.run(queries.devices) if staff.may_see(d["site"])]
    alarms = [a for a in await central.db.run(queries.alarms) if staff.may_see(a["site"])]
    offices = await central.db.run(data.pager_offices, None, staff.sites)
    return render(request, "fleet.html", "fleet", {
        "devices": devices, "alarms": alarms, "now": time.time(), "broker_ok": central.broker_ok(),
        "online": sum(d["state"] == "online" for d in devices),
        "low_cards": [o for o in offices if o["cards_low"]]}, refresh=3)


def add_routes(app: web.Application) -> None:
    app.add_routes([web.get("/", page)])
