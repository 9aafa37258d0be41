"""LockerService: boards -> doors -> assignments; pickups, loading, alarms; all through the store.

Boot: outputs off, every door read, interrupted opens reported (never repeated), retained
snapshot. Run: poll doors, raise/clear alarms, expire overdue results, reconnect a lost port.
Stop: outputs off first. Every open writes its intent before the pulse (see flows.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from typing import Any, Awaitable, Callable

from edge import phone as phones
from edge.errors import CommandError, ConfigError, DeviceNotReady, EdgeError
from edge.locker import setup
from edge.locker.commands import DOOR_COMMANDS
from edge.locker.config import LockerConfig
from edge.locker import notify
from edge.locker.driver import OpenUncertain, SerialLockerDriver
from edge.locker.flows import SERVICE, LockerFlows, LockerRefused, hash_citizen_pin, normalise_receipt
from edge.peers import VisionForLocker
from edge.qr.codes import dossier_code, not_a_dossier_code
from edge.service import Service
from edge.store import Tx

log = logging.getLogger(__name__)

EXPIRY_SWEEP_S = 60.0
RECONNECT_MAX_S = 30.0
AUDIT_WAIT_CLOSE_S = 60.0
STAFF_LOCKOUT_S = 300.0  # wrong staff codes count for this long (pin_attempts of them lock out)
INTERRUPTED_EXPLAINS_S = 300.0  # a door found open this soon after an interrupted open is not "forced"


class LockerService(Service):
    name = "locker"
    critical = True
    commands = {
        "open": {"compartment": int, "reason": (str, "remote")},
        "status": {},
        "load": {"receipt": str, "size": (str, None), "deadline_days": (int, None), "accessible": (bool, False),
                 "phone": (str, None)},
        "expire": {"receipt": (str, None)},
        "maintenance": {"compartment": int, "on": bool},
        "audit_open_all": {"wait_close_s": (float, AUDIT_WAIT_CLOSE_S)},
    }
    # Everything that moves a bolt must be signed by the central service (the one list, also
    # used by the dashboard's second confirmation).
    signed_commands = DOOR_COMMANDS
    # The poll loop beats every poll and every board; a bus read is bounded by reply_timeout_s.
    wedged_after_s = 30.0

    def __init__(self, ctx):
        super().__init__(ctx)
        self.config: LockerConfig = ctx.config if ctx.config is not None else LockerConfig()
        self.clock: Callable[[], float] = ctx.clock
        self.flows: LockerFlows | None = None
        self.driver: Any = None
        self.sim: Any = None  # PtySim or GpioDoorSim when port = "sim"
        self._hw = asyncio.Lock()  # one bus transaction, one coil, at a time
        self._loading = asyncio.Lock()
        self._vision_calls: set[asyncio.Task] = set()
        self._changed = asyncio.Condition()
        self._poke = asyncio.Event()
        self._by_board: dict[int, dict[int, int]] = {}
        for n in self.config.compartment_ids():
            c = self.config.where(n)
            self._by_board.setdefault(c.board, {})[c.lock] = n
        self._failures = {b: 0 for b in self._by_board}
        self._changes: dict[int, collections.deque] = collections.defaultdict(collections.deque)
        self._reconnect_at = 0.0
        self._reconnect_delay = 0.5
        self._port_lost = False
        self._last_sweep = 0.0
        self._audit_task: asyncio.Task | None = None
        # Wrong staff codes of the last STAFF_LOCKOUT_S, restored from the audit log so that a
        # restart (or a crash on purpose) does not hand a guesser a fresh set of attempts.
        self._staff_failures: collections.deque = collections.deque(
            row[0] for row in ctx.store.query(
                "SELECT ts FROM audit WHERE action = 'locker.staff_refused' AND ts > ? ORDER BY ts",
                (self.clock() - STAFF_LOCKOUT_S,)))

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        problems = self.config.problems()
        if problems:
            raise ConfigError(problems)
        self.flows = LockerFlows(self.ctx.store, self.config, self.clock)
        self._build_driver()
        await asyncio.to_thread(self.driver.all_off, list(self._by_board))
        self._report_interrupted()
        async with self._hw:
            await self._poll_boards(boot=True)
        self._recover_pickups()
        self.publish_state()
        log.info("locker: %d compartments on %d board(s) via %s at %s", len(self.config.compartments),
                 len(self._by_board), self.config.driver, self._port_name())

    async def run(self) -> None:
        while True:
            try:  # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel when the event fires
                async with asyncio.timeout(self.config.poll_interval_s):
                    await self._poke.wait()
            except TimeoutError:
                pass
            self._poke.clear()
            self.heartbeat()
            async with self._hw:
                await self._poll_boards()
            self._check_timers()
            if self.clock() - self._last_sweep >= EXPIRY_SWEEP_S:
                self._last_sweep = self.clock()
                expired = self.flows.expire_due()
                if expired:
                    self.publish_state()
                    for item in expired:   # no pickup at the kiosk any more: the face goes now
                        self._tell_vision(f"delete {item['receipt']}", lambda v: v.delete(item["receipt"], "expiry"))
                notify.sweep(self.ctx.store, self.clock)  # SMS reminders and expiry notices

    async def stop(self) -> None:
        if self._audit_task:
            self._audit_task.cancel()
        if self.driver is not None:
            try:  # outputs off first, before anything else is released
                await asyncio.to_thread(self.driver.all_off, list(self._by_board))
            except EdgeError as err:
                log.warning("locker: all-off at stop failed: %s", err)
            self.driver.close()
        if self.sim is not None and hasattr(self.sim, "stop"):
            self.sim.stop()

    def health(self) -> str:
        if self.driver is None or (self._port_lost and self.config.driver != "gpio"):
            return "down"
        if self._by_board and all(n >= self.config.offline_after for n in self._failures.values()):
            return "down"
        if self.flows and any(a["kind"] in ("board_offline", "sensor_fault") for a in self.flows.alarms()):
            return "degraded"
        return "ok"

    # -- hardware setup ------------------------------------------------------------------------
    def _build_driver(self) -> None:
        cfg = self.config  # the wiring is edge.locker.setup's, shared with `edge locker`
        if cfg.driver == "gpio":
            self.driver, self.sim = setup.gpio_driver(simulated=cfg.port == "sim", polarity=cfg.polarity,
                                                      pin_factory=self.ctx.pin_factory, relay_pins=cfg.gpio.relay_pins,
                                                      sensor_pins=cfg.gpio.sensor_pins)
            return
        protocol = setup.serial_protocol(cfg.driver, cfg.polarity)
        if cfg.port == "sim":
            self.sim = setup.bus_sim(cfg.driver, self._by_board, polarity=cfg.polarity,
                                     auto_close_s=cfg.sim.auto_close_s)
        self.driver = SerialLockerDriver(protocol, transport=None, reply_timeout_s=cfg.reply_timeout_s,
                                         retries=cfg.retries)
        self._connect()

    def _port_name(self) -> str:
        return self.sim.path if self.sim is not None and hasattr(self.sim, "path") else self.config.port

    def _connect(self) -> bool:
        cfg = self.config
        try:
            transport = setup.open_bus(self._port_name(), self.driver.protocol, baud=cfg.baud,
                                       timeout_s=cfg.reply_timeout_s)
        except DeviceNotReady as err:
            if not self._port_lost:
                log.warning("locker: cannot open %s: %s (retrying)", self._port_name(), err)
            self._port_lost = True
            return False
        self.driver.attach(transport)
        if self._port_lost:
            log.info("locker: port %s is back", self._port_name())
        self._port_lost, self._reconnect_delay = False, 0.5
        return True

    def _maybe_reconnect(self) -> None:
        if self.config.driver == "gpio" or self.driver.transport is not None:
            return
        now = self.clock()
        if now < self._reconnect_at:
            return
        if not self._connect():
            self._reconnect_delay = min(self._reconnect_delay * 2, RECONNECT_MAX_S)
            self._reconnect_at = now + self._reconnect_delay

    # -- door polling --------------------------------------------------------------------------
    async def _poll_boards(self, boot: bool = False) -> None:
        self._maybe_reconnect()
        doors = self.flows.doors()
        for board in sorted(self._by_board):
            self.heartbeat()
            try:
                reading = await asyncio.to_thread(self.driver.status, board)
            except DeviceNotReady as err:
                if self.config.driver != "gpio" and self.driver.transport is None:
                    self._port_lost = True
                self._board_failed(board, err, boot)
                continue
            self._board_ok(board)
            for lock, state in reading.locks.items():
                compartment = self._by_board[board].get(lock)
                if compartment is not None:
                    await self._door_reading(compartment, state.open, state.occupied, boot, doors.get(compartment))

    def _board_failed(self, board: int, err: Exception, boot: bool) -> None:
        self._failures[board] = self._failures.get(board, 0) + 1
        if self._failures[board] == 1:
            log.warning("locker: board %s did not answer: %s", board, err)
        if boot or self._failures[board] >= self.config.offline_after:
            with self.ctx.store.transaction() as tx:
                if self.flows.raise_alarm(tx, "board_offline", f"board:{board}", error=str(err)[:200]):
                    log.error("locker: board %s offline: %s", board, err)
                    self.publish_state(tx)

    def _board_ok(self, board: int) -> None:
        if self._failures.get(board):
            self._failures[board] = 0
            with self.ctx.store.transaction() as tx:
                if self.flows.clear_alarm(tx, "board_offline", f"board:{board}"):
                    log.info("locker: board %s answers again", board)
                    self.publish_state(tx)

    async def _door_reading(self, compartment: int, is_open: bool, occupied: bool | None, boot: bool,
                            row: dict | None = None) -> None:
        door = "open" if is_open else "closed"
        collected = None
        row = self.flows.doors().get(compartment, {}) if row is None else row
        occ = row.get("occupied") if occupied is None else int(occupied)
        if row.get("door") == door:
            if row.get("occupied") != occ:
                with self.ctx.store.transaction() as tx:
                    tx.execute("UPDATE locker_doors SET occupied = ? WHERE compartment = ?", (occ, compartment))
                    self.publish_state(tx)
            return
        now = self.clock()
        with self.ctx.store.transaction() as tx:
            tx.execute("UPDATE locker_doors SET door = ?, occupied = ?, since = ? WHERE compartment = ?",
                       (door, occ, now, compartment))
            if is_open:
                self._door_opened(tx, compartment, boot, first_reading=row.get("door") == "unknown")
            elif row.get("door") == "open":
                collected = self._door_closed(tx, compartment, occupied)
            self._track_flapping(tx, compartment, now)
            if not boot:
                self.publish_state(tx)
        async with self._changed:
            self._changed.notify_all()
        if collected:  # privacy: face templates go once the papers are collected (design §7)
            self._tell_vision(f"delete {collected}", lambda v: v.delete(collected, "pickup"))

    def _door_opened(self, tx: Tx, compartment: int, boot: bool, first_reading: bool) -> None:
        # An open explains a door opening if it is in flight, or was cut short by a restart lately.
        intent = tx.execute("SELECT id, reason FROM locker_opens WHERE compartment = ? AND (state IN "
                            "('started', 'pulsed') OR (state = 'interrupted' AND created > ?)) "
                            "ORDER BY created DESC LIMIT 1",
                            (compartment, self.clock() - INTERRUPTED_EXPLAINS_S)).fetchone()
        if intent:
            self.flows.finish_intent(tx, intent[0], "opened")
            tx.emit(SERVICE, "door_opened", compartment=compartment, command=intent[0], reason=intent[1])
            log.info("locker: door %d opened (%s, command %s)", compartment, intent[1], intent[0][:8])
            return
        tx.emit(SERVICE, "door_opened", compartment=compartment, commanded=False, at_boot=boot)
        if boot and first_reading:
            log.warning("locker: door %d is open at boot", compartment)
            return
        log.error("locker: door %d opened without a command", compartment)
        self.flows.raise_alarm(tx, "forced_open", f"compartment:{compartment}", compartment=compartment)

    def _door_closed(self, tx: Tx, compartment: int, occupied: bool | None) -> str | None:
        """Record a door closing; returns the receipt collected by it, if any."""
        tx.emit(SERVICE, "door_closed", compartment=compartment, occupied=occupied)
        log.info("locker: door %d closed", compartment)
        for kind in ("left_open", "forced_open"):
            self.flows.clear_alarm(tx, kind, f"compartment:{compartment}")
        row = tx.execute("SELECT id, receipt FROM locker_assignments WHERE compartment = ? AND status = 'opening'",
                         (compartment,)).fetchone()
        if row:
            tx.execute("UPDATE locker_assignments SET status = 'collected', closed_at = ? WHERE id = ?",
                       (self.clock(), row[0]))
            tx.emit(SERVICE, "collected", receipt=row[1], compartment=compartment)
            tx.audit("locker", "locker.collected", receipt=row[1], compartment=compartment)
            log.info("locker: result %s collected from compartment %d", row[1], compartment)
            return row[1]
        return None

    def _track_flapping(self, tx: Tx, compartment: int, now: float) -> None:
        times = self._changes[compartment]
        times.append(now)
        while times and now - times[0] > self.config.flap_window_s:
            times.popleft()
        if len(times) >= self.config.flap_limit:
            self.flows.raise_alarm(tx, "sensor_fault", f"compartment:{compartment}", compartment=compartment,
                                   changes=len(times), window_s=self.config.flap_window_s)

    def _check_timers(self) -> None:
        now = self.clock()
        if not self._timers_due(now):
            return  # the usual case: no write transaction, no wake-up of the MQTT drain
        changed = False
        with self.ctx.store.transaction() as tx:
            for cmd_id, compartment, assignment in tx.execute(
                    "SELECT o.id, o.compartment, o.assignment FROM locker_opens o WHERE o.state = 'pulsed' "
                    "AND o.pulsed < ?", (now - self.config.open_detect_s,)).fetchall():
                door = tx.execute("SELECT door FROM locker_doors WHERE compartment = ?", (compartment,)).fetchone()
                if door and door[0] == "open":  # it was already open when pulsed: nothing to detect
                    self.flows.finish_intent(tx, cmd_id, "opened", "door was already open")
                else:
                    self._not_detected(tx, cmd_id, compartment, assignment)
                changed = True
            doors = tx.execute("SELECT compartment, since FROM locker_doors WHERE door = 'open' AND since < ?",
                               (now - self.config.left_open_s,)).fetchall()
            for compartment, since in doors:
                if self.flows.raise_alarm(tx, "left_open", f"compartment:{compartment}", compartment=compartment,
                                          open_s=round(now - since, 1)):
                    log.warning("locker: door %d left open for %.0f s", compartment, now - since)
                    changed = True
            for compartment, times in self._changes.items():
                while times and now - times[0] > self.config.flap_window_s:
                    times.popleft()
                if not times:
                    changed |= self.flows.clear_alarm(tx, "sensor_fault", f"compartment:{compartment}")
            if changed:
                self.publish_state(tx)

    def _timers_due(self, now: float) -> bool:
        q = self.ctx.store.query
        if q("SELECT 1 FROM locker_opens WHERE state = 'pulsed' AND pulsed < ? LIMIT 1",
             (now - self.config.open_detect_s,)):
            return True
        if q("SELECT 1 FROM locker_doors d WHERE d.door = 'open' AND d.since < ? AND NOT EXISTS (SELECT 1 FROM "
             "locker_alarms a WHERE a.kind = 'left_open' AND a.target = 'compartment:' || d.compartment) LIMIT 1",
             (now - self.config.left_open_s,)):
            return True
        faults = {a["target"] for a in self.flows.alarms() if a["kind"] == "sensor_fault"}
        return any(f"compartment:{c}" in faults and (not t or now - t[-1] > self.config.flap_window_s)
                   for c, t in self._changes.items())

    def _not_detected(self, tx: Tx, cmd_id: str, compartment: int, assignment: int | None) -> None:
        self.flows.finish_intent(tx, cmd_id, "not_detected")
        tx.emit(SERVICE, "open_not_detected", compartment=compartment, command=cmd_id)
        log.warning("locker: door %d did not open after its pulse (command %s)", compartment, cmd_id[:8])
        if assignment is not None:
            tx.execute("UPDATE locker_assignments SET status = 'waiting' WHERE id = ? AND status = 'opening'",
                       (assignment,))

    # -- recovery after a restart --------------------------------------------------------------
    def _report_interrupted(self) -> None:
        """An intent still `started` means we died around the pulse: report it, never repeat it."""
        with self.ctx.store.transaction() as tx:
            for intent in self.flows.pending_intents(("started",)):
                self.flows.finish_intent(tx, intent["id"], "interrupted", "process restarted mid-open")
                tx.emit(SERVICE, "open_interrupted", compartment=intent["compartment"], command=intent["id"],
                        reason=intent["reason"])
                tx.audit("locker", "locker.open_interrupted", id=intent["id"], compartment=intent["compartment"])
                log.warning("locker: open of compartment %d (command %s) was interrupted by a restart; not repeated",
                            intent["compartment"], intent["id"][:8])

    def _recover_pickups(self) -> None:
        """A pickup cut short: door open -> the close will mark it collected; closed -> waiting again."""
        with self.ctx.store.transaction() as tx:
            rows = tx.execute("SELECT a.id, a.compartment, d.door FROM locker_assignments a JOIN locker_doors d "
                              "ON d.compartment = a.compartment WHERE a.status = 'opening'").fetchall()
            for aid, compartment, door in rows:
                live = tx.execute("SELECT 1 FROM locker_opens WHERE assignment = ? AND state = 'pulsed'", (aid,)).fetchone()
                if door != "open" and not live:
                    tx.execute("UPDATE locker_assignments SET status = 'waiting' WHERE id = ?", (aid,))
                    tx.emit(SERVICE, "pickup_interrupted", compartment=compartment)

    # -- opening -------------------------------------------------------------------------------
    async def open_compartment(self, compartment: int, *, cmd_id: str | None = None, reason: str = "remote",
                               actor: str = "central", prepare: Callable[[Tx], int | None] | None = None,
                               maintenance_ok: bool = False) -> dict:
        """Pulse one compartment once per `cmd_id`; the intent is durable before the pulse."""
        cmd_id = cmd_id or uuid.uuid4().hex
        async with self._hw:
            prior = self.flows.intent(cmd_id)
            if prior is not None:  # the same command again: answer, never pulse twice
                return {"compartment": prior["compartment"], "command": cmd_id, "state": prior["state"], "duplicate": True}
            board, lock = self._where(compartment)
            self._check_may_open(compartment, maintenance_ok)
            with self.ctx.store.transaction() as tx:
                assignment = prepare(tx) if prepare else None
                self.flows.record_intent(tx, cmd_id=cmd_id, compartment=compartment, reason=reason, actor=actor,
                                         assignment=assignment)
            # From here the frame may be on the wire: a caller that gives up (a kiosk session torn down)
            # must not leave the pulse unrecorded, so it runs as its own task and keeps the bus till done.
            work = asyncio.ensure_future(self._pulse(cmd_id, compartment, board, lock, reason, assignment))
            try:
                uncertain = await asyncio.shield(work)
            except asyncio.CancelledError:
                while not work.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait({work})
                if not work.cancelled():
                    work.exception()  # retrieved (its failure is already recorded); the caller gets its cancel
                raise
        self._poke.set()
        return {"compartment": compartment, "command": cmd_id, "state": "pulsed", "uncertain": uncertain}

    async def _pulse(self, cmd_id: str, compartment: int, board: int, lock: int, reason: str,
                     assignment: int | None) -> bool:
        """Send the open whose intent is recorded, then record what happened; True if uncertain."""
        try:
            result = await asyncio.to_thread(self.driver.open, board, lock, self.config.pulse_ms)
            uncertain, frames, note = False, result.frames_sent, result.note
        except OpenUncertain as err:  # sent, outcome unknown: the door reading will tell
            uncertain, frames, note = True, 1, str(err)
        except DeviceNotReady as err:  # nothing was sent
            self._open_failed(cmd_id, compartment, assignment, err)
            raise
        with self.ctx.store.transaction() as tx:
            self.flows.finish_intent(tx, cmd_id, "pulsed", note)
            tx.emit(SERVICE, "pulse_sent", compartment=compartment, board=board, lock=lock, command=cmd_id,
                    reason=reason, frames=frames, uncertain=uncertain)
            self.publish_state(tx)
        log.info("locker: pulse sent to compartment %d (board %s lock %s, %s)", compartment, board, lock, reason)
        if self.flows.doors().get(compartment, {}).get("door") == "open":
            with self.ctx.store.transaction() as tx:  # already open (a valid open always pulses)
                self.flows.finish_intent(tx, cmd_id, "opened", "door was already open")
        elif not uncertain and result.door_open:  # the board's reply already shows it open
            await self._door_reading(compartment, True, None, False)
        return uncertain

    def _open_failed(self, cmd_id: str, compartment: int, assignment: int | None, err: Exception) -> None:
        with self.ctx.store.transaction() as tx:
            self.flows.finish_intent(tx, cmd_id, "failed", str(err)[:200])
            tx.emit(SERVICE, "open_failed", compartment=compartment, command=cmd_id, error=str(err)[:200])
            if assignment is not None:
                tx.execute("UPDATE locker_assignments SET status = 'waiting' WHERE id = ? AND status = 'opening'",
                           (assignment,))
        log.error("locker: open of compartment %d failed: %s", compartment, err)

    def _where(self, compartment: Any) -> tuple[int, int]:
        if not isinstance(compartment, int) or isinstance(compartment, bool) or str(compartment) not in self.config.compartments:
            raise LockerRefused("bad_input", f"unknown compartment {compartment!r}; configured: {self.config.compartment_ids()}")
        c = self.config.where(compartment)
        return c.board, c.lock

    def _check_may_open(self, compartment: int, maintenance_ok: bool) -> None:
        row = self.flows.doors().get(compartment, {})
        if row.get("maintenance") and not maintenance_ok:
            raise LockerRefused("maintenance", f"compartment {compartment} is under maintenance")
        last = row.get("last_pulse")
        if last is not None:
            wait = self.config.rate_limit_s - (self.clock() - last)
            if wait > 0:
                raise LockerRefused("rate", f"compartment {compartment} was opened {self.clock() - last:.1f} s ago; "
                                            f"wait {wait:.1f} s")

    # -- the kiosk's API -----------------------------------------------------------------------
    async def lookup(self, receipt_code: str) -> dict:
        found = self.flows.lookup(receipt_code)
        vision = self.ctx.vision()
        if found["status"] == "waiting" and not found["face_enrolled"] and vision is not None:
            try:  # the vision service knows enrolments made after loading
                found["face_enrolled"] = bool(await vision.enrolled(normalise_receipt(receipt_code)))
            except (EdgeError, ValueError) as err:
                log.warning("locker: vision could not say whether %s is enrolled: %s", receipt_code, err)
        return found

    async def verify_pin(self, receipt_code: str, pin: str) -> bool:
        return await asyncio.to_thread(self.flows.verify_pin, receipt_code, pin)

    async def mark_face_enrolled(self, receipt_code: str, enrolled: bool = True) -> None:
        self.flows.mark_face_enrolled(receipt_code, enrolled)

    async def pickup(self, receipt_code: str, claim: dict, actor: str) -> dict:
        receipt = normalise_receipt(receipt_code)
        with self.ctx.store.transaction() as tx:  # refuse early: nothing is written on a refusal
            a = self.flows.claim_for_pickup(tx, receipt, claim)

        def prepare(tx: Tx) -> int:
            again = self.flows.claim_for_pickup(tx, receipt, claim)  # still waiting, inside the intent's tx
            if (again.id, again.compartment) != (a.id, a.compartment):  # reclaimed and reloaded meanwhile
                raise LockerRefused("busy", f"the result of {receipt} moved while waiting; try again")
            # A verified PIN is used up by this pickup: a door that does not open asks for it again.
            tx.execute("UPDATE locker_assignments SET status = 'opening', pin_verified_at = NULL WHERE id = ?",
                       (again.id,))
            tx.audit(actor, "locker.pickup", receipt=receipt, compartment=again.compartment,
                     method=claim["method"], ref=str(claim["ref"])[:64])
            return again.id

        await self.open_compartment(a.compartment, reason="pickup", actor=actor, prepare=prepare)
        return {"compartment": a.compartment}

    async def wait_door(self, compartment: int, state: str, timeout_s: float) -> bool:
        """True once the door reads `state`. Called right after an open, "closed" means opened then
        closed: False if that open was never detected (the door did not move)."""
        if state not in ("open", "closed"):
            raise ValueError(f"state must be 'open' or 'closed', found {state!r}")
        self._where(compartment)

        def reached() -> bool:
            # While an open of this door is in flight, "closed" means "not opened yet", not "done".
            pending = self.ctx.store.query("SELECT 1 FROM locker_opens WHERE compartment = ? AND state IN "
                                           "('started', 'pulsed')", (compartment,))
            return not pending and self.flows.doors().get(compartment, {}).get("door") == state

        in_flight = self.ctx.store.query("SELECT id FROM locker_opens WHERE compartment = ? AND state IN "
                                         "('started', 'pulsed')", (compartment,))
        async with self._changed:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._changed.wait_for(reached)
                done = True
            except TimeoutError:
                done = reached()
        if done and state == "closed" and in_flight:
            # "closed" after an open means opened and closed again: not a door that never opened.
            outcome = self.flows.intent(in_flight[0]["id"])
            return outcome is not None and outcome["state"] == "opened"
        return done

    async def load(self, staff_pin: str, receipt_code: str, size: str | None, pin: str | None = None,
                   deadline_days: int | None = None, *, accessible: bool = False, face_enrolled: bool = False,
                   phone: str | None = None) -> dict:
        phone = self._phone(phone, pin)  # a bad number is refused before the staff PIN is even checked
        staff = await self._staff(staff_pin)
        return await self._load(staff, receipt_code, size, pin, deadline_days, accessible, face_enrolled, phone)

    @staticmethod
    def _phone(phone: Any, pin: Any) -> str | None:
        """The citizen's mobile as +84…, or None; with a phone the device makes the PIN itself."""
        try:
            phone = phones.optional(phone)
        except phones.BadPhone as err:
            raise LockerRefused("phone", f"phone number {err.why}: {phones.MESSAGE_EN}") from err
        if phone and pin:
            raise LockerRefused("bad_input", "with a phone number the locker makes the PIN and sends it by SMS: "
                                             "leave the PIN empty")
        return phone

    async def _load(self, staff: str, receipt_code: str, size: str | None, pin: str | None,
                    deadline_days: int | None, accessible: bool = False, face_enrolled: bool = False,
                    phone: str | None = None) -> dict:
        receipt = loadable_receipt(receipt_code)
        size = size.strip().upper() if isinstance(size, str) and size.strip() else None
        if phone:  # the PIN goes to the citizen's phone only: never shown to staff, only its hash kept
            pin = notify.make_pin()
        pin_hash = await asyncio.to_thread(hash_citizen_pin, pin)  # PBKDF2 off the event loop
        async with self._loading:  # two desks loading at once never get the same compartment
            compartment = self.flows.choose_compartment(size, accessible)
            real_size = self.config.where(compartment).size

            def prepare(tx: Tx) -> int:
                return self.flows.create_assignment(tx, receipt=receipt, compartment=compartment, size=real_size,
                                                    pin_hash=pin_hash, deadline_days=deadline_days, staff=staff,
                                                    face_enrolled=face_enrolled, phone=phone,
                                                    pin=pin if phone else None)

            await self.open_compartment(compartment, reason="load", actor=staff, prepare=prepare)
        log.info("locker: %s loaded %s into compartment %d", staff, receipt, compartment)
        # from now on 1:N may consider this dossier
        self._tell_vision(f"result_waiting {receipt}", lambda v: v.result_waiting(receipt, True))
        return {"compartment": compartment, **({"sms_to": phones.mask(phone)} if phone else {})}

    async def reclaim(self, staff_pin: str, receipt_code: str) -> dict:
        """Staff take back an expired result: its compartment opens and becomes free."""
        staff = await self._staff(staff_pin)
        receipt = normalise_receipt(receipt_code)
        a = self.flows.live_assignment(receipt)
        if a is None or a.status not in ("expired", "waiting"):
            raise LockerRefused("unknown", f"no result of {receipt} to reclaim")

        def prepare(tx: Tx) -> None:
            cur = tx.execute("UPDATE locker_assignments SET status = 'reclaimed', closed_at = ? WHERE id = ? "
                             "AND status IN ('expired', 'waiting')", (self.clock(), a.id))
            if not cur.rowcount:  # collected (or being collected) while we waited for the bus
                raise LockerRefused("unknown", f"no result of {receipt} to reclaim any more")
            tx.emit(SERVICE, "reclaimed", receipt=receipt, compartment=a.compartment)
            tx.audit(staff, "locker.reclaim", receipt=receipt, compartment=a.compartment)

        await self.open_compartment(a.compartment, reason="reclaim", actor=staff, prepare=prepare, maintenance_ok=True)
        # the papers went back: nothing to collect
        self._tell_vision(f"delete {receipt}", lambda v: v.delete(receipt, "reclaim"))
        return {"compartment": a.compartment}

    async def set_maintenance(self, compartment: int, on: bool, actor: str = "central") -> dict:
        self._where(compartment)
        with self.ctx.store.transaction() as tx:
            tx.execute("UPDATE locker_doors SET maintenance = ? WHERE compartment = ?", (int(on), compartment))
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

    async def _staff(self, staff_pin: str) -> str:
        now = self.clock()
        while self._staff_failures and now - self._staff_failures[0] > STAFF_LOCKOUT_S:
            self._staff_failures.popleft()
        if len(self._staff_failures) >= self.config.pin_attempts:
            raise LockerRefused("staff", "too many wrong staff codes; wait 5 minutes")
        staff = await asyncio.to_thread(self.flows.staff_id, staff_pin)
        if staff is None:
            self._staff_failures.append(now)
            with self.ctx.store.transaction() as tx:
                tx.audit("kiosk", "locker.staff_refused")
            raise LockerRefused("staff")
        return staff

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

    # -- views ---------------------------------------------------------------------------------
    def _compartments(self) -> dict[int, dict]:
        doors = self.flows.doors() if self.flows else {}
        states = {}
        if self.flows:
            for r in self.ctx.store.query("SELECT compartment, status FROM locker_assignments "
                                          "WHERE status IN ('waiting', 'opening', 'expired')"):
                states[r["compartment"]] = r["status"]
        out = {}
        for n in self.config.compartment_ids():
            c, d = self.config.where(n), doors.get(n, {})
            state = "maintenance" if d.get("maintenance") else {"waiting": "occupied"}.get(states.get(n), states.get(n, "free"))
            occ = d.get("occupied")
            out[n] = {"size": c.size, "accessible": c.accessible, "state": state, "door": d.get("door", "unknown"),
                      "occupied": None if occ is None else bool(occ)}
        return out

    def view(self) -> dict:
        """For screens: compartments with size, state and door; no receipt codes, no personal data."""
        comps = self._compartments()
        return {"compartments": comps, "free": sum(1 for c in comps.values() if c["state"] == "free"),
                "alarms": len(self.flows.alarms()) if self.flows else 0, "health": self.health()}

    def snapshot(self) -> dict:
        comps = self._compartments()
        alarms = self.flows.alarms() if self.flows else []
        return {
            "compartments": {str(n): c for n, c in comps.items()},
            "doors": {str(n): c["door"] for n, c in comps.items()},
            "boards": {str(b): "offline" if any(a["target"] == f"board:{b}" for a in alarms) else "online"
                       for b in sorted(self._by_board)},
            "alarms": [{"alarm": a["kind"], "target": a["target"], "since": a["since"]} for a in alarms],
            "free": sum(1 for c in comps.values() if c["state"] == "free"),
        }

    # -- MQTT ----------------------------------------------------------------------------------
    async def handle_command(self, type: str, args: dict, cmd_id: str | None = None) -> dict:
        try:
            if type == "status":
                return self.snapshot()
            if type == "open":
                return await self.open_compartment(args["compartment"], cmd_id=cmd_id,
                                                   reason=f"remote:{args['reason']}"[:64], actor="central")
            if type == "load":
                return await self._load("central", args["receipt"], args["size"], None, args["deadline_days"],
                                        args["accessible"], phone=self._phone(args.get("phone"), None))
            if type == "expire":
                expired = self.flows.expire_due(args["receipt"])
                notify.sweep(self.ctx.store, self.clock)
                self.publish_state()
                for item in expired:
                    self._tell_vision(f"delete {item['receipt']}", lambda v: v.delete(item["receipt"], "expiry"))
                return {"expired": expired}
            if type == "maintenance":
                return await self.set_maintenance(args["compartment"], args["on"])
            if type == "audit_open_all":
                if self._audit_task and not self._audit_task.done():
                    raise CommandError("an audit is already running")
                self._audit_task = asyncio.create_task(self.audit_open_all("central", args["wait_close_s"]))
                return {"started": len(self.config.compartments)}
        except DeviceNotReady as err:
            raise CommandError(f"locker hardware not ready: {err}") from err
        raise CommandError(f"unknown locker command {type!r}")

    # -- demo ----------------------------------------------------------------------------------
    async def demo(self) -> None:
        """Load a result, then collect it with its PIN: the log shows doors opening and closing."""
        from edge.locker.sim import PtySim

        if not isinstance(self.sim, PtySim) or not self.config.staff_pins:
            log.info("locker: demo needs port = 'sim' and a staff PIN")
            return
        n = 0
        while True:
            n += 1
            receipt = demo_receipt(n)
            try:
                comp = (await self.load(DEMO_STAFF_PIN, receipt, "M", pin=DEMO_PIN))["compartment"]
            except EdgeError as err:
                log.info("locker demo: loading refused: %s", err)
                await asyncio.sleep(5)
                continue
            c = self.config.where(comp)
            self.sim.bus.set_occupied(c.board, c.lock, True)
            log.info("locker demo: %s placed in compartment %d", receipt, comp)
            await self.wait_door(comp, "closed", 30)
            await asyncio.sleep(max(self.config.rate_limit_s, 1.0))
            if await self.verify_pin(receipt, DEMO_PIN):
                await self.pickup(receipt, {"method": "pin", "ref": f"demo-{n}"}, actor="demo")
                self.sim.bus.set_occupied(c.board, c.lock, False)
                closed = await self.wait_door(comp, "closed", 30)
                log.info("locker demo: %s collected from compartment %d (door closed: %s)", receipt, comp, closed)
            await asyncio.sleep(5)


def loadable_receipt(receipt_code: Any) -> str:
    """The receipt code to load, refused unless it is a dossier code (edge.qr.codes): whatever route
    a loading comes by (staff screen, MQTT `load`, the demo), no result goes in that no citizen can collect."""
    code = dossier_code(receipt_code)
    if code is None:
        raise LockerRefused("bad_input", not_a_dossier_code(receipt_code))
    return normalise_receipt(code)


def demo_receipt(n: int) -> str:
    """The demo's n-th result: a real dossier-code form (the kiosk's demo results use -0101 and up;
    the vision demo enrols the first one, edge.vision.service.DEMO_DOSSIER)."""
    return f"000.00.01.H29-261207-{9000 + n % 1000:04d}"


DEMO_STAFF_PIN = "1234"  # its hash is in edge/demo.toml [locker.staff_pins]
DEMO_PIN = "2468"
