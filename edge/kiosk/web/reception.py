"""The reception desk (`/api/reception/*`): a procedure QR → its catalog entry and queue, a ticket
issued by the pager, and the procedures the desk camera reads, streamed to the screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from edge.errors import EdgeError
from edge.kiosk.web.common import (SSE_KEEPALIVE_S, SVC, actor, need, quiet_disconnect, read_body, sse_open, sse_send,
                                   text_field)
from edge.kiosk.web.guard import staff_only
from edge.qr.codes import PROCEDURE_KINDS

if TYPE_CHECKING:
    from edge.kiosk.service import KioskService


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/reception/scan", staff_only(reception_scan))
    app.router.add_post("/api/reception/issue", staff_only(reception_issue))
    app.router.add_get("/api/reception/events", staff_only(quiet_disconnect(reception_events)))


async def reception_scan(request: web.Request) -> web.Response:
    """A procedure QR (bare code or portal URL) → the catalog entry to show at the desk."""
    svc = request.app[SVC]
    text = text_field(await read_body(request), "text", 1024)
    try:
        from edge.qr import parse
    except ImportError as err:
        raise EdgeError("the QR parser is not installed") from err
    parsed = parse(text)
    result = {"ok": True, "kind": parsed.kind, "code": parsed.code, "reason": parsed.reason}
    if parsed.kind not in PROCEDURE_KINDS:
        return web.json_response({**result, "ok": False, "error": "reception.not_procedure"})
    qr = svc.ctx.qr()
    entry = qr.catalog_lookup(parsed.code or parsed.fields.get("uuid")) if qr is not None else None
    if not entry:
        return web.json_response({**result, "ok": False, "error": "reception.not_found"})
    result["procedure"] = {**entry, "queue_name": queue_name(svc, entry.get("queue_service")),
                           "queue_known": queue_known(svc, entry.get("queue_service"))}
    result["priorities"] = pager_priorities(svc)
    return web.json_response(result)


async def reception_events(request: web.Request) -> web.StreamResponse:
    """Server-sent procedures as the desk's camera reads them (a typed code goes through /scan)."""
    svc = request.app[SVC]
    seen = svc.reception.version  # before the screen hears the stream is open: a code read after that is sent
    stream = await sse_open(request)
    while not svc._closing.is_set():
        item, version = await svc.reception.next(seen, SSE_KEEPALIVE_S)
        if svc._closing.is_set():
            break
        if version != seen and item is not None:
            await sse_send(stream, item)
        elif version == seen:
            await stream.write(b": keepalive\n\n")
        seen = version
    return stream


async def reception_issue(request: web.Request) -> web.Response:
    svc = request.app[SVC]
    body = await read_body(request)
    pager = need(svc.ctx.pager(), "pager")
    service = text_field(body, "service", 64)
    priority = text_field(body, "priority", 64, required=False) or None
    ticket = await pager.issue(service, priority=priority, source="desk")
    with svc.ctx.store.transaction() as tx:
        tx.audit(actor(request), "reception.issue", service=service, priority=priority, ticket=ticket.get("ticket"))
    return web.json_response({"ok": True, **ticket})


def queue_name(svc: "KioskService", service_id: str | None) -> str | None:
    """The pager service's display name (Vietnamese) for a catalog queue id."""
    entry = _pager_services(svc).get(service_id)
    return entry.get("name") if isinstance(entry, dict) and entry.get("name") else service_id


def queue_known(svc: "KioskService", service_id: str | None) -> bool:
    """True when the pager has a queue for this catalog queue id (else reception cannot issue a card)."""
    return service_id in _pager_services(svc)


def pager_priorities(svc: "KioskService") -> list[str]:
    pager = svc.ctx.pager()
    return pager.priorities() if pager is not None else []


def _pager_services(svc: "KioskService") -> dict:
    """The pager's queues by id ({} when no pager runs here)."""
    pager = svc.ctx.pager()
    return pager.view()["services"] if pager is not None else {}
