"""The locker demo (`edge demo`): load a result, collect it with its PIN, again and again.

On the Kerong pty simulator the log shows each door opening and closing. The receipts are real
dossier codes (`demo_receipt`), loaded with the demo staff PIN, collected with `DEMO_PIN`; the
pauses go through the service's sleep (edge.locker.timing).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from edge.errors import EdgeError

if TYPE_CHECKING:
    from edge.locker.service import LockerService

log = logging.getLogger("edge.locker.service")  # the service's one logger, as before the split

def demo_receipt(n: int) -> str:
    """The demo's n-th result: a real dossier-code form (the kiosk's demo results use -0101 and up;
    the vision demo enrols the first one, edge.vision.service.DEMO_DOSSIER)."""
    return f"000.00.01.H29-261207-{9000 + n % 1000:04d}"


DEMO_STAFF_PIN = "1234"  # its hash is in edge/demo.toml [locker.staff_pins]
DEMO_PIN = "2468"


async def run(svc: LockerService) -> None:
    """Load a result, then collect it with its PIN: the log shows doors opening and closing."""
    from edge.locker.sim import PtySim

    if not isinstance(svc.sim, PtySim) or not svc.config.staff_pins:
        log.info("locker: demo needs port = 'sim' and a staff PIN")
        return
    n = 0
    while True:
        n += 1
        receipt = demo_receipt(n)
        try:
            comp = (await svc.load(DEMO_STAFF_PIN, receipt, "M", pin=DEMO_PIN))["compartment"]
        except EdgeError as err:
            log.info("locker demo: loading refused: %s", err)
            await svc.sleep(5)
            continue
        c = svc.config.where(comp)
        svc.sim.bus.set_occupied(c.board, c.lock, True)
        log.info("locker demo: %s placed in compartment %d", receipt, comp)
        await svc.wait_door(comp, "closed", 30)
        await svc.sleep(max(svc.config.rate_limit_s, 1.0))
        if await svc.verify_pin(receipt, DEMO_PIN):
            await svc.pickup(receipt, {"method": "pin", "ref": f"demo-{n}"}, actor="demo")
            svc.sim.bus.set_occupied(c.board, c.lock, False)
            closed = await svc.wait_door(comp, "closed", 30)
            log.info("locker demo: %s collected from compartment %d (door closed: %s)", receipt, comp, closed)
        await svc.sleep(5)
