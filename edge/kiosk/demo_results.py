"""`edge demo`: results waiting in the locker, so the whole night pickup can be walked in a browser.

Loaded through the real locker (staff PIN, a compartment opens on the simulator, the simulated
clerk puts the papers in and the door closes) and, for the face result, enrolled through the real
vision service from the sample photos of the person the replay camera shows. The codes follow
the dossier-code rule (edge.kiosk.receipts), so the pickup screen finds them; docs/kiosk.md lists them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import EdgeError
from edge.peers import LockerPeer

if TYPE_CHECKING:
    from edge.locker.service import LockerService
    from edge.vision.service import VisionService

log = logging.getLogger(__name__)

STAFF_PIN = "1234"  # the demo's staff PIN (its hash is in edge/demo.toml [locker.staff_pins])
FACES = Path(__file__).resolve().parents[2] / "tests" / "data" / "faces"
CONSENT = {"actor": "demo-clerk", "purpose": "result_collection"}


@dataclass(frozen=True)
class DemoResult:
    code: str
    pin: str
    size: str
    face_photos: tuple[str, ...] = ()  # sample photos the citizen's face is enrolled from (none: PIN only)
    note: str = ""


# Sizes S, L and XL: the locker's own demo keeps loading and collecting "M" results beside these.
RESULTS = (
    # Three enrolment frames from two sample photos (the replay camera shows a third one, obama.jpg).
    DemoResult("000.00.01.H29-261207-0101", "1357", "S", ("obama1.jpg", "obama2.jpg", "obama2.jpg")),
    DemoResult("000.00.01.H29-261207-0102", "2468", "L"),
)


def scanned_receipt_result(site: str) -> DemoResult:
    """The receipt the QR service's demo camera shows every 21 s (edge.qr.sim, today's date): loaded
    too, so holding a receipt up can be seen end to end (it fills the code field; PIN only)."""
    from edge.qr.sim import demo_payloads

    code = dict(demo_payloads([], site, datetime.now()))["receipt"]
    return DemoResult(code, "2580", "XL", note="the receipt the QR demo camera shows every 21 s")


def collectable_lines(site: str, *, qr_demo: bool = True) -> list[str]:
    """The results a visitor can collect at /kiosk, for the demo's start message. The locker's own
    demo results (-9001 and up) are not listed: the demo loads and collects those itself, so a
    visitor typing one would only read "already collected"."""
    results = RESULTS + ((scanned_receipt_result(site),) if qr_demo else ())
    lines = []
    for result in results:
        how = f"face, or PIN {result.pin}" if result.face_photos else f"PIN {result.pin}"
        lines.append(f"    {result.code}  {how}" + (f"  ({result.note})" if result.note else ""))
    return lines


async def load_demo_results(locker: LockerPeer, vision: "VisionService | None", *, results=RESULTS,
                            door_wait_s: float = 30.0) -> list[str]:
    """Load each result (and enrol its face); returns one line per result for the console. `vision`
    is the real vision service (enrolling is not part of what the kiosk may ask, edge.peers)."""
    lines = []
    for result in results:
        try:
            found = await locker.lookup(result.code)
            if found.get("status") != "waiting":
                await _load(locker, result, door_wait_s)
            face = bool(result.face_photos) and await _enrol(vision, locker, result)
        except EdgeError as err:
            log.warning("kiosk demo: %s could not be loaded: %s", result.code, err)
            continue
        how = "face (PIN %s as the fallback)" % result.pin if face else "PIN %s" % result.pin
        lines.append(f"  {result.code}  {how}" + (f"  ({result.note})" if result.note else ""))
    return lines


async def _load(locker: LockerPeer, result: DemoResult, door_wait_s: float) -> None:
    compartment = (await locker.load(STAFF_PIN, result.code, result.size, pin=result.pin))["compartment"]
    simulated = _simulated_locker(locker)
    if simulated is not None:  # the simulated clerk puts the papers in; the simulator closes the door by itself
        where = simulated.config.where(compartment)
        simulated.sim.bus.set_occupied(where.board, where.lock, True)
    await locker.wait_door(compartment, "closed", door_wait_s)
    log.info("kiosk demo: %s waits in compartment %s", result.code, compartment)


def _simulated_locker(locker: LockerPeer) -> "LockerService | None":
    """The real locker service when its boards are the pty simulator (`port = "sim"`, as in the
    demo), the way edge/locker/demo.py recognises it; None for real boards (a person puts the papers in)."""
    from edge.locker.service import LockerService
    from edge.locker.sim import PtySim

    if isinstance(locker, LockerService) and isinstance(locker.sim, PtySim):
        return locker
    return None


async def _enrol(vision: "VisionService | None", locker: LockerPeer, result: DemoResult) -> bool:
    """Enrol the citizen's face from the sample photos (the replay camera shows another photo of them)."""
    if vision is None:
        return False
    import cv2

    while vision.worker is None or not vision.worker.ready():
        await asyncio.sleep(0.5)  # the face models are still loading
    if not await vision.enrolled(result.code):
        frames = []
        for name in result.face_photos:
            image = cv2.imread(str(FACES / name))
            if image is not None:
                frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        enrolled = await vision.enrol(result.code, frames, CONSENT) if frames else {"ok": False, "reason": "no photos"}
        if not enrolled.get("ok"):
            log.warning("kiosk demo: the face of %s was not enrolled: %s", result.code, enrolled)
            return False
    await locker.mark_face_enrolled(result.code)
    await vision.result_waiting(result.code)
    return True
