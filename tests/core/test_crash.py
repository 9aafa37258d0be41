"""kill -9 the supervisor at random moments during a stream of state changes (50 times):
the store stays consistent, the audit chain holds, `seq` never repeats or skips, nothing is lost.

Each writer is a fresh process forked from one "zygote" that imported the supervisor once, so the
50 runs do not pay Python's start-up and imports 50 times; the zygote opens no store, no socket
and no thread, so every writer starts from nothing but its data directory, as after a reboot."""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time

from edge import audit
from edge.testing import MqttRecorder, wait_until

KILLS = 50

WRITER = r'''
import asyncio, dataclasses, os, sys
from edge.config import from_dict
from edge.service import Service
from edge.supervisor import Supervisor

class Counter(Service):
    name = "pager"
    async def start(self):
        self.ctx.store.migrate("crashtest", ["CREATE TABLE tally (k TEXT PRIMARY KEY, v INTEGER); INSERT INTO tally VALUES ('n', 0);"])
    async def run(self):
        print("running", os.getpid(), flush=True)
        while PRODUCE:
            with self.ctx.store.transaction() as tx:
                n = tx.execute("UPDATE tally SET v = v + 1 WHERE k = 'n' RETURNING v").fetchone()[0]
                tx.emit("pager", "ticket_issued", n=n)
                tx.audit("test", "issue", n=n)
                tx.set_state("pager", {"issued": n})
            await asyncio.sleep(0)
        await asyncio.Event().wait()  # a "drain" writer: only the reporter works, emptying the outbox

@dataclasses.dataclass(frozen=True)
class Section:
    enabled: bool = True

config = from_dict({"site": "hn", "device": "crash-01", "role": "desk", "data_dir": sys.argv[1],
                    "broker": {"url": sys.argv[2]}})
config = dataclasses.replace(config, services={"pager": Section()})

for line in sys.stdin:  # "go" or "drain" asks for one writer: a forked child that prints "running PID"
    PRODUCE = line.strip() == "go"
    pid = os.fork()
    if pid == 0:
        try:
            asyncio.run(Supervisor(config, service_classes={"pager": Counter}).run())
        finally:
            os._exit(0)  # never back into this loop, never flushing the zygote's buffers twice
    os.waitpid(pid, 0)
    print("exited", flush=True)
'''


class Writers:
    """The zygote: `start()` forks a writer and returns its pid once it runs its loop."""

    def __init__(self, script, data, broker_url):
        # A session of its own, so close() kills the zygote and any writer it left running at once.
        self.proc = subprocess.Popen([sys.executable, str(script), str(data), broker_url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     start_new_session=True)

    def readline(self, timeout_s=30.0) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        return self.proc.stdout.readline().strip() if ready else ""

    def start(self, mode: str = "go") -> int | None:
        self.proc.stdin.write(mode + "\n")
        self.proc.stdin.flush()
        word, _, pid = self.readline().partition(" ")
        return int(pid) if word == "running" else None

    def end(self, pid: int, sig: int) -> None:
        """Send `sig` to the writer and wait until the zygote has reaped it."""
        os.kill(pid, sig)
        assert self.readline() == "exited", f"writer {pid} did not exit after signal {sig}"

    def close(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def check_consistent(db):
    conn = sqlite3.connect(db)
    try:
        tally = conn.execute("SELECT v FROM tally WHERE k = 'n'").fetchone()[0]
        seq = conn.execute("SELECT value FROM counters WHERE name = 'event_seq'").fetchone()[0]
        events = conn.execute("SELECT payload FROM outbox WHERE topic = 'pager/event' ORDER BY row_id").fetchall()
        audits = conn.execute("SELECT count(*) FROM audit").fetchone()[0]
    finally:
        conn.close()
    import json
    seqs = [json.loads(p)["seq"] for (p,) in events]
    ns = [json.loads(p)["n"] for (p,) in events]
    assert seqs == list(range(1, seq + 1)), "seq repeated or skipped"
    assert ns == seqs and tally == seq == audits, (tally, seq, audits)
    return seq


def test_kill_minus_9_at_random_moments_loses_and_repeats_nothing(tmp_path, mosquitto):
    rng = random.Random(20261129)
    data = tmp_path / "data"
    db = data / "edge.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    last = 0
    writers = Writers(script, data, mosquitto.url)
    try:
        with MqttRecorder(mosquitto.url, "motcua/v1/hn/crash-01/pager/event") as rec:
            for kill in range(KILLS):
                pid = writers.start()
                assert pid, f"writer did not start (kill {kill})"
                # Anywhere in its first 0.1 s: its start, the MQTT connection, the drain of the
                # previous runs' backlog, and dozens of transactions (hundreds on a fast disk).
                time.sleep(rng.uniform(0.0, 0.1))
                writers.end(pid, signal.SIGKILL)
                now = check_consistent(db)
                assert now >= last
                last = now
                assert audit.verify(db).ok
            assert last > KILLS  # the stream really ran between kills
            # One more clean run, making no new event, drains the outbox; every event arrives,
            # seq 1..N with no gap.
            pid = writers.start("drain")
            assert pid
            wait_until(lambda: len({p["seq"] for _, p in rec.matching(lambda t, p: True)}) >= last, 60,
                       "every event delivered")
            writers.end(pid, signal.SIGTERM)
            total = check_consistent(db)
            received = rec.matching(lambda t, p: True)
    finally:
        writers.close()
    by_seq = {}
    for _, p in received:
        assert by_seq.setdefault(p["seq"], p["id"]) == p["id"], "one seq carried two different events"
    assert sorted(by_seq) == list(range(1, total + 1))
