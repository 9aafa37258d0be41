"""Central's commands to the locker (MQTT `cmd`): the schema, and one handler per command type.

`COMMANDS` is `LockerService.commands`: the supervisor validates every command against it (types,
defaults) before `handle_command` looks the handler up in `HANDLERS`; the commands that move a door
must also be signed (edge.locker.commands.DOOR_COMMANDS). Part of LockerService as a mixin
(`handle_command`, and the staff operations `set_maintenance` and `audit_open_all`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from edge.errors import CommandError, DeviceNotReady
from edge.locker import notify, queries
from edge.locker.config import LockerConfig
from edge.locker.flows import SERVICE, LockerRefused
from edge.service import ServiceContext

if TYPE_CHECKING:
    from edge.locker.service import LockerService

AUDIT_WAIT_CLOSE_S = 60.0

COMMANDS: dict[str, dict[str, Any]] = {
    "open": {"compartment": int, "reason": (str, "remote")},
    "status": {},
    "load": {"receipt": str, "size": (str, None), "deadline_days": (int, None), "accessible": (bool, False),
             "phone": (str, None)},
    "expire": {"receipt": (str, None)},
    "maintenance": {"compartment": int, "on": bool},
    "audit_open_all": {"wait_close_s": (float, AUDIT_WAIT_CLOSE_S)},
}

Handler = Callable[["LockerService", dict, "str | None"], Awaitable[dict]]


async def _status(svc: LockerService, args: dict, cmd_id: str | None) -> dict:
    return svc.snapshot()


async def _open(svc: LockerService, args: dict, cmd_id: str | None) -> dict:
    return await svc.open_compartment(args["compartment"], cmd_id=cmd_id, reason=f"remote:{args['reason']}"[:64],
                                      actor="central")


async def _load(svc: LockerService, args: dict, cmd_id: str | None) -> dict:
    return await svc._load("central", args["receipt"], args["size"], None, args["deadline_days"],
                           args["accessible"], phone=svc._phone(args.get("phone"), None))


async def _expire(svc: LockerService, args: dict, cmd_id: str | None) -> dict:
    expired = svc.flows.expire_due(args["receipt"])
    notify.sweep(svc.ctx.store, svc.clock)
    svc.publish_state()
    svc._forget_faces(expired)
    return {"expired": expired}


async def _maintenance(svc: LockerService, args: dict, cmd_id: str | None) -> dict:
    return await svc.set_maintenance(args["compartment"], args["on"])


async def _audit_open_all(svc: LockerService, args: dict, cmd_id: str | None) -> dict:
    if svc._audit_task and not svc._audit_task.done():
        raise CommandError("an audit is already running")
    svc._audit_task = asyncio.create_task(svc.audit_open_all("central", args["wait_close_s"]))
    return {"started": len(svc.config.compartments)}


HANDLERS: dict[str, Handler] = {"status": _status, "open": _open, "load": _load, "expire": _expire,
                                "maintenance": _maintenance, "audit_open_all": _audit_open_all}
assert set(HANDLERS) == set(COMMANDS), "every command in the schema has its handler"


class RemoteCommands:
    """`handle_command` by table; maintenance and the staff audit (one door after the other)."""

    ctx: ServiceContext
    config: LockerConfig
    _audit_task: asyncio.Task | None
    open_compartment: Callable[..., Awaitable[dict]]
    wait_door: Callable[..., Awaitable[bool]]
    _where: Callable[[Any], tuple[int, int]]

    async def handle_command(self, type: str, args: dict, cmd_id: str | None = None) -> dict:
        handler = HANDLERS.get(type)
        if handler is None:
            raise CommandError(f"unknown locker command {type!r}")
        try:
            return await handler(self, args, cmd_id)  # type: ignore[arg-type]  (self is the LockerService)
        except DeviceNotReady as err:
            raise CommandError(f"locker hardware not ready: {err}") from err

    async def set_maintenance(self, compartment: int, on: bool, actor: str = "central") -> dict:
        self._where(compartment)
        with self.ctx.store.transaction() as tx:
            queries.set_maintenance(tx, compartment, on)
            tx.emit(SERVICE, "maintenance", compartment=compartment, on=on)
            tx.audit(actor, "locker.maintenance", compartment=compartment, on=on)
            self.publish_state(tx)
        return {"compartment": compartment, "maintenance": on}

    async def audit_open_all(self, actor: str = "central", wait_close_s: float = AUDIT_WAIT_CLOSE_S) -> list[dict]:
        """Staff audit: open every compartment one at a time, each after the previous door closed."""
        results = []
        with self.ctx.store.transaction() as tx:
            tx.audit(actor, "locker.audit_open_all", compartments=self.config.compartment_ids())
        for n in self.config.compartment_ids():
            try:
                await self.open_compartment(n, reason="audit", actor=actor, maintenance_ok=True)
            except (LockerRefused, DeviceNotReady) as err:
                results.append({"compartment": n, "opened": False, "error": str(err)})
                continue
            opened = await self.wait_door(n, "open", self.config.open_detect_s)
            closed = await self.wait_door(n, "closed", wait_close_s) if opened else True
            results.append({"compartment": n, "opened": opened, "closed": closed})
        return results
