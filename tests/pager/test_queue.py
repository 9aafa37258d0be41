"""The queue engine on a real store with an injected clock (tests advance it, nobody sleeps)."""

import json
import threading

import pytest

from edge.pager.config import CounterDef, PagerConfig, ServiceDef
from edge.pager.queue import QueueEngine, QueueError
from edge.store import Store

# 2026-03-02 08:00 in Vietnam (UTC+7).
MORNING = 1772413200.0


class Clock:
    def __init__(self, t=MORNING):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


def make_config(**overrides):
    base = dict(
        services={"a": ServiceDef(prefix="A", name="Hộ tịch"), "b": ServiceDef(prefix="B", name="Đất đai")},
        counters={"1": CounterDef(services=["a", "b"]), "2": CounterDef(services=["b"]), "3": CounterDef(services=["a"])},
    )
    base.update(overrides)
    return PagerConfig(**base)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def make(tmp_path, clock):
    stores = []

    def build(**overrides):
        store = Store(tmp_path / "edge.db", clock=clock)
        stores.append(store)
        return QueueEngine(store, make_config(**overrides), clock=clock)

    yield build
    for store in stores:
        store.close()


def events(engine, type=None):
    found = []
    for _, topic, payload, _, _ in engine.store.pending(limit=100000):
        if topic == "pager/event":
            event = json.loads(payload)
            if type is None or event["type"] == type:
                found.append(event)
    return found


def test_tickets_numbered_per_service_with_round_robin_cards(make, clock):
    q = make()
    assert q.issue("a")["ticket"] == "A001"
    assert q.issue("a")["ticket"] == "A002"
    b = q.issue("b")
    assert (b["ticket"], b["card"], b["service"], b["position"]) == ("B001", 3, "b", 1)
    clock.advance(5)
    q.call_next("3")  # A001 on card 1
    clock.advance(60)
    q.done("3")  # card 1 comes back, but round-robin hands out card 4 next
    assert q.issue("a")["card"] == 4


def test_a_card_is_never_given_to_two_citizens(make):
    q = make(cards=3)
    cards = [q.issue("a")["card"] for _ in range(3)]
    assert sorted(cards) == [1, 2, 3]
    with pytest.raises(QueueError, match="all 3 cards are out"):
        q.issue("a")
    # The database itself refuses a second holder, whatever the code path.
    with pytest.raises(Exception, match="UNIQUE"):
        with q.store.transaction() as tx:
            tx.execute("UPDATE pager_ticket SET card = 1 WHERE card = 2")


def test_broken_cards_are_skipped(make):
    q = make(broken_cards=[2, 3])
    assert [q.issue("a")["card"] for _ in range(2)] == [1, 4]


def test_priority_head_start_and_aging(make, clock):
    q = make()
    q.issue("a")  # A001, ordinary
    clock.advance(100)
    q.issue("a", priority="elderly")  # A002: 900 s head start, goes first
    assert q.call_next("3")["ticket"] == "A002"
    clock.advance(1000)
    q.issue("a", priority="elderly")  # A003 arrives after A001 waited 1100 s > head start
    clock.advance(10)
    assert q.call_next("3")["ticket"] == "A001"  # aging: the ordinary citizen is not starved
    clock.advance(10)
    assert q.call_next("3")["ticket"] == "A003"


def test_unknown_priority_service_counter_are_clear_errors(make):
    q = make()
    with pytest.raises(QueueError, match="unknown priority class 'vip'"):
        q.issue("a", priority="vip")
    with pytest.raises(QueueError, match="unknown service 'z'.*'a', 'b'"):
        q.issue("z")
    with pytest.raises(QueueError, match="unknown counter '9'"):
        q.call_next("9")


def test_empty_queue_and_nothing_to_do(make):
    q = make()
    assert q.call_next("1") is None
    for action in (q.recall, q.no_show, q.done):
        with pytest.raises(QueueError, match="serving no ticket"):
            action("1")
    with pytest.raises(QueueError, match="nothing to transfer"):
        q.transfer("1", to_service="a")


def test_counter_serves_only_its_services(make):
    q = make()
    q.issue("a")
    assert q.call_next("2") is None  # counter 2 serves only b
    assert q.call_next("1")["ticket"] == "A001"


def test_call_next_closes_previous_and_double_press_repeats(make, clock):
    q = make()
    q.issue("a")
    q.issue("a")
    first = q.call_next("3")
    again = q.call_next("3")  # pressed twice within double_press_s: same ticket, paged again
    assert again["ticket"] == first["ticket"] and again["repeated"]
    clock.advance(120)
    second = q.call_next("3")
    assert second["ticket"] == "A002"
    done = events(q, "ticket_done")
    assert [e["ticket"] for e in done] == ["A001"] and done[0]["service_s"] == 120


def test_two_counters_calling_at_once_get_different_tickets(make):
    q = make()
    for _ in range(2):
        q.issue("b")
    results = {}
    barrier = threading.Barrier(2)

    def press(counter):
        barrier.wait()
        results[counter] = q.call_next(counter)["ticket"]

    threads = [threading.Thread(target=press, args=(c,)) for c in ("1", "2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == ["B001", "B002"]


def test_recall_has_a_limit(make):
    q = make(max_recalls=2)
    q.issue("a")
    q.call_next("3")
    assert q.recall("3")["recalls"] == 1
    assert q.recall("3")["recalls"] == 2
    with pytest.raises(QueueError, match="recalled 2 times already: mark it no-show"):
        q.recall("3")


def test_no_show_returns_the_card_after_the_hold(make, clock):
    q = make(card_hold_s=600)
    q.issue("a")
    q.call_next("3")
    result = q.no_show("3")
    assert result["card"] == 1
    assert q.view()["cards_out"] == 1  # the citizen may still walk in holding it
    clock.advance(601)
    q.tick()
    assert q.view()["cards_out"] == 0
    assert [e["card"] for e in events(q, "card_returned")] == [1]


def test_transfer_keeps_place_and_card(make, clock):
    q = make()
    q.issue("a")  # A001 early
    clock.advance(60)
    q.issue("b")  # B001 later
    clock.advance(5)
    q.call_next("3")  # A001 at counter 3
    moved = q.transfer("3", to_service="b")
    assert moved["card"] == 1 and moved["position"] == 1
    clock.advance(5)
    assert q.call_next("2")["ticket"] == "A001"  # it kept its place ahead of B001


def test_transfer_to_a_counter_goes_only_there(make, clock):
    q = make()
    q.issue("b")
    q.call_next("2")
    q.transfer("2", to_counter="1")
    clock.advance(5)
    assert q.call_next("2") is None
    assert q.call_next("1")["ticket"] == "B001"
    with pytest.raises(QueueError, match="does not serve"):
        q.transfer("1", to_service="b", to_counter="3")


def test_pause_blocks_calls(make):
    q = make()
    q.issue("a")
    q.pause("3", True)
    with pytest.raises(QueueError, match="paused"):
        q.call_next("3")
    assert q.view()["services"]["a"]["open_counters"] == 1
    q.pause("3", False)
    assert q.call_next("3")["ticket"] == "A001"


def test_rating_applies_to_last_finished_ticket(make, clock):
    q = make(rating_window_s=60)
    with pytest.raises(QueueError, match="no ticket"):
        q.rate("3", 5)
    q.issue("a")
    q.call_next("3")
    clock.advance(30)
    q.done("3")
    with pytest.raises(QueueError, match="1..5"):
        q.rate("3", 6)
    assert q.rate("3", 4)["ticket"] == "A001"
    with pytest.raises(QueueError, match="already rated"):
        q.rate("3", 5)
    assert q.stats()["counters"]["3"]["avg_rating"] == 4


def test_appointment_checkin_jumps_to_its_slot(make, clock):
    q = make()
    q.add_appointment("APT-1", "a", MORNING + 60)
    q.issue("a")  # A001 walks in at 08:00
    clock.advance(600)
    q.issue("a")  # A002 at 08:10
    clock.advance(60)
    ticket = q.checkin("APT-1")  # booked 08:01, arrives 08:11: goes after A001, before A002
    assert ticket["ticket"] == "A003" and ticket["position"] == 2 and not ticket["late"]
    assert q.checkin("APT-1")["repeated"]  # a second scan: the same ticket, not a new one
    assert [q.call_next("3")["ticket"] for _ in range(1)] == ["A001"]
    clock.advance(10)
    assert q.call_next("3")["ticket"] == "A003"
    with pytest.raises(QueueError, match="unknown appointment code"):
        q.checkin("NOPE")


def test_late_appointment_queues_normally(make, clock):
    q = make(appointment_grace_s=300)
    q.add_appointment("APT-2", "a", MORNING)
    clock.advance(301)
    q.issue("a")
    clock.advance(1)
    assert q.checkin("APT-2")["late"] is True
    assert q.call_next("3")["ticket"] == "A001"


def test_estimated_wait_uses_measured_service_times(make, clock):
    q = make(default_service_s=300)
    q.issue("b")
    assert q.issue("b")["estimated_wait_s"] == 300  # one ahead, 2 counters serve b: one round of 300 s
    q.call_next("2")
    clock.advance(100)
    q.done("2")
    for _ in range(3):
        q.issue("b")
    # 4 waiting now, measured service 100 s, counters 1 and 2 open -> 2 rounds ahead of the 5th.
    assert q.issue("b")["estimated_wait_s"] == 200
    assert q.view()["services"]["b"]["estimated_wait_s"] == 300


def test_each_action_commits_event_and_state_together(make, clock):
    q = make()
    q.issue("a")
    q.call_next("3")
    rows = [(t, json.loads(p)) for _, t, p, _, _ in q.store.pending()]
    called = [p for t, p in rows if t == "pager/event" and p["type"] == "ticket_called"]
    assert called[0]["ticket"] == "A001" and called[0]["card"] == 1 and called[0]["queue"] == "a"
    state = [p for t, p in rows if t == "pager/state"][-1]
    assert state["counters"]["3"]["ticket"] == "A001"
    assert state["services"]["a"]["waiting"] == 0
    seqs = [p["seq"] for t, p in rows if t == "pager/event"]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_queue_survives_restart_exactly(make, clock):
    q = make()
    for _ in range(3):
        q.issue("a")
    q.issue("b", priority="disabled")
    q.call_next("1")
    before = q.view()
    q.store.close()
    q2 = make()
    assert q2.view() == before
    clock.advance(60)
    assert q2.call_next("3")["ticket"] == "A001"
    assert q2.issue("a")["ticket"] == "A004"


def test_day_rollover_restarts_numbering_and_frees_cards(make, clock):
    q = make(day_start_hour=5)
    q.issue("a")
    q.issue("a")
    q.call_next("3")
    day = q.view()["day"]
    clock.advance(20 * 3600)  # 04:00 next day: still the same business day
    assert q.issue("a")["ticket"] == "A003"
    clock.advance(2 * 3600)  # 06:00: a new day
    fresh = q.issue("a")
    assert fresh["ticket"] == "A001"
    view = q.view()
    assert view["day"] != day and view["cards_out"] == 1
    assert view["counters"]["3"]["ticket"] is None
    rollover = events(q, "day_rollover")
    assert rollover[0]["previous_day"] == day and rollover[0]["expired"] == 3
    stats = q.stats(day)
    assert stats["totals"]["tickets"] == 3 and stats["totals"]["expired"] == 3 and stats["totals"]["served"] == 0
    day_stats = events(q, "day_stats")
    assert day_stats[0]["day"] == day and day_stats[0]["totals"] == stats["totals"]


def test_late_citizen_rejoins_at_their_place_while_holding_the_card(make, clock):
    q = make(card_hold_s=600)
    q.issue("a")
    clock.advance(10)
    q.issue("a")
    q.call_next("3")
    q.no_show("3")  # A001 did not come
    clock.advance(120)
    back = q.rejoin("A001")
    assert back["position"] == 1 and back["card"] == 1  # ahead of A002 again
    assert q.call_next("3")["ticket"] == "A001"
    with pytest.raises(QueueError, match="not a no-show"):
        q.rejoin("A002")
    with pytest.raises(QueueError, match="no ticket 'A999'"):
        q.rejoin("A999")
    clock.advance(30)
    q.no_show("3")
    clock.advance(601)
    with pytest.raises(QueueError, match="card was already returned"):
        q.rejoin("A001")


def test_cards_handed_back_at_the_desk(make, clock):
    q = make(card_hold_s=3600)
    q.issue("a")  # card 1
    q.issue("a")  # card 2
    q.issue("a")  # card 3
    q.call_next("3")  # A001 on card 1
    for card, message in ((0, "does not exist: cards are 1..99"), (100, "does not exist"),
                          (7, "card 7 is not out"), (1, "being served at counter 3")):
        with pytest.raises(QueueError, match=message):
            q.return_card(card)
    assert q.return_card(2)["reason"] == "left_queue"  # A002 gave up and left
    clock.advance(10)
    q.no_show("3")
    assert q.return_card(1)["reason"] == "returned_at_desk"  # no need to wait card_hold_s
    assert q.view()["cards_out"] == 1
    assert q.call_next("3")["ticket"] == "A003"
    assert q.stats()["totals"]["no_shows"] == 2


def test_call_a_specific_ticket_out_of_order(make, clock):
    q = make()
    for _ in range(3):
        q.issue("a")
    assert q.call_next("3", ticket="A003")["ticket"] == "A003"
    clock.advance(60)
    with pytest.raises(QueueError, match="A003 is not waiting \\(it is called\\)"):
        q.call_next("1", ticket="A003")
    with pytest.raises(QueueError, match="no ticket 'A042' today"):
        q.call_next("1", ticket="A042")
    assert q.call_next("3")["ticket"] == "A001"  # the rest keep their order
