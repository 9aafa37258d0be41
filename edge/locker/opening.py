"""Opening a compartment: the intent written before the pulse, the pulse, what it did; waiting for a door.

`Opening` is a collaborator of LockerService (edge/locker/service.py), made in `start()` once the
flows exist; the service keeps `open_compartment` and `wait_door` as delegations. Every route that
moves a bolt (a pickup, a loading, a reclaim, an audit, central's `open`) comes through
`open_compartment`: one bus transaction at a time (the service's `_hw` lock), one pulse at most per command id, a rate limit per compartment,
maintenance respected, and the pulse recorded even when its caller gives up half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, Callable

from edge.errors import DeviceNotReady
from edge.locker import queries, timing
from edge.locker.config import LockerConfig
from edge.locker.doors import DoorWatch
from edge.locker.driver import OpenUncertain
from edge.locker.flows import SERVICE, LockerFlows, LockerRefused
from edge.locker.hardware import LockerHardware
from edge.store import Store, Tx

log = logging.getLogger("edge.locker.service")  # the service's one logger, as before the split


def where(config: LockerConfig, compartment: Any) -> tuple[int, int]:
    """(board, lock) of a configured compartment; LockerRefused("bad_input") for anything else."""
    if not isinstance(compartment, int) or isinstance(compartment, bool) or str(compartment) not in config.compartments:
        raise LockerRefused("bad_input", f"unknown compartment {compartment!r}; configured: {config.compartment_ids()}")
    c = config.where(compartment)
    return c.board, c.lock


class Opening:
    """`open_compartment` (durable intent, then pulse) and `wait_door`.

    It pulses through `hardware` (the driver) holding `hw` (the one bus transaction at a time,
    shared with the door poll), records through the store and the flows, hands a reply that shows
    the door open to `doors` (the door poll's reading), `poke`s the poll loop after a pulse, and
    waits for doors on `changed` within `sleep` (timing.py).
    """

    def __init__(self, store: Store, config: LockerConfig, clock: Callable[[], float], flows: LockerFlows, *,
                 hardware: LockerHardware, doors: DoorWatch, hw: asyncio.Lock, poke: asyncio.Event,
                 changed: asyncio.Condition, publish_state: Callable[..., None], sleep: timing.Sleep):
        self.store = store
        self.config = config
        self.clock = clock
        self.flows = flows
        self.hardware = hardware
        self.doors = doors
        self.hw = hw
        self.poke = poke
        self.changed = changed
        self.publish_state = publish_state
        self.sleep = sleep

    async def open_compartment(self, compartment: int, *, cmd_id: str | None = None, reason: str = "remote",
                               actor: str = "central", prepare: Callable[[Tx], int | None] | None = None,
                               maintenance_ok: bool = False) -> dict:
        """Pulse one compartment once per `cmd_id`; the intent is durable before the pulse."""
        cmd_id = cmd_id or uuid.uuid4().hex
        async with self.hw:
            prior = self.flows.intent(cmd_id)
            if prior is not None:  # the same command again: answer, never pulse twice
                return {"compartment": prior["compartment"], "command": cmd_id, "state": prior["state"], "duplicate": True}
            board, lock = where(self.config, compartment)
            self._check_may_open(compartment, maintenance_ok)
            with self.store.transaction() as tx:
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
        self.poke.set()
        return {"compartment": compartment, "command": cmd_id, "state": "pulsed", "uncertain": uncertain}

    async def _pulse(self, cmd_id: str, compartment: int, board: int, lock: int, reason: str,
                     assignment: int | None) -> bool:
        """Send the open whose intent is recorded, then record what happened; True if uncertain."""
        try:
            result = await asyncio.to_thread(self.hardware.driver.open, board, lock, self.config.pulse_ms)
            uncertain, frames, note = False, result.frames_sent, result.note
        except OpenUncertain as err:  # sent, outcome unknown: the door reading will tell
            uncertain, frames, note = True, 1, str(err)
        except DeviceNotReady as err:  # nothing was sent
            self._open_failed(cmd_id, compartment, assignment, err)
            raise
        with self.store.transaction() as tx:
            self.flows.finish_intent(tx, cmd_id, "pulsed", note)
            tx.emit(SERVICE, "pulse_sent", compartment=compartment, board=board, lock=lock, command=cmd_id,
                    reason=reason, frames=frames, uncertain=uncertain)
            self.publish_state(tx)
        log.info("locker: pulse sent to compartment %d (board %s lock %s, %s)", compartment, board, lock, reason)
        if self.flows.doors().get(compartment, {}).get("door") == "open":
            with self.store.transaction() as tx:  # already open (a valid open always pulses)
                self.flows.finish_intent(tx, cmd_id, "opened", "door was already open")
        elif not uncertain and result.door_open:  # the board's reply already shows it open
            await self.doors.door_reading(compartment, True, None, False)
        return uncertain

    def _open_failed(self, cmd_id: str, compartment: int, assignment: int | None, err: Exception) -> None:
        with self.store.transaction() as tx:
            self.flows.finish_intent(tx, cmd_id, "failed", str(err)[:200])
            tx.emit(SERVICE, "open_failed", compartment=compartment, command=cmd_id, error=str(err)[:200])
            if assignment is not None:
                queries.back_to_waiting(tx, assignment)
        log.error("locker: open of compartment %d failed: %s", compartment, err)

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

    async def wait_door(self, compartment: int, state: str, timeout_s: float) -> bool:
        """True once the door reads `state`. Called right after an open, "closed" means opened then
        closed: False if that open was never detected (the door did not move)."""
        if state not in ("open", "closed"):
            raise ValueError(f"state must be 'open' or 'closed', found {state!r}")
        where(self.config, compartment)

        def reached() -> bool:
            # While an open of this door is in flight, "closed" means "not opened yet", not "done".
            pending = queries.in_flight_opens(self.store, compartment)
            return not pending and self.flows.doors().get(compartment, {}).get("door") == state

        async def reach() -> None:
            async with self.changed:
                await self.changed.wait_for(reached)

        in_flight = queries.in_flight_opens(self.store, compartment)
        # the timeout runs on the loop's sleep (timing.py): a test's clock moves it on
        done = await timing.within(self.sleep, timeout_s, reach()) or reached()
        if done and state == "closed" and in_flight:
            # "closed" after an open means opened and closed again: not a door that never opened.
            outcome = self.flows.intent(in_flight[0]["id"])
            return outcome is not None and outcome["state"] == "opened"
        return done
