"""The technician's status (`/api/status`): the data is gathered by KioskService.device_status;
the broker link, disk and temperature readings are here."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

from aiohttp import web

from edge.kiosk.web.common import SVC, dumps
from edge.kiosk.web.guard import staff_only


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/status", staff_only(status_view))


async def status_view(request: web.Request) -> web.Response:
    return web.json_response(request.app[SVC].device_status(), dumps=dumps)


def broker_link(store, clock, connected=None) -> dict:
    """The broker link: connected now (None when unknown), messages waiting, the last one acknowledged."""
    rows = store.query("SELECT max(published) AS last FROM outbox")
    last = rows[0]["last"] if rows else None
    return {"connected": None if connected is None else connected(), "pending": store.pending_count(),
            "last_ack_s_ago": None if last is None else round(clock() - last, 1)}


def disk_usage(path: Path) -> dict:
    target = Path(path)
    while not target.exists() and target != target.parent:
        target = target.parent
    usage = shutil.disk_usage(target)
    return {"path": str(target), "free_gb": round(usage.free / 1e9, 2), "used_pct": round(100 * usage.used / usage.total, 1)}


def cpu_temperature(pattern: str = "/sys/class/thermal/thermal_zone*/temp") -> float | None:
    """The hottest thermal zone in °C, or None where the machine has none (a VM, a container)."""
    values = []
    for path in glob.glob(pattern):
        try:
            values.append(int(Path(path).read_text().strip()) / 1000.0)
        except (OSError, ValueError):
            continue
    return max(values) if values else None
