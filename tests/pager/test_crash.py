"""kill -9 in the middle of a busy queue: the store reopens consistent, nothing half-done."""

import json
import os
import signal
import subprocess
import sys

from edge.pager.config import CounterDef, PagerConfig, ServiceDef
from edge.pager.queue import QueueEngine
from edge.store import Store

CHILD = r"""
import random, sys
from edge.pager.config import CounterDef, PagerConfig, ServiceDef
from edge.pager.queue import QueueEngine, QueueError
from edge.store import Store
config = PagerConfig(double_press_s=0, card_hold_s=0,
                     services={"a": ServiceDef(prefix="A"), "b": ServiceDef(prefix="B")},
                     counters={str(i): CounterDef(services=["a", "b"]) for i in range(1, 5)})
engine = QueueEngine(Store(sys.argv[1]), config)
rng = random.Random(1)
ops = 0
while True:
    counter = str(rng.randint(1, 4))
    try:
        roll = rng.random()
        if roll < 0.5:
            engine.issue(rng.choice("ab"))
        elif roll < 0.8:
            engine.call_next(counter)
        elif roll < 0.9:
            engine.no_show(counter)
        else:
            engine.transfer(counter, to_service=rng.choice("ab"))
    except QueueError:
        pass
    ops += 1
    if ops == 200:
        print("busy", flush=True)
"""


def config():
    return PagerConfig(double_press_s=0, card_hold_s=0,
                       services={"a": ServiceDef(prefix="A"), "b": ServiceDef(prefix="B")},
                       counters={str(i): CounterDef(services=["a", "b"]) for i in range(1, 5)})


def test_kill_9_leaves_a_consistent_queue(tmp_path):
    db = tmp_path / "edge.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        # The child runs on while we read its line: the kill lands at an arbitrary point of some transaction.
        assert child.stdout.readline().strip() == "busy"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)

    store = Store(db)
    try:
        tickets = store.query("SELECT * FROM pager_ticket")
        assert len(tickets) > 50
        for t in tickets:
            if t["status"] in ("waiting", "called"):
                assert t["card_held"] == 1, dict(t)
        held = [t["card"] for t in tickets if t["card_held"]]
        assert len(held) == len(set(held))
        for row in store.query("SELECT c.name, t.status FROM pager_counter c JOIN pager_ticket t ON t.id = c.current"):
            assert row["status"] == "called"
        for row in store.query("SELECT service, last FROM pager_number"):
            numbers = sorted(int(t["number"][1:]) for t in tickets if t["origin_service"] == row["service"])
            assert numbers == list(range(1, row["last"] + 1))  # no gap, no duplicate
        issued = [json.loads(p)["ticket"] for _, topic, p, _, _ in store.pending(limit=10**6)
                  if topic == "pager/event" and json.loads(p)["type"] == "ticket_issued"]
        assert sorted(issued) == sorted(t["number"] for t in tickets)  # each change has exactly its event
        engine = QueueEngine(store, config())
        if engine.call_next("1"):
            engine.done("1")  # hand a card back in case the child filled the pool
        assert engine.issue("a")["ticket"].startswith("A")
    finally:
        store.close()
