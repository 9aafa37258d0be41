"""The queue engine: tickets, cards, counters and statistics, all in the store.

Every staff action is one store transaction holding the change, its event and the retained
state snapshot, so the queue after a restart is exactly the queue before it. No state lives in
memory. Ordering: each waiting ticket has a `sort_key` = the time it joined minus its priority
head start (an appointment's key is its slot); call-next takes the smallest key among the
counter's services. Priority is a head start, not a separate lane, so it ages: an ordinary
citizen who has waited longer than the head start goes before a newly arrived priority one.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

from edge.errors import CommandError
from edge.pager.config import PagerConfig
from edge.store import Store, Tx

SERVICE = "pager"
RECENT_SERVICE_TIMES = 20

MIGRATIONS = [
    """
    CREATE TABLE pager_ticket (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        day            TEXT NOT NULL,       -- business day (rolls over at day_start_hour)
        number         TEXT NOT NULL,       -- 'A012'
        service        TEXT NOT NULL,       -- current service (changes on transfer)
        origin_service TEXT NOT NULL,
        priority       TEXT,
        source         TEXT NOT NULL,
        card           INTEGER NOT NULL,
        card_held      INTEGER NOT NULL DEFAULT 1,   -- the citizen still has the card
        status         TEXT NOT NULL CHECK (status IN ('waiting', 'called', 'done', 'no_show', 'expired')),
        issued         REAL NOT NULL,
        sort_key       REAL NOT NULL,
        called         REAL,                -- first call
        finished       REAL,
        counter        TEXT,                -- counter that called it last
        target_counter TEXT,                -- transferred to one counter
        recalls        INTEGER NOT NULL DEFAULT 0,
        transfers      INTEGER NOT NULL DEFAULT 0,
        rating         INTEGER,
        UNIQUE (day, number)
    );
    -- Never two citizens on one card: the database refuses it, whatever the code does.
    CREATE UNIQUE INDEX pager_card_held ON pager_ticket(card) WHERE card_held = 1;
    CREATE INDEX pager_waiting ON pager_ticket(status, service, sort_key);
    CREATE INDEX pager_finished ON pager_ticket(service, finished);
    CREATE INDEX pager_day ON pager_ticket(day, status);
    CREATE TABLE pager_number (day TEXT NOT NULL, service TEXT NOT NULL, last INTEGER NOT NULL,
                               PRIMARY KEY (day, service));
    CREATE TABLE pager_counter (name TEXT PRIMARY KEY, paused INTEGER NOT NULL DEFAULT 0,
                                current INTEGER REFERENCES pager_ticket(id),
                                last_done INTEGER REFERENCES pager_ticket(id));
    CREATE TABLE pager_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE pager_appointment (code TEXT PRIMARY KEY, service TEXT NOT NULL, slot REAL NOT NULL,
                                    ticket INTEGER REFERENCES pager_ticket(id));
    """,
]


class QueueError(CommandError):
    """Error raised when a queue action cannot be done (unknown service or counter, no free card,
    paused counter, nothing to recall…); the text is shown to staff and sent back on MQTT."""


def _emit(tx: Tx, type: str, **fields: Any) -> dict:
    """Emit a pager event; the queue id travels as `queue` (`service` names the edge service)."""
    if "service" in fields:
        fields["queue"] = fields.pop("service")
    return tx.emit(SERVICE, type, **fields)


class QueueEngine:
    """Synchronous engine over the store; PagerService wraps it with the async peer API."""

    def __init__(self, store: Store, config: PagerConfig, *, clock: Callable[[], float] = time.time,
                 extra_state: Callable[[], dict] | None = None):
        self.extra_state = extra_state  # merged into the retained snapshot (the transmitter's state)
        self.store = store
        self.config = config
        self.clock = clock
        store.migrate(SERVICE, MIGRATIONS)
        with store.transaction() as tx:
            for name in config.counters:
                tx.execute("INSERT OR IGNORE INTO pager_counter(name) VALUES (?)", (name,))
            self._housekeep(tx)

    # -- time -------------------------------------------------------------------------------
    def day_of(self, ts: float) -> str:
        local = ts + self.config.utc_offset_h * 3600 - self.config.day_start_hour * 3600
        return time.strftime("%Y-%m-%d", time.gmtime(local))

    # -- citizens ---------------------------------------------------------------------------
    def issue(self, service: str, priority: str | None = None, source: str = "desk") -> dict:
        """Give a ticket and a card; returns ticket, card, service, position, estimated_wait_s."""
        self._check_service(service)
        if priority is not None and priority not in self.config.priority_classes:
            raise QueueError(f"unknown priority class {priority!r}; expected one of {sorted(self.config.priority_classes)}")
        now = self.clock()
        head_start = self.config.priority_classes.get(priority, 0) if priority else 0
        with self.store.transaction() as tx:
            self._housekeep(tx)
            ticket = self._new_ticket(tx, service, priority, source, now, now - head_start)
            result = self._ticket_answer(tx, ticket)
            _emit(tx, "ticket_issued", ticket=result["ticket"], service=service, card=result["card"],
                    priority=priority, source=source, position=result["position"],
                    estimated_wait_s=result["estimated_wait_s"])
            self.publish(tx)
        return result

    def add_appointment(self, code: str, service: str, slot_ts: float) -> None:
        """Register a booked slot (from the booking system); its code is checked in later."""
        self._check_service(service)
        if not code or len(code) > 64:
            raise QueueError("appointment code must be 1..64 characters")
        with self.store.transaction() as tx:
            tx.execute("INSERT INTO pager_appointment(code, service, slot) VALUES (?, ?, ?) "
                       "ON CONFLICT(code) DO UPDATE SET service = excluded.service, slot = excluded.slot "
                       "WHERE ticket IS NULL", (code, service, slot_ts))

    def checkin(self, code: str) -> dict:
        """Check an appointment in: its ticket takes the place of its slot (or joins now if late)."""
        now = self.clock()
        with self.store.transaction() as tx:
            self._housekeep(tx)
            row = tx.execute("SELECT service, slot, ticket FROM pager_appointment WHERE code = ?", (code,)).fetchone()
            if row is None:
                raise QueueError(f"unknown appointment code {code!r}")
            service, slot, ticket_id = row
            if ticket_id is not None:  # a second scan of the same code: same answer, no new ticket
                return {**self._ticket_answer(tx, ticket_id), "repeated": True}
            if self.day_of(slot) != self.day_of(now):
                raise QueueError(f"appointment {code!r} is for {self.day_of(slot)}, not today ({self.day_of(now)})")
            late = now > slot + self.config.appointment_grace_s
            ticket = self._new_ticket(tx, service, None, "appointment", now, now if late else min(slot, now))
            tx.execute("UPDATE pager_appointment SET ticket = ? WHERE code = ?", (ticket, code))
            result = {**self._ticket_answer(tx, ticket), "late": late}
            _emit(tx, "ticket_issued", ticket=result["ticket"], service=service, card=result["card"],
                    priority=None, source="appointment", position=result["position"],
                    estimated_wait_s=result["estimated_wait_s"], late=late)
            self.publish(tx)
        return result

    # -- staff ------------------------------------------------------------------------------
    def call_next(self, counter: str, ticket: str | None = None) -> dict | None:
        """Call the next ticket for `counter` (closing the one it was serving); None when empty.
        With `ticket`, call that waiting ticket out of order (staff choice)."""
        self._check_counter(counter)
        now = self.clock()
        with self.store.transaction() as tx:
            self._housekeep(tx)
            paused, current = tx.execute("SELECT paused, current FROM pager_counter WHERE name = ?", (counter,)).fetchone()
            if paused:
                raise QueueError(f"counter {counter} is paused: resume it first")
            if current is not None:
                called = tx.execute("SELECT called FROM pager_ticket WHERE id = ?", (current,)).fetchone()[0]
                if now - called < self.config.double_press_s:
                    # Pressed twice (or from two places at once): repeat the call, never a second ticket.
                    return {**self._called_answer(tx, current, counter), "repeated": True}
                self._finish(tx, counter, current, now)
            row = self._pick(tx, counter, ticket, now)
            if row is None:
                if current is not None:  # the previous ticket was closed: the display changed
                    self.publish(tx)
                return None
            tx.execute("UPDATE pager_ticket SET status = 'called', called = COALESCE(called, ?), counter = ?, "
                       "target_counter = NULL WHERE id = ?", (now, counter, row[0]))
            tx.execute("UPDATE pager_counter SET current = ? WHERE name = ?", (row[0], counter))
            result = self._called_answer(tx, row[0], counter)
            _emit(tx, "ticket_called", **result)
            self.publish(tx)
        return result

    def _pick(self, tx: Tx, counter: str, ticket: str | None, now: float) -> tuple | None:
        if ticket is None:
            services = self.config.counters[counter].services
            marks = ",".join("?" * len(services))
            return tx.execute(
                f"SELECT id FROM pager_ticket WHERE status = 'waiting' AND "
                f"((target_counter IS NULL AND service IN ({marks})) OR target_counter = ?) "
                f"ORDER BY sort_key, id LIMIT 1", (*services, counter)).fetchone()
        row = tx.execute("SELECT id, status FROM pager_ticket WHERE day = ? AND number = ?",
                         (self.day_of(now), ticket)).fetchone()
        if row is None:
            raise QueueError(f"no ticket {ticket!r} today")
        if row[1] != "waiting":
            raise QueueError(f"ticket {ticket} is not waiting (it is {row[1]})")
        return row[:1]

    def recall(self, counter: str) -> dict:
        """Page the counter's current ticket again (up to max_recalls times)."""
        with self.store.transaction() as tx:
            ticket = self._current(tx, counter, "recall")
            recalls = tx.execute("SELECT recalls FROM pager_ticket WHERE id = ?", (ticket,)).fetchone()[0]
            if recalls >= self.config.max_recalls:
                number = self._number(tx, ticket)
                raise QueueError(f"ticket {number} was recalled {recalls} times already: mark it no-show")
            tx.execute("UPDATE pager_ticket SET recalls = recalls + 1 WHERE id = ?", (ticket,))
            result = self._called_answer(tx, ticket, counter)
            _emit(tx, "ticket_recalled", **result)
        return result

    def no_show(self, counter: str) -> dict:
        """The called citizen did not come: close the ticket; the card returns after card_hold_s."""
        now = self.clock()
        with self.store.transaction() as tx:
            ticket = self._current(tx, counter, "mark no-show")
            tx.execute("UPDATE pager_ticket SET status = 'no_show', finished = ? WHERE id = ?", (now, ticket))
            tx.execute("UPDATE pager_counter SET current = NULL WHERE name = ?", (counter,))
            result = self._called_answer(tx, ticket, counter)
            _emit(tx, "ticket_no_show", **result)
            self._housekeep(tx)  # card_hold_s may be 0: return the card at once
            self.publish(tx)
        return result

    def rejoin(self, ticket: str) -> dict:
        """A citizen marked no-show turns up while still holding the card: back to their place."""
        now = self.clock()
        with self.store.transaction() as tx:
            self._housekeep(tx)
            row = tx.execute("SELECT id, status, card_held FROM pager_ticket WHERE day = ? AND number = ?",
                             (self.day_of(now), ticket)).fetchone()
            if row is None:
                raise QueueError(f"no ticket {ticket!r} today")
            ticket_id, status, held = row
            if status != "no_show" or not held:
                why = "its card was already returned" if status == "no_show" else f"it is {status}, not a no-show"
                raise QueueError(f"ticket {ticket} cannot rejoin: {why}")
            tx.execute("UPDATE pager_ticket SET status = 'waiting', finished = NULL, recalls = 0 WHERE id = ?",
                       (ticket_id,))
            result = self._ticket_answer(tx, ticket_id)
            _emit(tx, "ticket_rejoined", ticket=result["ticket"], service=result["service"], card=result["card"],
                  position=result["position"])
            self.publish(tx)
        return result

    def return_card(self, card: int) -> dict:
        """A card handed back at the desk: frees it from a no-show, or takes a waiting citizen
        who gives up out of the queue (counted as a no-show)."""
        if isinstance(card, bool) or not isinstance(card, int) or not 1 <= card <= self.config.cards:
            raise QueueError(f"card {card!r} does not exist: cards are 1..{self.config.cards}")
        now = self.clock()
        with self.store.transaction() as tx:
            self._housekeep(tx)
            row = tx.execute("SELECT id, number, status, counter FROM pager_ticket WHERE card = ? AND card_held = 1",
                             (card,)).fetchone()
            if row is None:
                raise QueueError(f"card {card} is not out: nobody holds it")
            ticket_id, number, status, counter = row
            if status == "called":
                raise QueueError(f"card {card} ({number}) is being served at counter {counter}: finish it there")
            if status == "waiting":
                tx.execute("UPDATE pager_ticket SET status = 'no_show', finished = ? WHERE id = ?", (now, ticket_id))
            tx.execute("UPDATE pager_ticket SET card_held = 0 WHERE id = ?", (ticket_id,))
            reason = "left_queue" if status == "waiting" else "returned_at_desk"
            _emit(tx, "card_returned", ticket=number, card=card, reason=reason)
            self.publish(tx)
        return {"card": card, "ticket": number, "reason": reason}

    def transfer(self, counter: str, to_service: str | None = None, to_counter: str | None = None) -> dict:
        """Send the current ticket to another service or counter; it keeps its place and its card."""
        if to_service is None and to_counter is None:
            raise QueueError("transfer needs to_service or to_counter")
        if to_service is not None:
            self._check_service(to_service)
        if to_counter is not None:
            self._check_counter(to_counter)
            if to_service is not None and to_service not in self.config.counters[to_counter].services:
                raise QueueError(f"counter {to_counter} does not serve {to_service!r}")
        with self.store.transaction() as tx:
            ticket = self._current(tx, counter, "transfer")
            service = to_service or tx.execute("SELECT service FROM pager_ticket WHERE id = ?", (ticket,)).fetchone()[0]
            tx.execute("UPDATE pager_ticket SET status = 'waiting', service = ?, target_counter = ?, recalls = 0, "
                       "transfers = transfers + 1 WHERE id = ?", (service, to_counter, ticket))
            tx.execute("UPDATE pager_counter SET current = NULL WHERE name = ?", (counter,))
            result = {**self._ticket_answer(tx, ticket), "from_counter": counter, "to_counter": to_counter}
            _emit(tx, "ticket_transferred", ticket=result["ticket"], service=service, card=result["card"],
                    from_counter=counter, to_counter=to_counter, position=result["position"])
            self.publish(tx)
        return result

    def done(self, counter: str) -> dict:
        """Service finished: close the ticket and take the card back."""
        now = self.clock()
        with self.store.transaction() as tx:
            ticket = self._current(tx, counter, "finish")
            result = self._finish(tx, counter, ticket, now)
            self.publish(tx)
        return result

    def pause(self, counter: str, paused: bool) -> dict:
        self._check_counter(counter)
        with self.store.transaction() as tx:
            tx.execute("UPDATE pager_counter SET paused = ? WHERE name = ?", (int(bool(paused)), counter))
            _emit(tx, "counter_paused" if paused else "counter_resumed", counter=counter)
            self.publish(tx)
        return {"counter": counter, "paused": bool(paused)}

    def rate(self, counter: str, score: int) -> dict:
        """Satisfaction 1..5 for the ticket this counter finished last (within rating_window_s)."""
        self._check_counter(counter)
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise QueueError(f"rating must be an integer 1..5, found {score!r}")
        now = self.clock()
        with self.store.transaction() as tx:
            row = tx.execute("SELECT t.id, t.number, t.service, t.finished, t.rating FROM pager_counter c "
                             "JOIN pager_ticket t ON t.id = c.last_done WHERE c.name = ?", (counter,)).fetchone()
            if row is None or now - row[3] > self.config.rating_window_s:
                raise QueueError(f"counter {counter} finished no ticket in the last {self.config.rating_window_s} s to rate")
            if row[4] is not None:
                raise QueueError(f"ticket {row[1]} is already rated {row[4]}")
            tx.execute("UPDATE pager_ticket SET rating = ? WHERE id = ?", (score, row[0]))
            result = {"ticket": row[1], "service": row[2], "counter": counter, "score": score}
            _emit(tx, "rating", **result)
        return result

    def still_called(self, ticket: str, card: int) -> bool:
        """True while `ticket` is called on `card` today: a page queued during an outage must not
        vibrate a card that has since been handed to someone else."""
        return bool(self.store.query(
            "SELECT 1 FROM pager_ticket WHERE day = ? AND number = ? AND card = ? AND status = 'called'",
            (self.day_of(self.clock()), ticket, card)))

    def tick(self) -> None:
        """Housekeeping for the service loop: day rollover and cards held after a no-show."""
        with self.store.transaction() as tx:
            if self._housekeep(tx):
                self.publish(tx)

    # -- reading ----------------------------------------------------------------------------
    def view(self) -> dict:
        """Everything the wall display and counter panels show (no personal data)."""
        with self.store.transaction() as tx:
            return self._view(tx)

    def stats(self, day: str | None = None) -> dict:
        """Daily statistics per service and counter: wait = called − issued, service = finished − called."""
        day = day or self.day_of(self.clock())
        def rows(group: str) -> dict:
            out = {}
            for r in self.store.query(
                    f"SELECT {group} AS k, count(*) AS tickets, "
                    "sum(status = 'done') AS served, sum(status = 'no_show') AS no_shows, "
                    "sum(status IN ('waiting', 'called')) AS open, sum(status = 'expired') AS expired, "
                    "avg(called - issued) AS avg_wait_s, max(called - issued) AS max_wait_s, "
                    "avg(CASE WHEN status = 'done' THEN finished - called END) AS avg_service_s, "
                    "avg(rating) AS avg_rating, count(rating) AS ratings "
                    f"FROM pager_ticket WHERE day = ? AND {group} IS NOT NULL GROUP BY {group}", (day,)):
                out[r["k"]] = {k: (round(r[k], 1) if isinstance(r[k], float) else r[k]) for k in r.keys() if k != "k"}
            return out
        services = rows("origin_service")
        totals = {k: sum(s[k] or 0 for s in services.values()) for k in ("tickets", "served", "no_shows", "open", "expired")}
        return {"day": day, "services": services, "counters": rows("counter"), "totals": totals}

    # -- internals --------------------------------------------------------------------------
    def _check_service(self, service: str) -> None:
        if service not in self.config.services:
            raise QueueError(f"unknown service {service!r}; expected one of {sorted(self.config.services)}")

    def _check_counter(self, counter: str) -> None:
        if counter not in self.config.counters:
            raise QueueError(f"unknown counter {counter!r}; expected one of {sorted(self.config.counters)}")

    def _current(self, tx: Tx, counter: str, action: str) -> int:
        self._check_counter(counter)
        row = tx.execute("SELECT current FROM pager_counter WHERE name = ?", (counter,)).fetchone()
        if row[0] is None:
            raise QueueError(f"counter {counter} is serving no ticket: nothing to {action}")
        return row[0]

    def _new_ticket(self, tx: Tx, service: str, priority: str | None, source: str, now: float, sort_key: float) -> int:
        day = self.day_of(now)
        card = self._free_card(tx)
        number = tx.execute(
            "INSERT INTO pager_number(day, service, last) VALUES (?, ?, 1) ON CONFLICT(day, service) "
            "DO UPDATE SET last = last + 1 RETURNING last", (day, service)).fetchone()[0]
        label = f"{self.config.services[service].prefix}{number:03d}"
        cur = tx.execute(
            "INSERT INTO pager_ticket(day, number, service, origin_service, priority, source, card, status, issued, "
            "sort_key) VALUES (?, ?, ?, ?, ?, ?, ?, 'waiting', ?, ?)",
            (day, label, service, service, priority, source, card, now, sort_key))
        tx.execute("INSERT INTO pager_meta(key, value) VALUES ('card_cursor', ?) "
                   "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(card),))
        return cur.lastrowid

    def _free_card(self, tx: Tx) -> int:
        """The next free card after the last one handed out (round-robin spreads the wear)."""
        held = {r[0] for r in tx.execute("SELECT card FROM pager_ticket WHERE card_held = 1")}
        row = tx.execute("SELECT value FROM pager_meta WHERE key = 'card_cursor'").fetchone()
        last = int(row[0]) if row else 0
        total = self.config.cards
        broken = set(self.config.broken_cards)
        for step in range(1, total + 1):
            card = (last + step - 1) % total + 1
            if card not in held and card not in broken:
                return card
        raise QueueError(f"all {total - len(broken)} cards are out: collect cards at the counters before issuing more")

    def _finish(self, tx: Tx, counter: str, ticket: int, now: float) -> dict:
        tx.execute("UPDATE pager_ticket SET status = 'done', finished = ?, card_held = 0 WHERE id = ?", (now, ticket))
        tx.execute("UPDATE pager_counter SET current = NULL, last_done = ? WHERE name = ?", (ticket, counter))
        number, service, card, issued, called = tx.execute(
            "SELECT number, service, card, issued, called FROM pager_ticket WHERE id = ?", (ticket,)).fetchone()
        result = {"ticket": number, "service": service, "counter": counter, "card": card,
                  "wait_s": round(called - issued, 1), "service_s": round(now - called, 1)}
        _emit(tx, "ticket_done", **result)
        return result

    def _housekeep(self, tx: Tx) -> bool:
        """Roll the day over and return cards held past card_hold_s; True if anything changed."""
        now = self.clock()
        changed = False
        today = self.day_of(now)
        row = tx.execute("SELECT value FROM pager_meta WHERE key = 'day'").fetchone()
        if row is None or row[0] != today:
            changed = True
            expired = tx.execute("UPDATE pager_ticket SET status = 'expired', finished = ?, card_held = 0 "
                                 "WHERE status IN ('waiting', 'called') AND day != ?", (now, today)).rowcount
            tx.execute("UPDATE pager_ticket SET card_held = 0 WHERE card_held = 1 AND day != ?", (today,))
            tx.execute("UPDATE pager_counter SET current = NULL, last_done = NULL")
            tx.execute("INSERT INTO pager_meta(key, value) VALUES ('day', ?) "
                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (today,))
            if row is not None:
                _emit(tx, "day_rollover", previous_day=row[0], day=today, expired=expired)
                # The day's statistics travel to the office dashboard as one event.
                _emit(tx, "day_stats", **self.stats(row[0]))
        due = tx.execute("SELECT count(*) FROM pager_ticket WHERE card_held = 1 AND status = 'no_show' "
                         "AND finished <= ?", (now - self.config.card_hold_s,)).fetchone()[0]
        returned = tx.execute(
            "UPDATE pager_ticket SET card_held = 0 WHERE card_held = 1 AND status = 'no_show' AND finished <= ? "
            "RETURNING number, card", (now - self.config.card_hold_s,)).fetchall() if due else []
        for number, card in returned:
            changed = True
            _emit(tx, "card_returned", ticket=number, card=card, reason="no_show_timeout")
        return changed

    def _number(self, tx: Tx, ticket: int) -> str:
        return tx.execute("SELECT number FROM pager_ticket WHERE id = ?", (ticket,)).fetchone()[0]

    def _called_answer(self, tx: Tx, ticket: int, counter: str) -> dict:
        number, service, card, recalls, priority = tx.execute(
            "SELECT number, service, card, recalls, priority FROM pager_ticket WHERE id = ?", (ticket,)).fetchone()
        return {"ticket": number, "service": service, "counter": counter, "card": card, "recalls": recalls,
                "priority": priority}

    def _ticket_answer(self, tx: Tx, ticket: int) -> dict:
        number, service, card, sort_key, status = tx.execute(
            "SELECT number, service, card, sort_key, status FROM pager_ticket WHERE id = ?", (ticket,)).fetchone()
        ahead = tx.execute("SELECT count(*) FROM pager_ticket WHERE status = 'waiting' AND service = ? "
                           "AND (sort_key < ? OR (sort_key = ? AND id < ?))", (service, sort_key, sort_key, ticket)).fetchone()[0]
        position = ahead + 1 if status == "waiting" else 0
        return {"ticket": number, "card": card, "service": service, "position": position,
                "estimated_wait_s": self._estimate(tx, service, ahead) if status == "waiting" else 0}

    def _service_time(self, tx: Tx, service: str) -> float:
        row = tx.execute(f"SELECT avg(d) FROM (SELECT finished - called AS d FROM pager_ticket "
                         f"WHERE service = ? AND finished IS NOT NULL AND status = 'done' "
                         f"ORDER BY finished DESC LIMIT {RECENT_SERVICE_TIMES})", (service,)).fetchone()
        return row[0] if row[0] is not None else float(self.config.default_service_s)

    def _open_counters(self, tx: Tx, service: str, paused: set[str] | None = None) -> int:
        if paused is None:
            paused = {r[0] for r in tx.execute("SELECT name FROM pager_counter WHERE paused = 1")}
        return sum(1 for name, c in self.config.counters.items() if service in c.services and name not in paused)

    def _estimate(self, tx: Tx, service: str, ahead: int, *, service_s: float | None = None, open_counters: int | None = None) -> int:
        if ahead <= 0:
            return 0
        service_s = self._service_time(tx, service) if service_s is None else service_s
        counters = self._open_counters(tx, service) if open_counters is None else open_counters
        # Rounds of service ahead of this ticket across the open counters (none open: one counter).
        return int(math.ceil(ahead / max(counters, 1)) * service_s)

    def _view(self, tx: Tx) -> dict:
        waiting = {r[0]: r[1] for r in tx.execute(
            "SELECT service, count(*) FROM pager_ticket WHERE status = 'waiting' GROUP BY service")}
        paused = {r[0] for r in tx.execute("SELECT name FROM pager_counter WHERE paused = 1")}
        services = {}
        for sid, definition in self.config.services.items():
            count = waiting.get(sid, 0)
            nxt = [r[0] for r in tx.execute("SELECT number FROM pager_ticket WHERE status = 'waiting' AND service = ? "
                                            "ORDER BY sort_key, id LIMIT 3", (sid,))] if count else []
            open_counters = self._open_counters(tx, sid, paused)
            services[sid] = {"prefix": definition.prefix, "name": definition.name, "name_en": definition.name_en,
                             "waiting": count, "next": nxt, "open_counters": open_counters,
                             "estimated_wait_s": self._estimate(tx, sid, count, open_counters=open_counters)}
        counters = {}
        for name, paused, number, service, card, called in tx.execute(
                "SELECT c.name, c.paused, t.number, t.service, t.card, t.called FROM pager_counter c "
                "LEFT JOIN pager_ticket t ON t.id = c.current ORDER BY c.name"):
            if name in self.config.counters:
                counters[name] = {"paused": bool(paused), "ticket": number, "service": service, "card": card,
                                  "called_at": called}
        recent = [{"ticket": r[0], "counter": r[1], "card": r[2]} for r in tx.execute(
            "SELECT t.number, t.counter, t.card FROM pager_counter c JOIN pager_ticket t ON t.id = c.current "
            "ORDER BY t.called DESC LIMIT 6")]
        cards_out = tx.execute("SELECT count(*) FROM pager_ticket WHERE card_held = 1").fetchone()[0]
        day = tx.execute("SELECT value FROM pager_meta WHERE key = 'day'").fetchone()
        return {"day": day[0] if day else None, "services": services, "counters": counters,
                "now_serving": recent, "cards_out": cards_out,
                "cards_free": self.config.cards - len(set(self.config.broken_cards)) - cards_out}

    def publish(self, tx: Tx) -> None:
        """Queue the retained snapshot inside `tx` (it commits with the change it describes)."""
        tx.set_state(SERVICE, {**self._view(tx), **(self.extra_state() if self.extra_state else {})})
