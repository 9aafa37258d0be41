"""Central's commands to the locker (MQTT `cmd`): the schema, and one handler per command type.

`COMMANDS` is `LockerService.commands`: the supervisor validates every command against it (types,
defaults) before `RemoteCommands.handle` looks up the handler of its type; the commands that move a
door must also be signed (edge.locker.commands.DOOR_COMMANDS). Two collaborators of LockerService
(edge/locker/service.py), which keeps `handle_command`, `set_maintenance` and `audit_open_all` as
one-line delegations: `RemoteCommands` (the handler table) and `Maintenance` (the maintenance
switch and the staff audit, one door after the other).
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from edge.errors import CommandError, DeviceNotReady
from edge.locker import queries
from edge.locker.config import LockerConfig
from edge.locker.flows import SERVICE, LockerRefused
from edge.locker.kiosk_api import citizen_phone
from edge.store import Store, Tx

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

Handler = Callable[[dict, "str | None"], Awaitable[dict]]


class Maintenance:
    """Staff's tools on the doors: the maintenance switch of a compartment, and the audit that
    opens every compartment one at a time, each after the previous door closed.

    It moves doors only through the service's `open_compartment` and watches them with `wait_door`;
    `where` refuses an unknown compartment; `publish_state(tx)` commits the snapshot with the change.
    """

    def __init__(self, store: Store, config: LockerConfig, *, open_compartment: Callable[..., Awaitable[dict]],
                 wait_door: Callable[..., Awaitable[bool]], where: Callable[[Any], tuple[int, int]],
                 publish_state: Callable[[Tx], None]):
        self.store = store
        self.config = config
        self.open_compartment = open_compartment
        self.wait_door = wait_door
        self.where = where
        self.publish_state = publish_state
        self._audit_task: asyncio.Task | None = None

    async def set_maintenance(self, compartment: int, on: bool, actor: str = "central") -> dict:
        self.where(compartment)
        with self.store.transaction() as tx:
            queries.set_maintenance(tx, compartment, on)
            tx.emit(SERVICE, "maintenance", compartment=compartment, on=on)
            tx.audit(actor, "locker.maintenance", compartment=compartment, on=on)
            self.publish_state(tx)
        return {"compartment": compartment, "maintenance": on}

    async def audit_open_all(self, actor: str = "central", wait_close_s: float = AUDIT_WAIT_CLOSE_S) -> list[dict]:
        """Staff audit: open every compartment one at a time, each after the previous door closed."""
        results = []
        with self.store.transaction() as tx:
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

    def start_audit(self, actor: str, wait_close_s: float) -> int:
        """Central's audit runs in the background (it waits for every door); one at a time."""
        if self._audit_task and not self._audit_task.done():
            raise CommandError("an audit is already running")
        self._audit_task = asyncio.create_task(self.audit_open_all(actor, wait_close_s))
        return len(self.config.compartments)

    def stop(self) -> None:
        if self._audit_task:
            self._audit_task.cancel()


class RemoteCommands:
    """Central's commands by table: each handler calls one operation of the locker.

    `snapshot()` answers `status`; `open_compartment` and `load` (the service's loading without a
    staff PIN: central is the actor) move doors; `expire(receipt)` expires results now and tells
    everyone; `maintenance` holds the maintenance switch and the audit.
    """

    def __init__(self, *, snapshot: Callable[[], dict], open_compartment: Callable[..., Awaitable[dict]],
                 load: Callable[..., Awaitable[dict]], expire: Callable[["str | None"], list[dict]],
                 maintenance: Maintenance):
        self.snapshot = snapshot
        self.open_compartment = open_compartment
        self.load = load
        self.expire = expire
        self.maintenance = maintenance
        self.handlers: dict[str, Handler] = {"status": self._status, "open": self._open, "load": self._load,
                                             "expire": self._expire, "maintenance": self._maintenance,
                                             "audit_open_all": self._audit_open_all}
        assert set(self.handlers) == set(COMMANDS), "every command in the schema has its handler"

    async def handle(self, type: str, args: dict, cmd_id: str | None = None) -> dict:
        handler = self.handlers.get(type)
        if handler is None:
            raise CommandError(f"unknown locker command {type!r}")
        try:
            return await handler(args, cmd_id)
        except DeviceNotReady as err:
            raise CommandError(f"locker hardware not ready: {err}") from err

    async def _status(self, args: dict, cmd_id: str | None) -> dict:
        return self.snapshot()

    async def _open(self, args: dict, cmd_id: str | None) -> dict:
        return await self.open_compartment(args["compartment"], cmd_id=cmd_id,
                                           reason=f"remote:{args['reason']}"[:64], actor="central")

    async def _load(self, args: dict, cmd_id: str | None) -> dict:
        return await self.load("central", args["receipt"], args["size"], None, args["deadline_days"],
                               args["accessible"], phone=citizen_phone(args.get("phone"), None))

    async def _expire(self, args: dict, cmd_id: str | None) -> dict:
        return {"expired": self.expire(args["receipt"])}

    async def _maintenance(self, args: dict, cmd_id: str | None) -> dict:
        return await self.maintenance.set_maintenance(args["compartment"], args["on"])

    async def _audit_open_all(self, args: dict, cmd_id: str | None) -> dict:
        return {"started": self.maintenance.start_audit("central", args["wait_close_s"])}
