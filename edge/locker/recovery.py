"""Recovery after a restart: what a crash or power cut left half done, reported and never repeated.

`Recovery` is a collaborator of LockerService (edge/locker/service.py), made in `start()` once the
flows exist; `start()` runs both steps, the first before the boot poll (so a door found open is
explained by the interrupted open), the second after it (so it knows which doors are open).
"""

from __future__ import annotations

import logging

from edge.locker import queries
from edge.locker.flows import SERVICE, LockerFlows
from edge.store import Store

log = logging.getLogger("edge.locker.service")  # the service's one logger, as before the split


class Recovery:
    """Interrupted opens are reported, never re-sent; interrupted pickups wait again (or finish on close).

    It needs only the store (one transaction per step) and the flows (the open intents).
    """

    def __init__(self, store: Store, flows: LockerFlows):
        self.store = store
        self.flows = flows

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

    def recover_pickups(self) -> None:
        """A pickup cut short: door open -> the close will mark it collected; closed -> waiting again."""
        with self.store.transaction() as tx:
            for aid, compartment, door in queries.opening_with_door(tx):
                if door != "open" and not queries.has_pulsed_open(tx, aid):
                    queries.back_to_waiting(tx, aid)
                    tx.emit(SERVICE, "pickup_interrupted", compartment=compartment)
