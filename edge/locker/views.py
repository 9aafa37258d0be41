"""What the locker shows: the kiosk's and staff screens' `view()`, the retained `snapshot()` on MQTT.

`LockerViews` is a collaborator of LockerService (edge/locker/service.py), which delegates its
`view()` and `snapshot()` here. Neither carries a receipt code or any personal data: sizes,
states, doors, boards and alarms only.
"""

from __future__ import annotations

from typing import Callable, Iterable

from edge.locker import queries
from edge.locker.config import LockerConfig
from edge.locker.flows import LockerFlows
from edge.store import Store


class LockerViews:
    """Compartment states for screens and for central: read-only, from the store and the config.

    `flows()` is the service's LockerFlows, or None before `start()` (then every door is
    "unknown" and every compartment free); `health()` is the service's health for the screens.
    """

    def __init__(self, config: LockerConfig, store: Store, flows: Callable[[], LockerFlows | None],
                 boards: Iterable[int], health: Callable[[], str]):
        self.config = config
        self.store = store
        self.flows = flows
        self.boards = sorted(boards)
        self.health = health

    def _compartments(self, flows: LockerFlows | None) -> dict[int, dict]:
        doors = flows.doors() if flows else {}
        states = queries.live_statuses(self.store) if flows else {}
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
        flows = self.flows()
        comps = self._compartments(flows)
        return {"compartments": comps, "free": sum(1 for c in comps.values() if c["state"] == "free"),
                "alarms": len(flows.alarms()) if flows else 0, "health": self.health()}

    def snapshot(self) -> dict:
        """For central (retained on MQTT): compartments, doors, boards online/offline, alarms."""
        flows = self.flows()
        comps = self._compartments(flows)
        alarms = flows.alarms() if flows else []
        return {
            "compartments": {str(n): c for n, c in comps.items()},
            "doors": {str(n): c["door"] for n, c in comps.items()},
            "boards": {str(b): "offline" if any(a["target"] == f"board:{b}" for a in alarms) else "online"
                       for b in self.boards},
            "alarms": [{"alarm": a["kind"], "target": a["target"], "since": a["since"]} for a in alarms],
            "free": sum(1 for c in comps.values() if c["state"] == "free"),
        }
