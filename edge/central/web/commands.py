"""Remote commands from the dashboard (`/commands`) and the API (`POST /api/cmd`).

Only operators and admins send commands, and only to the sites they are allowed. A command that
moves a locker door (`edge.locker.commands.DOOR_COMMANDS`: open, load, audit_open_all) is held
until the same staff member confirms it a second time within CONFIRM_TTL_S; the confirmation id
is used once.
"""

from __future__ import annotations

import json
import logging
import secrets
import time

from aiohttp import web

from edge.central import auth, queries, refusals
from edge.central.cmd import needs_confirmation
from edge.central.web.common import CENTRAL_KEY, STAFF_KEY, lang_of, render, t
from edge.central.web.guard import check_csrf, require_operator
from edge.locker.commands import DOOR_COMMANDS
from edge.safejson import UnsafeJson, loads_object

log = logging.getLogger(__name__)

CONFIRM_TTL_S = 120
PENDING_KEY = web.AppKey("pending_commands", dict)
FIELDS = ("site", "device", "service", "type")
# What a door-moving command does, said on the confirmation step.
DOOR_COMMAND_TEXT = {"open": ("Mở một ngăn tủ", "Open one compartment"),
                     "load": ("Nạp kết quả: mở ngăn được chọn", "Load a result: opens the chosen compartment"),
                     "audit_open_all": ("Kiểm kê: mở lần lượt mọi ngăn", "Audit: opens every compartment in turn")}


def _refusal(request: web.Request, key: str, status: int) -> tuple[int, dict]:
    return status, {"error": t("en", key), "message": t(lang_of(request), key), "code": key}


async def step(request: web.Request, body) -> tuple[int, dict]:
    """One step of a staff command: (202, confirmation) for a door-moving one, else send it."""
    staff: auth.Staff = request[STAFF_KEY]
    if not isinstance(body, dict):
        return 400, {"error": "body must be a JSON object"}
    refused = require_operator(request)
    if refused:
        return _refusal(request, refused, 403)
    pending: dict = request.app[PENDING_KEY]
    if body.get("confirm"):
        held = pending.pop(str(body["confirm"]), None)
        if held is None or held["staff"] != staff.id or held["expires"] < time.monotonic():
            return _refusal(request, "confirm_expired", 409)
        body = held["request"]
    else:
        missing = [k for k in FIELDS if not isinstance(body.get(k), str) or not body[k]]
        if missing:
            return 400, {"error": f"missing or non-string field(s): {', '.join(missing)}"}
        if not isinstance(body.get("args", {}), dict):
            return 400, {"error": "args must be a JSON object"}
        refused = require_operator(request, body["site"])
        if refused:
            return _refusal(request, refused, 403)
        if needs_confirmation(body["service"], body["type"]):
            token = secrets.token_urlsafe(16)
            now = time.monotonic()
            for key in [k for k, v in pending.items() if v["expires"] < now]:
                del pending[key]
            pending[token] = {"staff": staff.id, "request": body, "expires": now + CONFIRM_TTL_S}
            return 202, {"confirm": token, "expires_in": CONFIRM_TTL_S,
                         "message": f"confirm {body['type']} on {body['site']}/{body['device']}/{body['service']}"}
    try:
        cmd, result = await request.app[CENTRAL_KEY].send_command(staff.name, body, staff=staff)
    except Exception as err:  # CommandError (timeout), ConfigError (no key): reported to the caller
        return 502, {"error": str(err)}
    return 200, {"id": cmd["id"], "result": result}


async def page(request: web.Request) -> web.Response:
    """The form, the second-confirmation step, and the recent commands."""
    lang, staff = lang_of(request), request[STAFF_KEY]
    form = {k: request.query.get(k, "") for k in (*FIELDS, "args")}
    form["service"] = form["service"] or "locker"
    form["type"] = form["type"] or "status"
    form["args"] = form["args"] or "{}"
    notice, confirm = None, None
    if request.method == "POST":
        posted = await request.post()
        form = {k: str(posted.get(k, "")) for k in (*FIELDS, "args")}
        notice, confirm = await _submit(request, posted, form, lang)
    recent = await request.app[CENTRAL_KEY].db.run(lambda conn: queries.recent_commands(conn, 50))
    recent = auth.redact([r for r in recent if staff.may_see(r["site"])], staff)
    devices = [d for d in await request.app[CENTRAL_KEY].db.run(queries.devices) if staff.may_see(d["site"])]
    return render(request, "commands.html", "commands", {
        "form": form, "notice": notice, "confirm": confirm, "recent": recent, "may_command": staff.may_command,
        "door_commands": sorted(DOOR_COMMANDS), "door_text": DOOR_COMMAND_TEXT, "sites": sorted({d["site"] for d in devices}),
        "device_names": sorted({d["device"] for d in devices}), "json": json.dumps,
        "refusal": lambda error: refusals.words(error, lang)})


async def _submit(request: web.Request, posted, form: dict, lang: str) -> tuple[dict | None, dict | None]:
    """Handle one POST of the form: (notice to show, confirmation to ask for)."""
    if not check_csrf(request, str(posted.get("csrf", ""))):
        raise web.HTTPForbidden(text="CSRF token missing or wrong: reload the page and try again")
    if posted.get("confirm"):
        body = {"confirm": str(posted["confirm"])}
    else:
        try:   # safejson: deep nesting (RecursionError, a 500 before) and 1e999 are refused too
            args = loads_object(form["args"] or "{}")
        except UnsafeJson:
            return {"level": "alarm", "text": t(lang, "bad_args")}, None
        if not all(form[k] for k in FIELDS):
            return {"level": "alarm", "text": t(lang, "missing_fields")}, None
        body = {**{k: form[k] for k in FIELDS}, "args": args}
    status, answer = await step(request, body)
    if status == 202:
        return None, {"id": answer["confirm"], "request": body, "expires_in": answer["expires_in"]}
    if status == 200:
        ok = bool(answer["result"].get("ok"))
        text = t(lang, "sent_ok") if ok else f'{t(lang, "sent_refused")}: {refusals.words(answer["result"].get("error", ""), lang)}'
        return {"level": "ok" if ok else "alarm", "text": text, "detail": answer}, None
    if status == 502 and "within" in str(answer.get("error", "")):     # cmd.CommandError: no answer in time
        return {"level": "alarm", "text": t(lang, "cmd_timeout"), "status": status}, None
    text = answer.get("message") or f'{t(lang, "send_failed")}: {answer.get("error", "")}'
    return {"level": "alarm", "text": text, "status": status}, None


def add_routes(app: web.Application) -> None:
    app[PENDING_KEY] = {}
    app.add_routes([web.get("/commands", page), web.post("/commands", page)])
