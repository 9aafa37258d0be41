"""Locker flows over the store: loading, lookup, PIN checks, pickup bookkeeping, expiry, intents.

Everything here is a short SQLite transaction (its statements by name in queries.py); the hardware
side (pulses, door readings) is in the service's modules (opening.py, doors.py). A state change
and its event are always written in the same transaction, and the intent to open a door is
written *before* the pulse, so a crash can never make a door open twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable

from edge import phone as phones
from edge.errors import CommandError
from edge.locker import notify, queries
from edge.locker.config import SIZES, LockerConfig
from edge.locker.pins import check_pin, hash_pin
from edge.store import Store, Tx

log = logging.getLogger(__name__)
SERVICE = "locker"
DAY_S = 86400.0

MIGRATIONS = queries.MIGRATIONS  # the schema lives with every other locker statement

LIVE = queries.LIVE

# Reasons a request is refused, as staff read them (Vietnamese, English): the one table of these
# sentences. The kiosk's desk screens show them as i18n `err.*` keys (edge/kiosk/i18n.py takes them
# from here; `bad_input` and `staff` are split finer there by their detail), the office dashboard
# through edge/central/refusals.py. A citizen at the pickup kiosk reads other, polite sentences
# ("Ông/Bà …", i18n `msg.*`), so those are not taken from here.
MESSAGES = {
    "unknown": ("Không có kết quả nào của hồ sơ này trong tủ.", "There is no result of this dossier in the locker."),
    "expired": ("Hồ sơ này đã quá hạn nhận tại tủ.", "This result is past its pickup deadline."),
    "collected": ("Kết quả của hồ sơ này đã được nhận.", "This result has already been collected."),
    "busy": ("Ngăn tủ đang được mở. Chờ vài giây rồi thử lại.",
             "The compartment is being opened. Wait a few seconds and try again."),
    "not_verified": ("Chưa xác thực người nhận.", "The collector has not been verified."),
    "pin_locked": ("Đã nhập sai mã PIN quá số lần cho phép.", "Too many wrong PINs."),
    "staff": ("Mã PIN cán bộ không đúng. Nhập lại mã PIN cán bộ của bạn.", "Wrong staff PIN. Enter your staff PIN again."),
    "full": ("Không còn ngăn trống cỡ này. Chọn cỡ khác hoặc để trống.",
             "No free compartment of this size. Choose another size or leave it empty."),
    "duplicate": ("Hồ sơ này đã có trong tủ.", "This dossier is already in the locker."),
    "maintenance": ("Ngăn tủ đang bảo trì. Chọn ngăn khác.", "The compartment is under maintenance. Choose another."),
    "rate": ("Ngăn tủ vừa được mở. Chờ vài giây rồi thử lại.",
             "The compartment was just opened. Wait a few seconds and try again."),
    "bad_input": ("Dữ liệu không hợp lệ.", "Invalid input."),
    "phone": (phones.MESSAGE_VI, phones.MESSAGE_EN),
}


class LockerRefused(CommandError):
    """Error raised when a locker request is refused (wrong code, expired, rate limit, …): nothing opened."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        vi, en = MESSAGES.get(reason, MESSAGES["bad_input"])
        self.message_vi, self.message_en = vi, en
        super().__init__(f"{reason}: {detail or en}")


@dataclass(frozen=True)
class Assignment:
    id: int
    receipt: str
    compartment: int
    status: str
    pin_hash: str | None
    pin_failures: int
    pin_verified_at: float | None
    face_enrolled: bool
    deadline: float


def hash_citizen_pin(pin: Any) -> str | None:
    """Check a citizen PIN (4-8 digits) and hash it; None when no PIN is set."""
    if pin is None:
        return None
    if not isinstance(pin, str) or not pin.isdigit() or not 4 <= len(pin) <= 8:
        raise LockerRefused("bad_input", "PIN must be 4-8 digits")
    return hash_pin(pin)


def normalise_receipt(code: Any) -> str:
    if not isinstance(code, str):
        raise LockerRefused("bad_input", f"receipt code must be text, found {type(code).__name__}")
    code = code.strip().upper()
    if not 1 <= len(code) <= 64 or not all(c.isalnum() or c in "-_./" for c in code):
        raise LockerRefused("bad_input", f"receipt code {code[:70]!r} is not 1-64 letters, digits or -_./")
    return code


class LockerFlows:
    """The durable side of the locker: assignments, open intents, door rows, alarms."""

    def __init__(self, store: Store, config: LockerConfig, clock: Callable[[], float]):
        self.store, self.config, self.clock = store, config, clock
        queries.migrate(store)
        notify.migrate(store)
        with store.transaction() as tx:
            queries.add_doors(tx, config.compartment_ids())

    # -- reads --------------------------------------------------------------------------------
    def live_assignment(self, receipt: str) -> Assignment | None:
        row = queries.latest_assignment(self.store, receipt)
        return _assignment(row) if row else None

    def assignment_in(self, compartment: int) -> Assignment | None:
        row = queries.live_assignment_in(self.store, compartment)
        return _assignment(row) if row else None

    def doors(self) -> dict[int, dict]:
        return queries.doors(self.store)

    def alarms(self) -> list[dict]:
        return queries.alarms(self.store)

    def lookup(self, receipt: str) -> dict:
        a = self.live_assignment(normalise_receipt(receipt))
        if a is None:
            return {"status": "unknown", "compartment": None, "face_enrolled": False, "pin_set": False}
        status = {"opening": "waiting", "reclaimed": "expired"}.get(a.status, a.status)
        if status == "waiting" and a.deadline < self.clock():
            status = "expired"
        return {"status": status, "compartment": a.compartment if status == "waiting" else None,
                "face_enrolled": a.face_enrolled, "pin_set": a.pin_hash is not None}

    # -- staff ---------------------------------------------------------------------------------
    def staff_id(self, staff_pin: Any) -> str | None:
        if not isinstance(staff_pin, str) or not staff_pin:
            return None
        for staff, stored in sorted(self.config.staff_pins.items()):
            if check_pin(staff_pin, stored):
                return staff
        return None

    def choose_compartment(self, size: str | None, accessible: bool = False) -> int:
        if size is not None and size not in SIZES:
            raise LockerRefused("bad_input", f"size {size!r}: expected one of {', '.join(SIZES)}")
        doors = self.doors()
        taken = queries.taken_compartments(self.store)
        alarmed = {int(a["target"].split(":")[1]) for a in self.alarms() if a["target"].startswith("compartment:")}
        wanted = SIZES[SIZES.index(size):] if size else SIZES

        def usable(n: int) -> bool:
            d = doors.get(n, {})
            return (n not in taken and not d.get("maintenance") and n not in alarmed
                    and d.get("door") != "open" and not d.get("occupied"))

        for s in wanted:  # the right size first, then the next larger one
            ids = [n for n in self.config.compartment_ids() if self.config.where(n).size == s and usable(n)]
            # Keep the low (accessible) compartments free for those who need them, and vice versa.
            ids.sort(key=lambda n: (self.config.where(n).accessible != accessible, n))
            if ids:
                return ids[0]
        raise LockerRefused("full", f"no free compartment of size {size or 'any'}")

    def create_assignment(self, tx: Tx, *, receipt: str, compartment: int, size: str, pin_hash: str | None,
                          deadline_days: int | None, staff: str, face_enrolled: bool,
                          phone: str | None = None, pin: str | None = None) -> int:
        """Record a loading; with a `phone` (+84…) the result-ready SMS carrying `pin` is queued
        in this same transaction (edge.locker.notify), and only its masked form is logged."""
        now = self.clock()
        days = deadline_days or self.config.pickup_deadline_days
        if not isinstance(days, int) or not 1 <= days <= 365:
            raise LockerRefused("bad_input", f"deadline_days {days!r}: expected 1..365")
        if queries.receipt_is_live(tx, receipt):
            raise LockerRefused("duplicate", f"receipt {receipt} is already in the locker")
        assignment = queries.insert_assignment(tx, receipt=receipt, compartment=compartment, size=size,
                                               pin_hash=pin_hash, face_enrolled=face_enrolled,
                                               deadline=now + days * DAY_S, loaded_at=now, staff=staff)
        masked = {"phone_masked": phones.mask(phone)} if phone else {}
        tx.emit(SERVICE, "loaded", receipt=receipt, compartment=compartment, deadline=now + days * DAY_S,
                pin_set=pin_hash is not None, sms=phone is not None, **masked)
        tx.audit(staff, "locker.load", receipt=receipt, compartment=compartment, deadline_days=days, **masked)
        if phone:
            notify.result_ready(tx, assignment=assignment, phone=phone, receipt=receipt, compartment=compartment,
                                deadline=now + days * DAY_S, pin=pin, now=now)
        return assignment

    # -- citizen PIN ---------------------------------------------------------------------------
    def verify_pin(self, receipt: str, pin: Any) -> bool:
        receipt = normalise_receipt(receipt)
        with self.store.transaction() as tx:
            row = queries.pin_row(tx, receipt)
            if row is None or row[1] is None or row[2] >= self.config.pin_attempts:
                tx.audit("kiosk", "locker.pin_refused", receipt=receipt,
                         why="unknown" if row is None else "no_pin" if row[1] is None else "locked")
                return False
            ok = isinstance(pin, str) and check_pin(pin, row[1])
            if ok:
                queries.pin_verified(tx, row[0], self.clock())
            else:
                failures = row[2] + 1
                queries.set_pin_failures(tx, row[0], failures)
                if failures >= self.config.pin_attempts:
                    tx.emit(SERVICE, "pin_locked", receipt=receipt, failures=failures)
            tx.audit("kiosk", "locker.pin_checked", receipt=receipt, ok=ok)
            return ok

    def mark_face_enrolled(self, receipt: str, enrolled: bool = True) -> None:
        with self.store.transaction() as tx:
            queries.set_face_enrolled(tx, normalise_receipt(receipt), enrolled)

    def claim_for_pickup(self, tx: Tx, receipt: str, claim: Any) -> Assignment:
        """Check that `receipt` may be collected now with `claim`; raises LockerRefused."""
        if not isinstance(claim, dict) or claim.get("method") not in ("face", "pin") or not claim.get("ref"):
            raise LockerRefused("not_verified", "claim must be {'method': 'face'|'pin', 'ref': session id}")
        row = queries.latest_assignment_in_tx(tx, receipt)
        a = _assignment(row) if row else None
        if a is None:
            raise LockerRefused("unknown", f"no assignment for {receipt}")
        if a.status in ("collected",):
            raise LockerRefused("collected")
        if a.status in ("expired", "reclaimed") or (a.status == "waiting" and a.deadline < self.clock()):
            raise LockerRefused("expired")
        if a.status == "opening":
            raise LockerRefused("busy", f"compartment {a.compartment} is already being opened")
        if claim["method"] == "pin":
            fresh = a.pin_verified_at is not None and self.clock() - a.pin_verified_at <= self.config.pin_valid_s
            if not fresh:
                raise LockerRefused("not_verified", "no PIN verified for this receipt in the last minutes")
        return a

    # -- open intents --------------------------------------------------------------------------
    def intent(self, cmd_id: str) -> dict | None:
        return queries.intent(self.store, cmd_id)

    def record_intent(self, tx: Tx, *, cmd_id: str, compartment: int, reason: str, actor: str,
                      assignment: int | None) -> None:
        now = self.clock()
        queries.insert_intent(tx, cmd_id=cmd_id, compartment=compartment, reason=reason, actor=actor,
                              assignment=assignment, now=now)
        # The rate limit counts from the intent: a crash mid-pulse still holds the compartment back.
        queries.set_last_pulse(tx, compartment, now)
        tx.audit(actor, "locker.open", id=cmd_id, compartment=compartment, reason=reason)

    def finish_intent(self, tx: Tx, cmd_id: str, state: str, note: str = "") -> None:
        queries.set_intent_state(tx, cmd_id, state, self.clock(), note or None)

    def pending_intents(self, states: tuple[str, ...]) -> list[dict]:
        return queries.intents_in(self.store, states)

    # -- alarms --------------------------------------------------------------------------------
    def raise_alarm(self, tx: Tx, kind: str, target: str, **detail: Any) -> bool:
        """Record an alarm and emit its event once; False if it was already raised."""
        if queries.insert_alarm(tx, kind, target, self.clock(), json.dumps(detail, ensure_ascii=False)):
            tx.emit(SERVICE, kind, target=target, **detail)
            return True
        return False

    def clear_alarm(self, tx: Tx, kind: str, target: str) -> bool:
        if queries.delete_alarm(tx, kind, target):
            tx.emit(SERVICE, "alarm_cleared", alarm=kind, target=target)
            return True
        return False

    # -- expiry --------------------------------------------------------------------------------
    def expire_due(self, receipt: str | None = None) -> list[dict]:
        """Mark overdue (or the named) waiting assignments expired; staff reclaim them later."""
        now = self.clock()
        with self.store.transaction() as tx:
            if receipt is None:
                rows = queries.waiting_overdue(tx, now)
            else:
                rows = queries.waiting_with_receipt(tx, normalise_receipt(receipt))
            for aid, rec, comp in rows:
                queries.mark_expired(tx, aid, now)
                tx.emit(SERVICE, "expired", receipt=rec, compartment=comp)
                tx.audit("locker", "locker.expired", receipt=rec, compartment=comp)
        return [{"receipt": r[1], "compartment": r[2]} for r in rows]


def _assignment(row: Any) -> Assignment:
    return Assignment(id=row["id"], receipt=row["receipt"], compartment=row["compartment"], status=row["status"],
                      pin_hash=row["pin_hash"], pin_failures=row["pin_failures"],
                      pin_verified_at=row["pin_verified_at"], face_enrolled=bool(row["face_enrolled"]),
                      deadline=row["deadline"])
