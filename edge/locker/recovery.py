"""Recovery after a restart: what a crash or power cut left half done, reported and never repeated.

`Recovery` is a collaborator of LockerService (edge/locker/service.py), made in `start()` once the
flows exist; `start()` runs both steps, the first before the boot poll (so a door found open is
explained by the interrupted open), the second after it (so it knows which doors are open).

A pickup is decided only on a door read at this boot: one whose board did not answer stays
`opening` (nobody can start it again; the board's `board_offline` alarm, raised at boot, names the
board), and the poll loop hands it back here (`resume`) in the round its board first answers.
"""

from __future__ import annotations

import logging

from typing import Collection

from edge.locker import queries
from edge.locker.config import LockerConfig
from edge.locker.flows import SERVICE, LockerFlows
from edge.store import Store, Tx

log = logging.getLogger("edge.locker.service")  # the service's one logger, as before the split


class Recovery:
    """Interrupted opens are reported, never re-sent; interrupted pickups wait again (or finish on close).

    It needs the store (one transaction per step), the flows (the open intents) and the config
    (the board of each compartment). It keeps the pickups waiting for their board (assignment ->
    board): in memory only, as the store's `opening` rows say it again after another restart.
    """

    def __init__(self, store: Store, flows: LockerFlows, config: LockerConfig):
        self.store = store
        self.flows = flows
        self.config = config
        self.waiting_for_board: dict[int, int] = {}

    def report_interrupted(self) -> None:
        """An intent still `started` means we died around the pulse: report it, never repeat it."""
        with self.store.transaction() as tx:
            for intent in self.flows.pending_intents(("started",)):
                self.flows.finish_intent(tx, intent["id"], "interrupted", "process restarted mid-open")
                tx.emit(SERVICE, "open_interrupted", compartment=intent["compartment"], command=intent["id"],
                        reason=intent["reason"])
                tx.audit("locker", "locker.open_interrupted", id=intent["id"], compartment=intent["compartment"])
                log.warning("locker: open of compartment %d (command %s) was interrupted by a restart; not repeated",
                            intent["compartment"], intent["id"][:8])

    def recover_pickups(self, answered: Collection[int]) -> None:
        """At boot, after the boot poll: each pickup cut short is decided on its door as read now;
        one on a board that did not answer (`answered` lists those that did) waits for that board."""
        with self.store.transaction() as tx:
            for aid, compartment, door in queries.opening_with_door(tx):
                board = self.config.where(compartment).board
                if board in answered:
                    self._decide(tx, aid, compartment, door)
                    continue
                # Its door row is from before the restart: the door may be open now. Left `opening`,
                # no pickup can pulse it again; decided when the board answers.
                self.waiting_for_board[aid] = board
                log.warning("locker: board %s did not answer at boot: the interrupted pickup in compartment %d "
                            "stays as it is until the board answers", board, compartment)

    def resume(self, answered: Collection[int]) -> bool:
        """After a poll round: the pickups that waited for a board that answered in it are decided
        as at boot (that round has just read their doors). True if any was."""
        ready = {aid for aid, board in self.waiting_for_board.items() if board in answered}
        if not ready:
            return False  # the usual case: no transaction
        with self.store.transaction() as tx:
            for aid, compartment, door in queries.opening_with_door(tx):
                if aid in ready:  # (one collected by the door's close in that round is no longer `opening`)
                    log.info("locker: board %s answers: recovering the interrupted pickup in compartment %d",
                             self.waiting_for_board[aid], compartment)
                    self._decide(tx, aid, compartment, door)
        for aid in ready:
            del self.waiting_for_board[aid]
        return True

    @staticmethod
    def _decide(tx: Tx, aid: int, compartment: int, door: str) -> None:
        """A pickup cut short: door open -> the close will mark it collected; closed -> waiting again."""
        if door != "open" and not queries.has_pulsed_open(tx, aid):
            queries.back_to_waiting(tx, aid)
            tx.emit(SERVICE, "pickup_interrupted", compartment=compartment)
