"""Staff loading (`POST /api/loading`): a finished dossier into a compartment through the locker's
`load`, which checks the staff PIN and audits the loading; the kiosk never stores either PIN."""

from __future__ import annotations

from aiohttp import web

from edge.kiosk.receipts import require_dossier_code
from edge.kiosk.web.common import SVC, actor, dumps, need, read_body, text_field
from edge.kiosk.web.guard import staff_only


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/loading", staff_only(loading_submit))


async def loading_submit(request: web.Request) -> web.Response:
    svc = request.app[SVC]
    body = await read_body(request)
    locker = need(svc.ctx.locker(), "locker")
    staff_pin = text_field(body, "staff_pin", 32)
    receipt = require_dossier_code(text_field(body, "receipt", 64))  # only what the pickup kiosk can find
    size = text_field(body, "size", 16, required=False) or None
    pin = (text_field(body, "pin", 16, required=False) or "").strip() or None
    # The citizen's mobile for the result-ready SMS: the locker checks it, makes the PIN and sends it.
    phone = (text_field(body, "phone", 32, required=False) or "").strip() or None
    days = body.get("deadline_days")
    if days in ("", None):
        days = None
    elif not isinstance(days, int) or isinstance(days, bool):
        raise ValueError("'deadline_days' must be a whole number of days")
    # The locker checks the staff PIN and audits the loading; the kiosk never stores either PIN.
    result = await locker.load(staff_pin, receipt, size, pin=pin, deadline_days=days, phone=phone)
    with svc.ctx.store.transaction() as tx:  # the locker audits the loading itself; this says who was logged in
        tx.audit(actor(request), "loading.load", receipt=receipt, compartment=result.get("compartment"))
    return web.json_response({"ok": True, **result}, dumps=dumps)
