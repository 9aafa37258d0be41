"""Door polling and timers: what the boards read becomes door rows, events and alarms.

`DoorWatch` is a collaborator of LockerService (edge/locker/service.py), made in `start()` once the
flows exist. Each poll round (`poll_boards`, from `run()` and once at boot) reads every board; a change of a door is written with its event in one
transaction: an open explained by an open intent (or cut short by a restart) is `door_opened`,
one without is `forced_open`; a close after a pickup marks the result collected. The timers
(`check_timers`) turn an undetected pulse into `open_not_detected`, a long-open door into
`left_open`, and clear `sensor_fault` once a flapping door is quiet. All SQL is in queries.py.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, Awaitable, Callable

from edge.errors import DeviceNotReady
from edge.locker import queries
from edge.locker.config import LockerConfig
from edge.locker.flows import SERVICE, LockerFlows
from edge.locker.hardware import LockerHardware
from edge.peers import VisionForLocker
from edge.store import Store, Tx

log = logging.getLogger("edge.locker.service")  # the service's one logger, as before the split

INTERRUPTED_EXPLAINS_S = 300.0  # a door found open this soon after an interrupted open is not "forced"


class DoorWatch:
    """Reads the boards, records door changes, raises and clears the door alarms.

    It reads through `hardware` (the driver; a lost port is reopened before each round), writes
    through the store and the flows, publishes with `publish_state(tx)`, wakes `wait_door` through
    `changed`, beats `heartbeat` per board, and tells the vision peer (`tell_vision`) to forget the
    face of a result collected. It keeps the boards' failure counts and each door's recent changes.
    """

    def __init__(self, store: Store, config: LockerConfig, clock: Callable[[], float], flows: LockerFlows, *,
                 hardware: LockerHardware, by_board: dict[int, dict[int, int]], changed: asyncio.Condition,
                 publish_state: Callable[..., None], heartbeat: Callable[[], None],
                 tell_vision: Callable[[str, Callable[[VisionForLocker], Awaitable[Any]]], None]):
        self.store = store
        self.config = config
        self.clock = clock
        self.flows = flows
        self.hardware = hardware
        self.by_board = by_board
        self.changed = changed
        self.publish_state = publish_state
        self.heartbeat = heartbeat
        self.tell_vision = tell_vision
        self.failures = {b: 0 for b in by_board}
        self.changes: dict[int, collections.deque] = collections.defaultdict(collections.deque)

    def answering(self) -> set[int]:
        """The boards whose last status read (in the last poll round) got an answer."""
        return {board for board, failed in self.failures.items() if not failed}

    def boards_all_offline(self) -> bool:
        return bool(self.by_board) and all(n >= self.config.offline_after for n in self.failures.values())

    async def poll_boards(self, boot: bool = False) -> None:
        self.hardware.maybe_reconnect()
        doors = self.flows.doors()
        for board in sorted(self.by_board):
            self.heartbeat()
            try:
                reading = await asyncio.to_thread(self.hardware.driver.status, board)
            except DeviceNotReady as err:
                self.hardware.note_failure()
                self._board_failed(board, err, boot)
                continue
            self._board_ok(board)
            for lock, state in reading.locks.items():
                compartment = self.by_board[board].get(lock)
                if compartment is not None:
                    await self.door_reading(compartment, state.open, state.occupied, boot, doors.get(compartment))

    def _board_failed(self, board: int, err: Exception, boot: bool) -> None:
        self.failures[board] = self.failures.get(board, 0) + 1
        if self.failures[board] == 1:
            log.warning("locker: board %s did not answer: %s", board, err)
        if boot or self.failures[board] >= self.config.offline_after:
            with self.store.transaction() as tx:
                if self.flows.raise_alarm(tx, "board_offline", f"board:{board}", error=str(err)[:200]):
                    log.error("locker: board %s offline: %s", board, err)
                    self.publish_state(tx)

    def _board_ok(self, board: int) -> None:
        if self.failures.get(board):
            self.failures[board] = 0
            with self.store.transaction() as tx:
                if self.flows.clear_alarm(tx, "board_offline", f"board:{board}"):
                    log.info("locker: board %s answers again", board)
                    self.publish_state(tx)

    async def door_reading(self, compartment: int, is_open: bool, occupied: bool | None, boot: bool,
                            row: dict | None = None) -> None:
        door = "open" if is_open else "closed"
        collected = None
        row = self.flows.doors().get(compartment, {}) if row is None else row
        occ = row.get("occupied") if occupied is None else int(occupied)
        if row.get("door") == door:
            if row.get("occupied") != occ:
                with self.store.transaction() as tx:
                    queries.set_occupied(tx, compartment, occ)
                    self.publish_state(tx)
            return
        now = self.clock()
        with self.store.transaction() as tx:
            queries.set_door(tx, compartment, door, occ, now)
            if is_open:
                self._door_opened(tx, compartment, boot, first_reading=row.get("door") == "unknown")
            elif row.get("door") == "open":
                collected = self._door_closed(tx, compartment, occupied)
            self._track_flapping(tx, compartment, now)
            if not boot:
                self.publish_state(tx)
        async with self.changed:
            self.changed.notify_all()
        if collected:  # privacy: face templates go once the papers are collected (design §7)
            self.tell_vision(f"delete {collected}", lambda v: v.delete(collected, "pickup"))

    def _door_opened(self, tx: Tx, compartment: int, boot: bool, first_reading: bool) -> None:
        # An open explains a door opening if it is in flight, or was cut short by a restart lately.
        intent = queries.open_explaining(tx, compartment, self.clock() - INTERRUPTED_EXPLAINS_S)
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
        row = queries.opening_in(tx, compartment)
        if row:
            queries.mark_collected(tx, row[0], self.clock())
            tx.emit(SERVICE, "collected", receipt=row[1], compartment=compartment)
            tx.audit("locker", "locker.collected", receipt=row[1], compartment=compartment)
            log.info("locker: result %s collected from compartment %d", row[1], compartment)
            return row[1]
        return None

    def _track_flapping(self, tx: Tx, compartment: int, now: float) -> None:
        times = self.changes[compartment]
        times.append(now)
        while times and now - times[0] > self.config.flap_window_s:
            times.popleft()
        if len(times) >= self.config.flap_limit:
            self.flows.raise_alarm(tx, "sensor_fault", f"compartment:{compartment}", compartment=compartment,
                                   changes=len(times), window_s=self.config.flap_window_s)

    def check_timers(self) -> None:
        now = self.clock()
        if not self._timers_due(now):
            return  # the usual case: no write transaction, no wake-up of the MQTT drain
        changed = False
        with self.store.transaction() as tx:
            for cmd_id, compartment, assignment in queries.pulsed_before(tx, now - self.config.open_detect_s):
                if queries.door_state(tx, compartment) == "open":  # it was already open when pulsed: nothing to detect
                    self.flows.finish_intent(tx, cmd_id, "opened", "door was already open")
                else:
                    self._not_detected(tx, cmd_id, compartment, assignment)
                changed = True
            for compartment, since in queries.open_since_before(tx, now - self.config.left_open_s):
                if self.flows.raise_alarm(tx, "left_open", f"compartment:{compartment}", compartment=compartment,
                                          open_s=round(now - since, 1)):
                    log.warning("locker: door %d left open for %.0f s", compartment, now - since)
                    changed = True
            for compartment, times in self.changes.items():
                while times and now - times[0] > self.config.flap_window_s:
                    times.popleft()
                if not times:
                    changed |= self.flows.clear_alarm(tx, "sensor_fault", f"compartment:{compartment}")
            if changed:
                self.publish_state(tx)

    def _timers_due(self, now: float) -> bool:
        store = self.store
        if queries.any_pulsed_before(store, now - self.config.open_detect_s):
            return True
        if queries.any_open_unalarmed_before(store, now - self.config.left_open_s):
            return True
        faults = {a["target"] for a in self.flows.alarms() if a["kind"] == "sensor_fault"}
        return any(f"compartment:{c}" in faults and (not t or now - t[-1] > self.config.flap_window_s)
                   for c, t in self.changes.items())

    def _not_detected(self, tx: Tx, cmd_id: str, compartment: int, assignment: int | None) -> None:
        self.flows.finish_intent(tx, cmd_id, "not_detected")
        tx.emit(SERVICE, "open_not_detected", compartment=compartment, command=cmd_id)
        log.warning("locker: door %d did not open after its pulse (command %s)", compartment, cmd_id[:8])
        if assignment is not None:
            queries.back_to_waiting(tx, assignment)
