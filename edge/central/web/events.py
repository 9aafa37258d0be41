"""`/events`: stored events as a table people read (local time, where, service, what happened,
the fields that matter) with filters and the raw JSON on demand; seq gaps of one device."""

from __future__ import annotations

import json

from aiohttp import web

from edge.central import auth, queries
from edge.central.web import data
from edge.central.web.common import (ALARM_KINDS, CENTRAL_KEY, EVENT_TYPES, FIELD_LABELS, KEY_FIELDS, STAFF_KEY, day_arg,
                                     field_value, fmt_day, fmt_time, int_arg, lang_of, pick, query_string, render, t,
                                     with_page_text)

HIDDEN = ("id", "seq", "ts", "type", "service", "site", "device")


def key_fields(event: dict, lang: str, tz, queue_names: dict) -> list[tuple[str, str]]:
    """(label, value) pairs of the fields worth a glance, in the manager's words: local times,
    queues by the names the pager base gives them, values and reasons translated (common.field_value)."""
    out = []
    for name in KEY_FIELDS:
        if name not in event or name in ("service",) or event[name] in (None, ""):
            continue
        value = event[name]
        if name == "deadline":
            value = fmt_time(value, tz)
        elif name in ("alarm", "kind") and value in ALARM_KINDS:
            value = pick(lang, ALARM_KINDS[value])
        elif name == "queue":
            pair = queue_names.get((event.get("site"), str(value))) or queue_names.get(str(value))
            value = pick(lang, pair) if pair else value
        else:
            value = field_value(lang, name, value)
        out.append((pick(lang, FIELD_LABELS[name]), str(value)))
    return out


async def page(request: web.Request) -> web.Response:
    central, staff, lang = request.app[CENTRAL_KEY], request[STAFF_KEY], lang_of(request)
    filters = {k: (request.query.get(k) or None) for k in ("site", "device", "service", "type")}
    if filters["site"] and not staff.may_see(filters["site"]):
        raise with_page_text(web.HTTPForbidden(text=t(lang, "not_your_site")), "not_your_site")
    day = day_arg(request, central.tz) if request.query.get("day") else None
    limit = int_arg(request, "limit", 200, 1, 1000)
    rows = await central.db.run(lambda conn: data.events(conn, sites=staff.sites, day=day, tz=central.tz,
                                                         limit=limit, **filters))
    rows = auth.redact(rows, staff)
    names = data.queue_names(await central.db.run(data.pager_offices, None, staff.sites))
    events = [{"ts": e.get("ts"), "site": e["site"], "device": e["device"], "service": e["service"],
               "seq": e.get("seq"), "type": str(e.get("type", "")),
               "type_text": pick(lang, EVENT_TYPES[e["type"]]) if e.get("type") in EVENT_TYPES else str(e.get("type")),
               "fields": key_fields(e, lang, central.tz, names),
               "raw": json.dumps({k: v for k, v in e.items() if k not in ("site", "device")}, ensure_ascii=False,
                                 indent=1)} for e in rows]
    gaps = []
    if filters["site"] and filters["device"]:
        gaps = await central.db.run(queries.gaps, filters["site"], filters["device"])
    devices = [d for d in await central.db.run(queries.devices) if staff.may_see(d["site"])]
    return render(request, "events.html", "events", {
        "events": events, "filters": filters, "day": fmt_day(day), "limit": limit, "gaps": gaps,
        "sites": sorted({d["site"] for d in devices}), "device_names": sorted({d["device"] for d in devices}),
        "types": sorted(EVENT_TYPES), "type_names": EVENT_TYPES,
        "csv_qs": query_string(site=filters["site"], device=filters["device"], limit=1000, format="csv")})


def add_routes(app: web.Application) -> None:
    app.add_routes([web.get("/events", page)])
