"""LockerService: boards -> doors -> assignments; pickups, loading, alarms; all through the store.

Boot: outputs off, every door read, interrupted opens reported (never repeated), retained
snapshot. Run: poll doors, raise/clear alarms, expire overdue results, reconnect a lost port.
Stop: outputs off first. Every open writes its intent before the pulse (see flows.py).

The service is this lifecycle, the state its parts share (the config, the bus lock `_hw`, the
door-change condition `_changed`, the poll loop's `_poke`, board -> lock -> compartment) and one
collaborator per concern; each is a class whose constructor takes exactly what it uses, and the
service keeps its public API (edge.peers.LockerPeer, `handle_command`, `open_compartment`, ...) as
one-line delegations. Made in __init__: views, hardware, maintenance, remote; made in start(),
once the flows exist: recovery, doors, opening, kiosk_api.

    hardware.py   LockerHardware: config -> driver (edge.locker.setup), the serial port, reconnecting
    doors.py      DoorWatch: door polling and timers: door rows, door events, alarms
    opening.py    Opening: open_compartment (durable intent, then pulse) and wait_door
    recovery.py   Recovery: after a restart, interrupted opens and pickups
    kiosk_api.py  KioskApi: what the kiosk asks (edge.peers.LockerPeer), staff loading and reclaim
    views.py      LockerViews: view() for screens, snapshot() for central
    remote.py     RemoteCommands (central's MQTT commands by table), Maintenance (switch, audit)
    demo.py       the `edge demo` loop (a function of the service)
    queries.py    every SQL statement (flows.py and the modules above call it by name)
    timing.py     the waits, taken from the context (ctx.sleep, ctx.thread_sleep, ctx.monotonic)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from edge.errors import ConfigError, EdgeError
from edge.kiosk.staff import StaffAuth
from edge.locker import demo as locker_demo
from edge.locker import notify, timing
from edge.locker.commands import DOOR_COMMANDS
from edge.locker.config import LockerConfig
from edge.locker.demo import DEMO_PIN, DEMO_STAFF_PIN, demo_receipt  # noqa: F401  (edge demo, tests import them here)
from edge.locker.doors import DoorWatch
from edge.locker.flows import LockerFlows
from edge.locker.hardware import LockerHardware
from edge.locker.kiosk_api import STAFF_LOCKOUT_S, KioskApi
from edge.locker.opening import Opening, where
from edge.locker.recovery import Recovery
from edge.locker.remote import AUDIT_WAIT_CLOSE_S, COMMANDS, Maintenance, RemoteCommands
from edge.locker.views import LockerViews
from edge.peers import VisionForLocker
from edge.service import Service
from edge.store import Tx

log = logging.getLogger(__name__)

EXPIRY_SWEEP_S = 60.0


class LockerService(Service):
    name = "locker"
    critical = True
    commands = COMMANDS  # central's commands and their arguments (remote.py)
    # Everything that moves a bolt must be signed by the central service (the one list, also
    # used by the dashboard's second confirmation).
    signed_commands = DOOR_COMMANDS
    # The poll loop beats every poll and every board; a bus read is bounded by reply_timeout_s.
    wedged_after_s = 30.0

    def __init__(self, ctx):
        super().__init__(ctx)
        self.config: LockerConfig = ctx.config if ctx.config is not None else LockerConfig()
        self.clock: Callable[[], float] = ctx.clock
        self.sleep: timing.Sleep = ctx.sleep  # the loops' waits: asyncio.sleep, or a test's clock (timing.py)
        self.flows: LockerFlows | None = None
        self._hw = asyncio.Lock()  # one bus transaction, one coil, at a time
        self._vision_calls: set[asyncio.Task] = set()
        self._changed = asyncio.Condition()
        self._poke = asyncio.Event()
        self._by_board: dict[int, dict[int, int]] = {}
        for n in self.config.compartment_ids():
            c = self.config.where(n)
            self._by_board.setdefault(c.board, {})[c.lock] = n
        self.doors: DoorWatch | None = None  # from start(), with the flows
        self.opening: Opening | None = None  # from start(), with the flows
        self.kiosk_api: KioskApi | None = None  # from start(), with the flows
        self.recovery: Recovery | None = None  # from start(), with the flows
        self._last_sweep = 0.0
        # Wrong staff codes lock loading out: the device's one lockout (edge.kiosk.staff), counted in
        # the store so that a restart (or a crash on purpose) does not hand a guesser fresh attempts.
        self.staff_lockout = StaffAuth({}, required=True, session_s=0.0, attempts=self.config.pin_attempts,
                                       lockout_s=STAFF_LOCKOUT_S, clock=self.clock, store=ctx.store)
        # The collaborators, each given only what it uses (the views read the flows, made in start(),
        # through a getter; doors, opening, kiosk_api and recovery are made in start() with them).
        self.hardware = LockerHardware(self.config, pin_factory=ctx.pin_factory, clock=self.clock,
                                       thread_sleep=ctx.thread_sleep, monotonic=ctx.monotonic,
                                       by_board=self._by_board)
        self.views = LockerViews(self.config, ctx.store, lambda: self.flows, self._by_board, self.health)
        self.maintenance = Maintenance(ctx.store, self.config, open_compartment=self.open_compartment,
                                       wait_door=self.wait_door, where=self._where, publish_state=self.publish_state)
        self.remote = RemoteCommands(snapshot=self.snapshot, open_compartment=self.open_compartment, load=self.load_as,
                                     expire=self.expire_now, maintenance=self.maintenance)

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        problems = self.config.problems()
        if problems:
            raise ConfigError(problems)
        self.flows = LockerFlows(self.ctx.store, self.config, self.clock)
        self.doors = DoorWatch(self.ctx.store, self.config, self.clock, self.flows, hardware=self.hardware,
                               by_board=self._by_board, changed=self._changed, publish_state=self.publish_state,
                               heartbeat=self.heartbeat, tell_vision=self._tell_vision)
        self.opening = Opening(self.ctx.store, self.config, self.clock, self.flows, hardware=self.hardware,
                               doors=self.doors, hw=self._hw, poke=self._poke, changed=self._changed,
                               publish_state=self.publish_state, sleep=self.sleep)
        self.kiosk_api = KioskApi(self.ctx.store, self.config, self.clock, self.flows,
                                  open_compartment=self.open_compartment, staff_lockout=self.staff_lockout,
                                  vision=self.ctx.vision, tell_vision=self._tell_vision)
        self.hardware.build()
        await asyncio.to_thread(self.driver.all_off, list(self._by_board))
        self.recovery = Recovery(self.ctx.store, self.flows, self.config)
        self.recovery.report_interrupted()
        async with self._hw:
            await self.doors.poll_boards(boot=True)
        self.recovery.recover_pickups(self.doors.answering())  # a silent board's pickups wait for it
        self.publish_state()
        log.info("locker: %d compartments on %d board(s) via %s at %s", len(self.config.compartments),
                 len(self._by_board), self.config.driver, self.hardware.port_name())

    async def run(self) -> None:
        while True:
            # Until the next poll is due (in the loop's sleep, timing.py) or an open pokes us.
            await timing.within(self.sleep, self.config.poll_interval_s, self._poke.wait())
            self._poke.clear()
            self.heartbeat()
            async with self._hw:
                await self.doors.poll_boards()
                if self.recovery.resume(self.doors.answering()):  # a board silent at boot answers
                    self.publish_state()
            self._check_timers()
            if self.clock() - self._last_sweep >= EXPIRY_SWEEP_S:
                self._last_sweep = self.clock()
                expired = self.flows.expire_due()
                if expired:
                    self.publish_state()
                    self._forget_faces(expired)  # no pickup at the kiosk any more: the face goes now
                notify.sweep(self.ctx.store, self.clock)  # SMS reminders and expiry notices

    async def stop(self) -> None:
        self.maintenance.stop()  # central's audit, if one is running
        if self.driver is not None:
            try:  # outputs off first, before anything else is released
                await asyncio.to_thread(self.driver.all_off, list(self._by_board))
            except EdgeError as err:
                log.warning("locker: all-off at stop failed: %s", err)
            self.driver.close()
        if self.sim is not None and hasattr(self.sim, "stop"):
            self.sim.stop()

    def health(self) -> str:
        if self.hardware.down():
            return "down"
        if self.doors is not None and self.doors.boards_all_offline():
            return "down"
        if self.flows and any(a["kind"] in ("board_offline", "sensor_fault") for a in self.flows.alarms()):
            return "degraded"
        return "ok"

    # -- the hardware link (hardware.py), as the door code, tests and the demo use it --------------
    @property
    def driver(self) -> Any:
        """The board driver (SerialLockerDriver or the GPIO one), None before start()."""
        return self.hardware.driver

    @property
    def sim(self) -> Any:
        """PtySim or GpioDoorSim when port = "sim", else None."""
        return self.hardware.sim

    # -- opening a compartment, waiting for its door (opening.py) ---------------------------------
    async def open_compartment(self, compartment: int, *, cmd_id: str | None = None, reason: str = "remote",
                               actor: str = "central", prepare: Callable[[Tx], int | None] | None = None,
                               maintenance_ok: bool = False) -> dict:
        """Pulse one compartment once per `cmd_id`; the intent is durable before the pulse."""
        return await self.opening.open_compartment(compartment, cmd_id=cmd_id, reason=reason, actor=actor,
                                                   prepare=prepare, maintenance_ok=maintenance_ok)

    async def wait_door(self, compartment: int, state: str, timeout_s: float) -> bool:
        """True once the door reads `state` ("closed" right after an open: opened, then closed)."""
        return await self.opening.wait_door(compartment, state, timeout_s)

    # -- what the kiosk asks (edge.peers.LockerPeer) and staff's reclaim (kiosk_api.py) ----------
    async def lookup(self, receipt_code: str) -> dict:
        return await self.kiosk_api.lookup(receipt_code)

    async def verify_pin(self, receipt_code: str, pin: str) -> bool:
        return await self.kiosk_api.verify_pin(receipt_code, pin)

    async def mark_face_enrolled(self, receipt_code: str, enrolled: bool = True) -> None:
        await self.kiosk_api.mark_face_enrolled(receipt_code, enrolled)

    async def pickup(self, receipt_code: str, claim: dict, actor: str) -> dict:
        return await self.kiosk_api.pickup(receipt_code, claim, actor)

    async def load(self, staff_pin: str, receipt_code: str, size: str | None, pin: str | None = None,
                   deadline_days: int | None = None, *, accessible: bool = False, face_enrolled: bool = False,
                   phone: str | None = None) -> dict:
        return await self.kiosk_api.load(staff_pin, receipt_code, size, pin, deadline_days, accessible=accessible,
                                         face_enrolled=face_enrolled, phone=phone)

    async def load_as(self, staff: str, receipt_code: str, size: str | None, pin: str | None,
                      deadline_days: int | None, accessible: bool = False, face_enrolled: bool = False,
                      phone: str | None = None) -> dict:
        """Loading by an actor already known (central's `load`): no staff PIN to check."""
        return await self.kiosk_api.load_as(staff, receipt_code, size, pin, deadline_days, accessible,
                                            face_enrolled, phone)

    async def reclaim(self, staff_pin: str, receipt_code: str) -> dict:
        """Staff take back an expired result: its compartment opens and becomes free."""
        return await self.kiosk_api.reclaim(staff_pin, receipt_code)

    def _where(self, compartment: Any) -> tuple[int, int]:
        return where(self.config, compartment)

    def _check_timers(self) -> None:
        """The last step of each poll round (doors.py); a test counts the rounds here."""
        self.doors.check_timers()

    def view(self) -> dict:
        """For screens (edge.peers.LockerPeer): compartments, free count, alarms, health (views.py)."""
        return self.views.view()

    def snapshot(self) -> dict:
        """Retained on MQTT for central (views.py): no receipt codes, no personal data."""
        return self.views.snapshot()

    # -- central's commands and staff's door tools (remote.py) ------------------------------------
    async def handle_command(self, type: str, args: dict, cmd_id: str | None = None) -> dict:
        return await self.remote.handle(type, args, cmd_id)

    async def set_maintenance(self, compartment: int, on: bool, actor: str = "central") -> dict:
        return await self.maintenance.set_maintenance(compartment, on, actor)

    async def audit_open_all(self, actor: str = "central", wait_close_s: float = AUDIT_WAIT_CLOSE_S) -> list[dict]:
        """Staff audit: open every compartment one at a time, each after the previous door closed."""
        return await self.maintenance.audit_open_all(actor, wait_close_s)

    def expire_now(self, receipt: str | None = None) -> list[dict]:
        """Central's `expire`: expire `receipt` (or every overdue result) now, send the notices,
        publish, and forget the expired results' faces; returns what expired."""
        expired = self.flows.expire_due(receipt)
        notify.sweep(self.ctx.store, self.clock)
        self.publish_state()
        self._forget_faces(expired)
        return expired

    async def demo(self) -> None:
        """Load a result, then collect it with its PIN: the log shows doors opening and closing."""
        await locker_demo.run(self)

    # -- the vision peer -----------------------------------------------------------------------
    def _tell_vision(self, what: str, tell_it: Callable[[VisionForLocker], Awaitable[Any]]) -> None:
        """Best effort, after our own commit: the vision service may be absent or restarting.
        `tell_it(vision)` is called now (its arguments bound now) and awaited in a task."""
        vision = self.ctx.vision()
        if vision is None:
            return
        call = tell_it(vision)

        async def tell() -> None:
            try:
                await call
            except (EdgeError, ValueError) as err:
                log.warning("locker: vision %s failed: %s", what, err)

        task = asyncio.get_running_loop().create_task(tell())
        self._vision_calls.add(task)
        task.add_done_callback(self._vision_calls.discard)

    def _forget_faces(self, expired: list[dict]) -> None:
        """Expired results cannot be collected at the kiosk any more: their face templates go."""
        for item in expired:
            self._tell_vision(f"delete {item['receipt']}", lambda v: v.delete(item["receipt"], "expiry"))
