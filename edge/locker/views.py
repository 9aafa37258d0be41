"""What the locker shows: the kiosk's and staff screens' `view()`, the retained `snapshot()` on MQTT.

Part of LockerService (edge/locker/service.py), as a mixin. Neither carries a receipt code or
any personal data: sizes, states, doors, boards and alarms only.
"""

from __future__ import annotations

from typing import Callable

from edge.locker import queries
from edge.locker.config import LockerConfig
from edge.locker.flows import LockerFlows
from edge.service import ServiceContext


class Views:
    """Compartment states for screens and for central."""

    ctx: ServiceContext
    config: LockerConfig
    flows: LockerFlows | None
    _by_board: dict[int, dict[int, int]]
    health: Callable[[], str]

    def _compartments(self) -> dict[int, dict]:
        doors = self.flows.doors() if self.flows else {}
        states = queries.live_statuses(self.ctx.store) if self.flows else {}
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
