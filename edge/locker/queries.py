"""Every SQL statement of the locker, by name: the schema and the reads and writes of its four tables.

`locker_assignments` (a result in a compartment: waiting, opening, collected, expired, reclaimed),
`locker_opens` (one row per open command: its intent, written before the pulse), `locker_doors`
(what each door last read, maintenance, the last pulse), `locker_alarms` (one row per raised alarm)
and `locker_notify` (the citizen's phone while a result waits, for the SMS of notify.py).
The rules live in flows.py, notify.py and the service's modules (doors.py, opening.py, recovery.py,
kiosk_api.py, views.py); they call these functions, so the SQL can be read, and changed, in this
one place.

Functions named after a read take the `store` (a short read of their own) or a `tx` when the read
must see the transaction's writes; every write takes the `tx` of the change it belongs to.
"""

from __future__ import annotations

from typing import Any

from edge.store import Store, Tx

MIGRATIONS = [
    """
    CREATE TABLE locker_assignments (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        receipt         TEXT NOT NULL,
        compartment     INTEGER NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('waiting','opening','collected','expired','reclaimed')),
        size            TEXT NOT NULL,
        pin_hash        TEXT,
        pin_failures    INTEGER NOT NULL DEFAULT 0,
        pin_verified_at REAL,
        face_enrolled   INTEGER NOT NULL DEFAULT 0,
        deadline        REAL NOT NULL,
        loaded_at       REAL NOT NULL,
        loaded_by       TEXT NOT NULL,
        closed_at       REAL
    );
    -- A receipt and a compartment each hold at most one live assignment.
    CREATE UNIQUE INDEX locker_live_receipt ON locker_assignments(receipt)
        WHERE status IN ('waiting','opening','expired');
    CREATE UNIQUE INDEX locker_live_compartment ON locker_assignments(compartment)
        WHERE status IN ('waiting','opening','expired');
    CREATE TABLE locker_opens (
        id          TEXT PRIMARY KEY,  -- command id: one open at most per id, even across restarts
        compartment INTEGER NOT NULL,
        reason      TEXT NOT NULL,
        actor       TEXT NOT NULL,
        assignment  INTEGER,
        state       TEXT NOT NULL CHECK (state IN ('started','pulsed','opened','not_detected','failed','interrupted')),
        created     REAL NOT NULL,
        pulsed      REAL,
        finished    REAL,
        note        TEXT
    );
    CREATE TABLE locker_doors (
        compartment INTEGER PRIMARY KEY,
        door        TEXT NOT NULL DEFAULT 'unknown' CHECK (door IN ('open','closed','unknown')),
        occupied    INTEGER,
        since       REAL,
        maintenance INTEGER NOT NULL DEFAULT 0,
        last_pulse  REAL
    );
    CREATE TABLE locker_alarms (
        kind   TEXT NOT NULL,
        target TEXT NOT NULL,  -- 'compartment:N' or 'board:B'
        since  REAL NOT NULL,
        detail TEXT,
        PRIMARY KEY (kind, target)
    );
    """,
]

LIVE = ("waiting", "opening", "expired")  # an assignment that still holds its compartment
IN_FLIGHT = "('started', 'pulsed')"  # an open whose outcome is not known yet


def migrate(store: Store) -> None:
    store.migrate("locker", MIGRATIONS)


# -- assignments ---------------------------------------------------------------------------------------
def latest_assignment(store: Store, receipt: str) -> Any:
    """The newest assignment row of a receipt (any status), or None."""
    rows = store.query("SELECT * FROM locker_assignments WHERE receipt = ? ORDER BY id DESC LIMIT 1", (receipt,))
    return rows[0] if rows else None


def latest_assignment_in_tx(tx: Tx, receipt: str) -> dict | None:
    """`latest_assignment` read inside `tx`, as a dict."""
    cur = tx.execute("SELECT * FROM locker_assignments WHERE receipt = ? ORDER BY id DESC LIMIT 1", (receipt,))
    row = cur.fetchone()
    return dict(zip([d[0] for d in cur.description], row)) if row else None


def live_assignment_in(store: Store, compartment: int) -> Any:
    rows = store.query(f"SELECT * FROM locker_assignments WHERE compartment = ? AND status IN {LIVE}", (compartment,))
    return rows[0] if rows else None


def taken_compartments(store: Store) -> set[int]:
    return {r["compartment"] for r in store.query(
        f"SELECT compartment FROM locker_assignments WHERE status IN {LIVE}")}


def live_statuses(store: Store) -> dict[int, str]:
    """compartment -> status of the assignment that holds it."""
    return {r["compartment"]: r["status"] for r in store.query(
        f"SELECT compartment, status FROM locker_assignments WHERE status IN {LIVE}")}


def receipt_is_live(tx: Tx, receipt: str) -> bool:
    return tx.execute(f"SELECT 1 FROM locker_assignments WHERE receipt = ? AND status IN {LIVE}",
                      (receipt,)).fetchone() is not None


def insert_assignment(tx: Tx, *, receipt: str, compartment: int, size: str, pin_hash: str | None,
                      face_enrolled: bool, deadline: float, loaded_at: float, staff: str) -> int:
    cur = tx.execute(
        "INSERT INTO locker_assignments(receipt, compartment, status, size, pin_hash, face_enrolled, deadline, "
        "loaded_at, loaded_by) VALUES (?, ?, 'waiting', ?, ?, ?, ?, ?, ?)",
        (receipt, compartment, size, pin_hash, int(face_enrolled), deadline, loaded_at, staff))
    return cur.lastrowid


def pin_row(tx: Tx, receipt: str) -> tuple | None:
    """(id, pin_hash, pin_failures) of the receipt's live assignment."""
    return tx.execute(f"SELECT id, pin_hash, pin_failures FROM locker_assignments WHERE receipt = ? "
                      f"AND status IN {LIVE}", (receipt,)).fetchone()


def pin_verified(tx: Tx, assignment: int, now: float) -> None:
    tx.execute("UPDATE locker_assignments SET pin_failures = 0, pin_verified_at = ? WHERE id = ?", (now, assignment))


def set_pin_failures(tx: Tx, assignment: int, failures: int) -> None:
    tx.execute("UPDATE locker_assignments SET pin_failures = ? WHERE id = ?", (failures, assignment))


def set_face_enrolled(tx: Tx, receipt: str, enrolled: bool) -> None:
    tx.execute(f"UPDATE locker_assignments SET face_enrolled = ? WHERE receipt = ? AND status IN {LIVE}",
               (int(enrolled), receipt))


def start_pickup(tx: Tx, assignment: int) -> None:
    """The assignment is being handed out; the verified PIN is used up by this pickup."""
    tx.execute("UPDATE locker_assignments SET status = 'opening', pin_verified_at = NULL WHERE id = ?", (assignment,))


def back_to_waiting(tx: Tx, assignment: int) -> None:
    """A pickup whose door did not open (or whose open failed): the result waits again."""
    tx.execute("UPDATE locker_assignments SET status = 'waiting' WHERE id = ? AND status = 'opening'", (assignment,))


def opening_in(tx: Tx, compartment: int) -> tuple | None:
    """(id, receipt) of the assignment being handed out from `compartment`."""
    return tx.execute("SELECT id, receipt FROM locker_assignments WHERE compartment = ? AND status = 'opening'",
                      (compartment,)).fetchone()


def mark_collected(tx: Tx, assignment: int, now: float) -> None:
    tx.execute("UPDATE locker_assignments SET status = 'collected', closed_at = ? WHERE id = ?", (now, assignment))


def mark_reclaimed(tx: Tx, assignment: int, now: float) -> bool:
    """False when the result is no longer expired or waiting (collected meanwhile)."""
    cur = tx.execute("UPDATE locker_assignments SET status = 'reclaimed', closed_at = ? WHERE id = ? "
                     "AND status IN ('expired', 'waiting')", (now, assignment))
    return bool(cur.rowcount)


def waiting_overdue(tx: Tx, now: float) -> list[tuple]:
    """(id, receipt, compartment) of waiting assignments past their deadline."""
    return tx.execute("SELECT id, receipt, compartment FROM locker_assignments "
                      "WHERE status = 'waiting' AND deadline < ?", (now,)).fetchall()


def waiting_with_receipt(tx: Tx, receipt: str) -> list[tuple]:
    """(id, receipt, compartment) of the receipt's waiting assignment."""
    return tx.execute("SELECT id, receipt, compartment FROM locker_assignments "
                      "WHERE status = 'waiting' AND receipt = ?", (receipt,)).fetchall()


def mark_expired(tx: Tx, assignment: int, now: float) -> None:
    tx.execute("UPDATE locker_assignments SET status = 'expired', closed_at = ? WHERE id = ?", (now, assignment))


def opening_with_door(tx: Tx) -> list[tuple]:
    """(id, compartment, door) of every assignment being handed out, after a restart."""
    return tx.execute("SELECT a.id, a.compartment, d.door FROM locker_assignments a JOIN locker_doors d "
                      "ON d.compartment = a.compartment WHERE a.status = 'opening'").fetchall()


# -- open intents --------------------------------------------------------------------------------------
def intent(store: Store, cmd_id: str) -> dict | None:
    rows = store.query("SELECT * FROM locker_opens WHERE id = ?", (cmd_id,))
    return dict(rows[0]) if rows else None


def insert_intent(tx: Tx, *, cmd_id: str, compartment: int, reason: str, actor: str, assignment: int | None,
                  now: float) -> None:
    tx.execute("INSERT INTO locker_opens(id, compartment, reason, actor, assignment, state, created) "
               "VALUES (?, ?, ?, ?, ?, 'started', ?)", (cmd_id, compartment, reason, actor, assignment, now))


def set_intent_state(tx: Tx, cmd_id: str, state: str, now: float, note: str | None) -> None:
    column = "pulsed" if state == "pulsed" else "finished"
    tx.execute(f"UPDATE locker_opens SET state = ?, {column} = ?, note = ? WHERE id = ?", (state, now, note, cmd_id))


def intents_in(store: Store, states: tuple[str, ...]) -> list[dict]:
    marks = ",".join("?" * len(states))
    return [dict(r) for r in store.query(
        f"SELECT * FROM locker_opens WHERE state IN ({marks}) ORDER BY created", states)]


def in_flight_opens(store: Store, compartment: int) -> list[Any]:
    """The opens of `compartment` still started or pulsed (their outcome unknown)."""
    return store.query(f"SELECT id FROM locker_opens WHERE compartment = ? AND state IN {IN_FLIGHT}", (compartment,))


def open_explaining(tx: Tx, compartment: int, interrupted_since: float) -> tuple | None:
    """(id, reason) of the open that explains a door opening: one in flight, or one cut short by a
    restart after `interrupted_since`."""
    return tx.execute(f"SELECT id, reason FROM locker_opens WHERE compartment = ? AND (state IN {IN_FLIGHT} "
                      "OR (state = 'interrupted' AND created > ?)) ORDER BY created DESC LIMIT 1",
                      (compartment, interrupted_since)).fetchone()


def pulsed_before(tx: Tx, before: float) -> list[tuple]:
    """(id, compartment, assignment) of opens pulsed before `before` and not seen opening yet."""
    return tx.execute("SELECT o.id, o.compartment, o.assignment FROM locker_opens o WHERE o.state = 'pulsed' "
                      "AND o.pulsed < ?", (before,)).fetchall()


def any_pulsed_before(store: Store, before: float) -> bool:
    return bool(store.query("SELECT 1 FROM locker_opens WHERE state = 'pulsed' AND pulsed < ? LIMIT 1", (before,)))


def has_pulsed_open(tx: Tx, assignment: int) -> bool:
    return tx.execute("SELECT 1 FROM locker_opens WHERE assignment = ? AND state = 'pulsed'",
                      (assignment,)).fetchone() is not None


# -- doors ---------------------------------------------------------------------------------------------
def add_doors(tx: Tx, compartments: list[int]) -> None:
    for n in compartments:
        tx.execute("INSERT OR IGNORE INTO locker_doors(compartment) VALUES (?)", (n,))


def doors(store: Store) -> dict[int, dict]:
    return {r["compartment"]: dict(r) for r in store.query("SELECT * FROM locker_doors")}


def door_state(tx: Tx, compartment: int) -> str | None:
    row = tx.execute("SELECT door FROM locker_doors WHERE compartment = ?", (compartment,)).fetchone()
    return row[0] if row else None


def set_occupied(tx: Tx, compartment: int, occupied: int | None) -> None:
    tx.execute("UPDATE locker_doors SET occupied = ? WHERE compartment = ?", (occupied, compartment))


def set_door(tx: Tx, compartment: int, door: str, occupied: int | None, since: float) -> None:
    tx.execute("UPDATE locker_doors SET door = ?, occupied = ?, since = ? WHERE compartment = ?",
               (door, occupied, since, compartment))


def set_last_pulse(tx: Tx, compartment: int, now: float) -> None:
    tx.execute("UPDATE locker_doors SET last_pulse = ? WHERE compartment = ?", (now, compartment))


def set_maintenance(tx: Tx, compartment: int, on: bool) -> None:
    tx.execute("UPDATE locker_doors SET maintenance = ? WHERE compartment = ?", (int(on), compartment))


def open_since_before(tx: Tx, before: float) -> list[tuple]:
    """(compartment, since) of the doors open since before `before`."""
    return tx.execute("SELECT compartment, since FROM locker_doors WHERE door = 'open' AND since < ?",
                      (before,)).fetchall()


def any_open_unalarmed_before(store: Store, before: float) -> bool:
    """A door open since before `before` without its left_open alarm yet."""
    return bool(store.query(
        "SELECT 1 FROM locker_doors d WHERE d.door = 'open' AND d.since < ? AND NOT EXISTS (SELECT 1 FROM "
        "locker_alarms a WHERE a.kind = 'left_open' AND a.target = 'compartment:' || d.compartment) LIMIT 1",
        (before,)))


# -- alarms --------------------------------------------------------------------------------------------
def alarms(store: Store) -> list[dict]:
    return [dict(r) for r in store.query("SELECT kind, target, since, detail FROM locker_alarms ORDER BY since")]


def insert_alarm(tx: Tx, kind: str, target: str, since: float, detail: str) -> bool:
    """False when that alarm is already raised."""
    cur = tx.execute("INSERT OR IGNORE INTO locker_alarms(kind, target, since, detail) VALUES (?, ?, ?, ?)",
                     (kind, target, since, detail))
    return bool(cur.rowcount)


def delete_alarm(tx: Tx, kind: str, target: str) -> bool:
    """False when that alarm was not raised."""
    cur = tx.execute("DELETE FROM locker_alarms WHERE kind = ? AND target = ?", (kind, target))
    return bool(cur.rowcount)


# -- the SMS book (notify.py) ----------------------------------------------------------------------------
NOTIFY_MIGRATIONS = [
    """
    CREATE TABLE locker_notify (
        assignment INTEGER PRIMARY KEY,   -- locker_assignments.id
        phone      TEXT NOT NULL,         -- +84…; deleted once the result is collected, reclaimed or expired
        reminded   INTEGER NOT NULL DEFAULT 0
    );
    """,
]


def remember_phone(tx: Tx, assignment: int, phone: str) -> None:
    tx.execute("INSERT OR REPLACE INTO locker_notify(assignment, phone) VALUES (?, ?)", (assignment, phone))


def notify_work(store: Store, topic: str) -> bool:
    """A phone is kept, or a published notify message (with its PIN) is still in the outbox."""
    return bool(store.query("SELECT 1 FROM locker_notify LIMIT 1") or store.query(
        "SELECT 1 FROM outbox WHERE topic = ? AND published IS NOT NULL LIMIT 1", (topic,)))


def phones_and_results(tx: Tx) -> list[tuple]:
    """(assignment, phone, reminded, receipt, compartment, status, deadline, loaded_at) of every kept phone."""
    return tx.execute(
        "SELECT n.assignment, n.phone, n.reminded, a.receipt, a.compartment, a.status, a.deadline, a.loaded_at "
        "FROM locker_notify n LEFT JOIN locker_assignments a ON a.id = n.assignment").fetchall()


def mark_reminded(tx: Tx, assignment: int) -> None:
    tx.execute("UPDATE locker_notify SET reminded = 1 WHERE assignment = ?", (assignment,))


def forget_phone(tx: Tx, assignment: int) -> None:
    tx.execute("DELETE FROM locker_notify WHERE assignment = ?", (assignment,))


def drop_published(tx: Tx, topic: str) -> None:
    """Published messages of `topic` leave the outbox (a notify row carries the PIN)."""
    tx.execute("DELETE FROM outbox WHERE topic = ? AND published IS NOT NULL", (topic,))
