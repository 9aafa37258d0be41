"""Outbox drain rate to a local mosquitto, idle supervisor footprint, `edge --help` time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGETS = {"drain_events_per_s": 3000, "idle_rss_mb": 60, "idle_cpu_percent": 1.0, "help_s": 0.3}


def add_arguments(parser) -> None:
    parser.add_argument("--events", type=int, default=10_000, help="events queued before the drain (default %(default)s)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="how long to watch the idle supervisor")
    parser.add_argument("--settle-seconds", type=float, default=3.0,
                        help="wait after starting the idle supervisor before watching it (default %(default)s)")


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bench_drain(broker_url: str, events: int, workdir: Path) -> dict:
    """Queue `events` events while disconnected, then time the drain until every PUBACK."""
    from edge.config import BrokerConfig
    from edge.mqtt import Reporter
    from edge.store import Store

    store = Store(workdir / "drain.db")
    with store.transaction() as tx:
        for i in range(events):
            tx.emit("bench", "tick", n=i)
    reporter = Reporter(BrokerConfig(url=broker_url), store, site="bench", device="drain", version="bench")
    started = time.perf_counter()
    reporter.start()
    while store.pending_count():
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    reporter.stop()
    store.close()
    return {"events": events, "seconds": elapsed, "events_per_s": events / elapsed}


def bench_raw_paho(broker_url: str, events: int) -> dict:
    """Baseline: the same number of QoS 1 publishes with paho alone (no store)."""
    import paho.mqtt.client as mqtt

    from edge.mqtt import parse_broker_url

    address = parse_broker_url(broker_url)
    acked = threading.Semaphore(0)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-raw")
    client.max_inflight_messages_set(200)
    client.on_publish = lambda *a: acked.release()
    client.connect(address.host, address.port)
    client.loop_start()
    payload = json.dumps({"id": "x" * 32, "seq": 1, "ts": time.time(), "type": "tick", "n": 1})
    started = time.perf_counter()
    for _ in range(events):
        client.publish("motcua/v1/bench/raw/bench/event", payload, qos=1)
    for _ in range(events):
        acked.acquire(timeout=30)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return {"events": events, "seconds": elapsed, "events_per_s": events / elapsed}


def bench_idle(broker_url: str, seconds: float, workdir: Path, settle_s: float = 3.0) -> dict:
    """Run `edge run` with no service; measure RSS and CPU over `seconds` after `settle_s`."""
    config = workdir / "idle.toml"
    config.write_text(f'site = "bench"\ndevice = "idle"\nrole = "desk"\ndata_dir = "{workdir / "idle"}"\n'
                      f'[broker]\nurl = "{broker_url}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(settle_s)  # let imports and the first connection settle
        ticks = os.sysconf("SC_CLK_TCK")
        cpu0, t0 = _cpu_ticks(proc.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = _cpu_ticks(proc.pid), time.monotonic()
        rss_kb = _rss_kb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(60)  # a clean stop flushes and says offline: seconds on a busy machine
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {"rss_mb": rss_kb / 1024, "cpu_percent": 100.0 * (cpu1 - cpu0) / ticks / (t1 - t0)}


def bench_help() -> dict:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "edge", "--help"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    bare = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - started)
    return {"help_s": sorted(times)[2], "bare_python_s": sorted(bare)[2]}


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main(args) -> int:
    from edge.localbroker import MosquittoBroker

    with tempfile.TemporaryDirectory(prefix="edge-bench-mqtt-") as tmp, MosquittoBroker() as broker:
        workdir = Path(tmp)
        _progress(f"bench mqtt: broker {broker.url}; draining {args.events} events…")
        drain = bench_drain(broker.url, args.events, workdir)
        _progress("bench mqtt: baseline: raw paho publishes…")
        raw = bench_raw_paho(broker.url, args.events)
        _progress(f"bench mqtt: idle supervisor for {args.idle_seconds:g} s…")
        idle = bench_idle(broker.url, args.idle_seconds, workdir, args.settle_seconds)
        _progress("bench mqtt: edge --help…")
        help_ = bench_help()
    result = {"drain": drain, "raw_paho": raw, "idle": idle, "help": help_, "targets": TARGETS}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rows = [
        ("outbox drain (events/s)", f"{drain['events_per_s']:,.0f}", f"raw paho {raw['events_per_s']:,.0f}", f">= {TARGETS['drain_events_per_s']:,}"),
        ("idle supervisor RSS (MB)", f"{idle['rss_mb']:.1f}", "", f"<= {TARGETS['idle_rss_mb']}"),
        ("idle supervisor CPU (%)", f"{idle['cpu_percent']:.2f}", "", f"<= {TARGETS['idle_cpu_percent']}"),
        ("edge --help (s)", f"{help_['help_s']:.3f}", f"bare python {help_['bare_python_s']:.3f}", f"<= {TARGETS['help_s']}"),
    ]
    print(f"{'measure':<28}{'edge':>12}  {'baseline (same run)':<26}{'target'}")
    for name, value, base, target in rows:
        print(f"{name:<28}{value:>12}  {base:<26}{target}")
    return 0
