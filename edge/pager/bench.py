"""Pager: button press → last page byte on the pty (p50/p99) beside a bare serial write; queue ops/s.

The press is a MockFactory pin edge on a counter's `next` key; it runs the real path (gpiozero
callback → service loop → queue engine transaction on a real store → transmit worker → driver
→ pty) until the simulator has read the last byte of the JTECH frame. The baseline writes the
same frame with pyserial in the same run. Queue throughput replays a 10,000-ticket day on an
injected clock (issue, call next closing the previous ticket) against a store on disk.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--presses", type=int, default=1000, help="button presses to time (default %(default)s)")
    parser.add_argument("--tickets", type=int, default=10000, help="tickets in the replayed day (default %(default)s)")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _summary(values_s: list[float]) -> dict:
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50_ms": round(_pct(ms, 0.5), 3), "p99_ms": round(_pct(ms, 0.99), 3),
            "mean_ms": round(statistics.fmean(ms), 3), "max_ms": round(max(ms), 3)}


async def _press_latency(workdir: Path, presses: int) -> list[float]:
    from gpiozero.pins.mock import MockFactory

    from edge.pager.config import CounterDef, PagerConfig, PanelDef, ServiceDef
    from edge.pager.service import PagerService
    from edge.service import ServiceContext
    from edge.store import Store

    config = PagerConfig(driver="jtech", port="sim", system_id=10, double_press_s=0, bounce_s=0,
                         services={"a": ServiceDef(prefix="A")},
                         counters={"1": CounterDef(services=["a"], panel=PanelDef(next_pin=5))})
    store = Store(workdir / "press.db")
    factory = MockFactory()
    service = PagerService(ServiceContext(name="pager", site="bench", device="bench", store=store, config=config,
                                          data_dir=workdir, pin_factory=factory))
    await service.start()
    runner = asyncio.create_task(service.run())
    pin = factory.pin(5)
    latencies = []
    try:
        for _ in range(40):
            await service.issue("a")
        for i in range(presses):
            await service.issue("a")
            before = len(service.sim.vibrated)
            start = time.perf_counter()
            pin.drive_low()  # the gpiozero callback runs here, in this thread, like the edge thread on a Pi
            # Wait without spinning: a busy loop here would hold the GIL against the threads measured.
            if not await asyncio.to_thread(service.sim.wait_for, before + 1, 5.0):
                raise RuntimeError(f"press {i}: no page reached the transmitter within 5 s")
            latencies.append(service.sim.last_byte_at - start)
            pin.drive_high()
            if i % 100 == 0:
                print(f"bench pager: press {i}/{presses}", file=sys.stderr)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await service.stop()
        store.close()
    return latencies


def _bare_write(workdir: Path, count: int) -> list[float]:
    from edge.pager.driver import make_transmitter, open_transport
    from edge.pager.sim import TransmitterSim

    sim = TransmitterSim("jtech", link_dir=workdir, system=10)
    port = open_transport(sim.start(), baud=19200)
    frame = make_transmitter("jtech", system=10).page_frame(7)
    times = []
    try:
        for _ in range(count):
            before = len(sim.vibrated)
            start = time.perf_counter()
            port.write(frame)
            port.flush()
            if not sim.wait_for(before + 1, 5.0):
                raise RuntimeError("the simulator did not receive the frame within 5 s")
            times.append(sim.last_byte_at - start)
    finally:
        port.close()
        sim.stop()
    return times


def _queue_ops(workdir: Path, tickets: int) -> dict:
    from edge.pager.config import CounterDef, PagerConfig, ServiceDef
    from edge.pager.queue import QueueEngine
    from edge.store import Store

    clock = [1772413200.0]
    counters = 20
    config = PagerConfig(double_press_s=0, services={s: ServiceDef(prefix=s.upper()) for s in "abcd"},
                         counters={str(i): CounterDef(services=["abcd"[i % 4], "abcd"[(i + 1) % 4]])
                                   for i in range(counters)})
    store = Store(workdir / "queue.db", clock=lambda: clock[0])
    engine = QueueEngine(store, config, clock=lambda: clock[0])
    ops = {"issue": 0, "call_next": 0}
    start = time.perf_counter()
    for i in range(tickets):
        clock[0] += 3.6  # 10,000 tickets over 10 hours
        engine.issue("abcd"[i % 4])
        ops["issue"] += 1
        if i >= 40:  # keep ~40 waiting: call next at one counter per new ticket
            engine.call_next(str(i % counters))
            ops["call_next"] += 1
        if i % 2000 == 0:
            print(f"bench pager: ticket {i}/{tickets}", file=sys.stderr)
    elapsed = time.perf_counter() - start
    store.close()
    total = sum(ops.values())
    return {"tickets": tickets, "ops": total, "seconds": round(elapsed, 2), "ops_per_s": round(total / elapsed, 1)}


def main(args) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-pager-") as tmp:
        workdir = Path(tmp)
        print(f"bench pager: {args.presses} presses through the service", file=sys.stderr)
        press = _summary(asyncio.run(_press_latency(workdir, args.presses)))
        print("bench pager: bare serial writes", file=sys.stderr)
        bare = _summary(_bare_write(workdir, args.presses))
        print(f"bench pager: queue day of {args.tickets} tickets", file=sys.stderr)
        queue = _queue_ops(workdir, args.tickets)
    result = {"press_to_last_byte": press, "bare_serial_write": bare, "queue": queue, "target_p99_ms": 20.0}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'measure':<34}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for label, row in (("button press -> last frame byte", press), ("bare serial write (baseline)", bare)):
        print(f"{label:<34}{row['n']:>7}{row['p50_ms']:>10.3f}{row['p99_ms']:>10.3f}{row['max_ms']:>10.3f}")
    print(f"target: p99 <= 20 ms -> {'met' if press['p99_ms'] <= 20 else 'NOT met'}")
    print(f"queue: {queue['ops']} ops ({queue['tickets']} tickets) in {queue['seconds']} s = {queue['ops_per_s']} ops/s")
    return 0
