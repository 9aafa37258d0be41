"""`/queues`: what a manager acts on: counters (now serving, paused, service times), pager cards
left, queues by their Vietnamese names, waits in minutes, and charts of today and 30 days."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from edge.central import queries
from edge.central.web import data
from edge.central.web.charts import bar_chart
from edge.central.web.common import CENTRAL_KEY, STAFF_KEY, day_arg, lang_of, query_string, render, t, with_page_text


async def page(request: web.Request) -> web.Response:
    central, staff, lang = request.app[CENTRAL_KEY], request[STAFF_KEY], lang_of(request)
    day = day_arg(request, central.tz)
    site = request.query.get("site") or None
    if site is not None and not staff.may_see(site):
        raise with_page_text(web.HTTPForbidden(text=t(lang, "not_your_site")), "not_your_site")
    if site is None and staff.sites is not None and len(staff.sites) == 1:
        site = next(iter(staff.sites))
    day_start = dt.datetime.combine(day, dt.time(), central.tz).timestamp()
    offices = [o for o in await central.db.run(data.pager_offices, day_start, staff.sites) if site in (None, o["site"])]
    names = data.queue_names(offices)
    summary = [r for r in await central.db.run(queries.queue_summary, day, site) if staff.may_see(r["site"])]
    for row in summary:
        row["name"] = names.get((row["site"], row["queue"])) or names.get(row["queue"]) or (row["queue"] or "–",) * 2
    charts = []
    if site is not None or staff.sites is None:
        hours = await central.db.run(queries.queue_by_hour, day, central.tz, site)
        days = await central.db.run(queries.queue_days, day, 30, site)
        day_labels = [f'{d["day"][8:10]}/{d["day"][5:7]}' for d in days]
        charts = [
            bar_chart([h["tickets"] for h in hours], [f'{h["hour"]}h' for h in hours], title=t(lang, "by_hour"),
                      unit=t(lang, "tickets_unit"), label_every=2),
            bar_chart([d["tickets"] for d in days], day_labels, title=t(lang, "last_30"),
                      unit=t(lang, "tickets_unit"), color="#0b3d91", label_every=3),
            bar_chart([None if d["wait_avg_s"] is None else d["wait_avg_s"] / 60 for d in days], day_labels,
                      title=t(lang, "wait_30"), unit=t(lang, "minutes_unit"), color="#bf8700", integer=False,
                      label_every=3),
        ]
    sites = sorted({d["site"] for d in await central.db.run(queries.devices) if staff.may_see(d["site"])})
    return render(request, "queues.html", "queues", {
        "sites": sites, "all_sites_allowed": staff.sites is None,
        "day": day, "site": site, "offices": offices, "summary": summary, "charts": charts,
        "totals": {k: sum(r[k] for r in summary) for k in ("issued", "waiting", "served")},
        "qs": query_string(day=day.isoformat(), site=site)}, refresh=15)


def add_routes(app: web.Application) -> None:
    app.add_routes([web.get("/queues", page)])
