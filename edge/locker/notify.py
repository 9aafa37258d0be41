"""Result-ready SMS from the locker: the pickup PIN made here, told to central on `locker/notify`.

With a phone number at loading, the device draws a random 6-digit PIN, keeps only its hash (in
`locker_assignments`), and queues ONE message on `motcua/v1/{site}/{device}/locker/notify`
(QoS 1, not retained) in the loading's own transaction, so a crash can neither lose the SMS nor
send it for a loading that did not happen:

    {"id","ts","kind":"result_ready","phone","receipt","compartment","pin","deadline"}

The same kind of message says `reminder` a day before the deadline and `expired` after it
(both with `"pin": null`: the device no longer knows it). The phone is kept in `locker_notify`
only while the result waits, and a published notify row is deleted from the outbox, so the PIN
leaves the device once the broker has it. This is the only topic that carries a phone or a PIN.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Callable

from edge.locker import queries
from edge.store import Store, Tx

TOPIC = "locker/notify"
PIN_DIGITS = 6
REMINDER_BEFORE_S = 86400.0
KINDS = ("result_ready", "reminder", "expired")

MIGRATIONS = queries.NOTIFY_MIGRATIONS  # the table `locker_notify`, with every other locker statement


def migrate(store: Store) -> None:
    store.migrate("locker_notify", MIGRATIONS)


def make_pin() -> str:
    """A uniformly random 6-digit PIN (leading zeros kept)."""
    return f"{secrets.randbelow(10 ** PIN_DIGITS):0{PIN_DIGITS}d}"


def queue(tx: Tx, kind: str, *, phone: str, receipt: str, compartment: int, deadline: float,
          pin: str | None = None, now: float) -> None:
    """Queue one notify message through the outbox (same transaction as the change it tells)."""
    if kind not in KINDS:
        raise ValueError(f"notify kind {kind!r}: expected one of {KINDS}")
    tx.publish(TOPIC, {"id": uuid.uuid4().hex, "ts": now, "kind": kind, "phone": phone, "receipt": receipt,
                       "compartment": compartment, "pin": pin, "deadline": deadline}, qos=1, retain=False)


def result_ready(tx: Tx, *, assignment: int, phone: str, receipt: str, compartment: int, deadline: float,
                 pin: str, now: float) -> None:
    queries.remember_phone(tx, assignment, phone)
    queue(tx, "result_ready", phone=phone, receipt=receipt, compartment=compartment, deadline=deadline,
          pin=pin, now=now)


def sweep(store: Store, clock: Callable[[], float]) -> int:
    """Reminders a day before the deadline, `expired` once expired, forget finished phones,
    drop published notify rows (the PIN) from the outbox. Returns the messages queued."""
    if not queries.notify_work(store, TOPIC):
        return 0  # the usual case: no write transaction, no wake-up of the MQTT drain
    now = clock()
    sent = 0
    with store.transaction() as tx:
        rows = queries.phones_and_results(tx)
        for assignment, phone, reminded, receipt, compartment, status, deadline, loaded_at in rows:
            if status == "waiting" and not reminded and deadline - now <= REMINDER_BEFORE_S:
                # a one-day deadline gets no reminder: the result-ready SMS has just said it
                if deadline > now and deadline - loaded_at >= 2 * REMINDER_BEFORE_S:
                    queue(tx, "reminder", phone=phone, receipt=receipt, compartment=compartment,
                          deadline=deadline, now=now)
                    sent += 1
                queries.mark_reminded(tx, assignment)
            elif status == "expired":
                queue(tx, "expired", phone=phone, receipt=receipt, compartment=compartment, deadline=deadline,
                      now=now)
                sent += 1
                queries.forget_phone(tx, assignment)
            elif status not in ("waiting", "opening"):  # collected, reclaimed, or gone: forget the number
                queries.forget_phone(tx, assignment)
        queries.drop_published(tx, TOPIC)
    return sent
