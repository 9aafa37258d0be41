"""A busy day: tickets over 10 hours across 20 counters with restarts, on an injected clock.

The simulated day runs as fast as the store allows (far beyond 50× real time: nothing sleeps).
Afterwards: no ticket lost or duplicated, every card back, statistics that add up.

Nothing here waits on a timer: it is pure work, but ~20,000 commits, each fsynced to disk
(synchronous=FULL), and on a busy disk the fsyncs were four fifths of its time. The store lives in
RAM (/dev/shm) where the machine has it: a restart here reopens the file (a process restart,
which needs no fsync); power cuts and kill -9 are test_crash.py's and tests/core/test_crash.py's.
"""

import json
import random
import shutil
import tempfile
from pathlib import Path

import pytest

from edge.pager.config import CounterDef, PagerConfig, ServiceDef
from edge.pager.queue import QueueEngine, QueueError
from edge.store import Store

MORNING = 1772413200.0  # 08:00 local (UTC+7)
SERVICES = {"a": "A", "b": "B", "c": "C", "d": "D"}


def busy_day(tmp_path, tickets: int, counters: int, restarts: int, seed: int = 4):
    rng = random.Random(seed)
    clock = [MORNING]
    config = PagerConfig(
        services={sid: ServiceDef(prefix=p) for sid, p in SERVICES.items()},
        counters={str(i): CounterDef(services=sorted(SERVICES, key=lambda s: (hash((s, i)) % 7, s))[:2 + i % 3])
                  for i in range(1, counters + 1)},
        card_hold_s=300, double_press_s=0)
    path = tmp_path / "edge.db"
    store = Store(path, clock=lambda: clock[0])
    engine = QueueEngine(store, config, clock=lambda: clock[0])
    day_s = 10 * 3600
    arrival_gap = day_s / tickets
    busy_until = {name: 0.0 for name in config.counters}
    issued, refused, ops = [], 0, 0
    restart_every = max(1, (tickets * 3) // (restarts + 1))
    next_arrival = MORNING
    step = 20.0
    while len(issued) < tickets or engine.store.query(
            "SELECT count(*) FROM pager_ticket WHERE status IN ('waiting', 'called')")[0][0]:
        clock[0] += step
        while len(issued) < tickets and next_arrival <= clock[0]:
            try:
                ticket = engine.issue(rng.choice(list(SERVICES)),
                                      priority="elderly" if rng.random() < 0.1 else None, source="load")
                issued.append(ticket["ticket"])
                next_arrival += rng.expovariate(1 / arrival_gap)
            except QueueError:
                refused += 1  # every card is out: the citizen waits at the desk and tries again
                break
            ops += 1
        serving = {r[0]: r[1] for r in engine.store.query("SELECT name, current FROM pager_counter")}
        waiting = engine.store.query("SELECT count(*) FROM pager_ticket WHERE status = 'waiting'")[0][0]
        for name in config.counters:
            if busy_until[name] > clock[0]:
                continue
            current = serving[name]
            roll = rng.random()
            if current and roll < 0.05:
                engine.no_show(name)
            elif current and roll < 0.08:
                engine.transfer(name, to_service=rng.choice(list(SERVICES)))
            elif current and roll < 0.10:
                try:
                    engine.recall(name)
                except QueueError:
                    engine.no_show(name)
            elif not current and not waiting:
                continue  # an idle desk with nobody waiting does not press anything
            elif engine.call_next(name) is not None:  # also closes the current one as done
                busy_until[name] = clock[0] + rng.uniform(120, 360)
            ops += 1
            if ops % restart_every == 0:  # power cut: a fresh store and engine on the same file
                store.close()
                store = Store(path, clock=lambda: clock[0])
                engine = QueueEngine(store, config, clock=lambda: clock[0])
    clock[0] += config.card_hold_s + 1
    engine.tick()
    return engine, issued, refused


def check_day(engine, issued):
    assert len(issued) == len(set(issued))
    rows = engine.store.query("SELECT number, status, card_held FROM pager_ticket")
    assert sorted(r["number"] for r in rows) == sorted(issued)  # none lost, none invented
    assert {r["status"] for r in rows} <= {"done", "no_show"}
    assert engine.view()["cards_out"] == 0  # every card returned
    stats = engine.stats()
    totals = stats["totals"]
    assert totals["tickets"] == len(issued)
    assert totals["served"] + totals["no_shows"] + totals["open"] + totals["expired"] == totals["tickets"]
    assert sum(c["tickets"] for c in stats["counters"].values()) == totals["tickets"]
    issued_events = [json.loads(p) for _, t, p, _, _ in engine.store.pending(limit=10**7)
                     if t == "pager/event" and json.loads(p)["type"] == "ticket_issued"]
    assert sorted(e["ticket"] for e in issued_events) == sorted(issued)
    seqs = [e["seq"] for e in issued_events]
    assert len(set(seqs)) == len(seqs)


@pytest.fixture
def ram_dir(tmp_path):
    """A fresh directory in RAM (/dev/shm) when there is one, else tmp_path."""
    try:
        path = Path(tempfile.mkdtemp(prefix="pager-busy-day-", dir="/dev/shm"))
    except OSError:  # no /dev/shm (not Linux) or not writable: the disk, slower
        yield tmp_path
        return
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_busy_day_full(ram_dir):
    engine, issued, _ = busy_day(ram_dir, tickets=3000, counters=20, restarts=5)
    try:
        assert len(issued) == 3000
        check_day(engine, issued)
    finally:
        engine.store.close()
