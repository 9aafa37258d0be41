"""The one list of locker commands that move a door.

Declared here, once, and used by:
- the device: `LockerService.signed_commands` (a door-moving command must carry a valid HMAC
  signature from central, `edge.security.check_signature`);
- the office dashboard: a door-moving command needs a second confirmation before it is sent
  (`edge.central.cmd.needs_confirmation`).

`load` opens the compartment it assigns (staff put the papers in), `audit_open_all` opens every
compartment one after the other: both move bolts, like `open`.
"""

from __future__ import annotations

SERVICE = "locker"

DOOR_COMMANDS: frozenset[str] = frozenset({"open", "load", "audit_open_all"})


def moves_a_door(service: str, cmd_type: str) -> bool:
    """True when `cmd_type` sent to `service` can open a compartment."""
    return service == SERVICE and cmd_type in DOOR_COMMANDS
