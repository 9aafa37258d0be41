"""What the kiosk asks of the locker: look a receipt up, check a PIN, hand a result out, load one.

`KioskApi` is a collaborator of LockerService (edge/locker/service.py), made in `start()` once the
flows exist; the service keeps the methods of edge.peers.LockerPeer (checked by
tests/core/test_peers.py) plus staff's `reclaim` as one-line delegations. Every door they move goes
through `open_compartment` (opening.py); staff PINs go through the device's one lockout
(`staff`, edge.kiosk.staff.StaffAuth).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from edge import phone as phones
from edge.errors import EdgeError
from edge.kiosk.staff import LoginRefused, StaffAuth
from edge.locker import notify, queries
from edge.locker.config import LockerConfig
from edge.locker.flows import SERVICE, LockerFlows, LockerRefused, hash_citizen_pin, normalise_receipt
from edge.peers import VisionForLocker
from edge.qr.codes import dossier_code, not_a_dossier_code
from edge.store import Store, Tx

log = logging.getLogger("edge.locker.service")  # the service's one logger, as before the split

STAFF_LOCKOUT_S = 300.0  # pin_attempts wrong staff codes lock loading out for this long
LOADING_CLIENT = "locker-loading"  # the lockout's client key: every loading route counts as one


def citizen_phone(phone: Any, pin: Any) -> str | None:
    """The citizen's mobile as +84…, or None; with a phone the device makes the PIN itself."""
    try:
        phone = phones.optional(phone)
    except phones.BadPhone as err:
        raise LockerRefused("phone", f"phone number {err.why}: {phones.MESSAGE_EN}") from err
    if phone and pin:
        raise LockerRefused("bad_input", "with a phone number the locker makes the PIN and sends it by SMS: "
                                         "leave the PIN empty")
    return phone


class KioskApi:
    """lookup, verify_pin, mark_face_enrolled, pickup, load, reclaim (wait_door is in opening.py).

    It reads and writes through the store and the flows, moves doors only with `open_compartment`,
    asks the vision peer (`vision()`, None when absent) whether a face is enrolled and tells it what
    changed (`tell_vision`), and checks staff PINs against `staff_lockout`. Its own lock keeps two
    desks loading at once from getting the same compartment.
    """

    def __init__(self, store: Store, config: LockerConfig, clock: Callable[[], float], flows: LockerFlows, *,
                 open_compartment: Callable[..., Awaitable[dict]], staff_lockout: StaffAuth,
                 vision: Callable[[], VisionForLocker | None],
                 tell_vision: Callable[[str, Callable[[VisionForLocker], Awaitable[Any]]], None]):
        self.store = store
        self.config = config
        self.clock = clock
        self.flows = flows
        self.open_compartment = open_compartment
        self.staff_lockout = staff_lockout
        self.vision = vision
        self.tell_vision = tell_vision
        self._loading = asyncio.Lock()

    async def lookup(self, receipt_code: str) -> dict:
        found = self.flows.lookup(receipt_code)
        vision = self.vision()
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
        with self.store.transaction() as tx:  # refuse early: nothing is written on a refusal
            a = self.flows.claim_for_pickup(tx, receipt, claim)

        def prepare(tx: Tx) -> int:
            again = self.flows.claim_for_pickup(tx, receipt, claim)  # still waiting, inside the intent's tx
            if (again.id, again.compartment) != (a.id, a.compartment):  # reclaimed and reloaded meanwhile
                raise LockerRefused("busy", f"the result of {receipt} moved while waiting; try again")
            # A verified PIN is used up by this pickup: a door that does not open asks for it again.
            queries.start_pickup(tx, again.id)
            tx.audit(actor, "locker.pickup", receipt=receipt, compartment=again.compartment,
                     method=claim["method"], ref=str(claim["ref"])[:64])
            return again.id

        await self.open_compartment(a.compartment, reason="pickup", actor=actor, prepare=prepare)
        return {"compartment": a.compartment}

    async def load(self, staff_pin: str, receipt_code: str, size: str | None, pin: str | None = None,
                   deadline_days: int | None = None, *, accessible: bool = False, face_enrolled: bool = False,
                   phone: str | None = None) -> dict:
        phone = citizen_phone(phone, pin)  # a bad number is refused before the staff PIN is even checked
        staff = await self.staff(staff_pin)
        return await self.load_as(staff, receipt_code, size, pin, deadline_days, accessible, face_enrolled, phone)

    async def load_as(self, staff: str, receipt_code: str, size: str | None, pin: str | None,
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
        self.tell_vision(f"result_waiting {receipt}", lambda v: v.result_waiting(receipt, True))
        return {"compartment": compartment, **({"sms_to": phones.mask(phone)} if phone else {})}

    async def reclaim(self, staff_pin: str, receipt_code: str) -> dict:
        """Staff take back an expired result: its compartment opens and becomes free."""
        staff = await self.staff(staff_pin)
        receipt = normalise_receipt(receipt_code)
        a = self.flows.live_assignment(receipt)
        if a is None or a.status not in ("expired", "waiting"):
            raise LockerRefused("unknown", f"no result of {receipt} to reclaim")

        def prepare(tx: Tx) -> None:
            # False when collected (or being collected) while we waited for the bus
            if not queries.mark_reclaimed(tx, a.id, self.clock()):
                raise LockerRefused("unknown", f"no result of {receipt} to reclaim any more")
            tx.emit(SERVICE, "reclaimed", receipt=receipt, compartment=a.compartment)
            tx.audit(staff, "locker.reclaim", receipt=receipt, compartment=a.compartment)

        await self.open_compartment(a.compartment, reason="reclaim", actor=staff, prepare=prepare, maintenance_ok=True)
        # the papers went back: nothing to collect
        self.tell_vision(f"delete {receipt}", lambda v: v.delete(receipt, "reclaim"))
        return {"compartment": a.compartment}

    async def staff(self, staff_pin: str) -> str:
        """The staff id of this PIN, or LockerRefused("staff"); refused outright while locked out.
        The lockout is the device's one (edge.kiosk.staff.StaffAuth, counted in the store, so a
        restart does not hand a guesser a fresh set of attempts); loading counts as one client."""
        lockout = self.staff_lockout
        if lockout.locked_for("", LOADING_CLIENT) > 0:
            raise LockerRefused("staff", "too many wrong staff codes; wait 5 minutes")
        staff = await asyncio.to_thread(self.flows.staff_id, staff_pin)
        if staff is None:
            with self.store.transaction() as tx:
                tx.audit("kiosk", "locker.staff_refused")
        try:
            lockout.logout(lockout.record("", LOADING_CLIENT, staff is not None).token)  # no session kept
        except LoginRefused as err:
            raise LockerRefused("staff") from err
        return staff


def loadable_receipt(receipt_code: Any) -> str:
    """The receipt code to load, refused unless it is a dossier code (edge.qr.codes): whatever route
    a loading comes by (staff screen, MQTT `load`, the demo), no result goes in that no citizen can collect."""
    code = dossier_code(receipt_code)
    if code is None:
        raise LockerRefused("bad_input", not_a_dossier_code(receipt_code))
    return normalise_receipt(code)
