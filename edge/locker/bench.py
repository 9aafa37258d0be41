"""Locker latency: command to first reply byte, status round trip, full open-and-confirm, vs a bare pty.

Everything runs against the pty simulators in this process, beside a baseline measured in the
same run: a bare pty round trip (5 bytes written with pyserial, echoed by a thread on the master
side). The full cycle goes through LockerService: intent written to the store (fsync), pulse,
door confirmed open from the board's reply or the next status read.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import statistics
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--driver", choices=("kerong", "8a", "modbus"), default="kerong")
    parser.add_argument("--rounds", type=int, default=200, help="driver-level repetitions (default %(default)s)")
    parser.add_argument("--cycles", type=int, default=40, help="service open-and-confirm cycles (default %(default)s)")


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _summary(samples_s: list[float]) -> dict:
    ms = sorted(s * 1000 for s in samples_s)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 3), "p95_ms": round(p95, 3),
            "max_ms": round(ms[-1], 3)}


class _FirstByteClock:
    """Wraps a pyserial port and notes when the first byte of a reply arrives."""

    def __init__(self, port):
        self.port, self.first = port, None

    def __getattr__(self, name):
        return getattr(self.port, name)

    def __setattr__(self, name, value):
        if name in ("port", "first"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.port, name, value)

    def read(self, size=1):
        data = self.port.read(size)
        if data and self.first is None:
            self.first = time.perf_counter()
        return data


def bench_bare_pty(rounds: int) -> dict:
    """Baseline: pyserial write of 5 bytes on a pty, echoed by a thread, until the first byte is back."""
    from edge.hw.serial import open_serial  # the one opener, as the service opens its port

    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    stop = threading.Event()

    def echo():
        while not stop.is_set():
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                os.write(master, os.read(master, 64))

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    port = open_serial(os.ttyname(slave), baud=19200, timeout_s=1, what="bench pty")
    samples = []
    try:
        for _ in range(rounds):
            port.reset_input_buffer()
            t0 = time.perf_counter()
            port.write(b"\x02\x00\x31\x03\x36")
            port.read(1)
            samples.append(time.perf_counter() - t0)
            port.read(4)
    finally:
        stop.set()
        thread.join()
        port.close()
        os.close(master)
        os.close(slave)
    return _summary(samples)


def bench_driver(driver_name: str, rounds: int) -> tuple[dict, dict]:
    """Driver open to first reply byte, and a full status round trip, against the pty simulator."""
    from edge.hw.serial import open_serial

    from edge.locker.driver import SerialLockerDriver
    from edge.locker.protocols import PROTOCOLS
    from edge.locker.sim import BusSim, PtySim

    protocol = PROTOCOLS[driver_name]()
    board = protocol.board_range[0]
    sim = PtySim(BusSim(driver_name, boards=[board], auto_close_s=0.05)).start()
    port = _FirstByteClock(open_serial(sim.path, baud=protocol.baud, timeout_s=1, what="simulator pty"))
    driver = SerialLockerDriver(protocol, transport=port, reply_timeout_s=1.0, sleep=lambda s: None)
    first, status = [], []
    try:
        for i in range(rounds):
            lock = 1 + i % protocol.locks_per_board
            driver._coil_busy_until = 0.0  # the bench measures the bus, not the coil spacing
            port.first = None
            t0 = time.perf_counter()
            driver.open(board, lock, 200)
            first.append(port.first - t0)
            t0 = time.perf_counter()
            driver.status(board)
            status.append(time.perf_counter() - t0)
    finally:
        driver.close()
        sim.stop()
    return _summary(first), _summary(status)


def bench_cycle(driver_name: str, cycles: int) -> dict:
    """LockerService: open (intent in the store, pulse, event) until the door is confirmed open."""
    from edge.locker.config import CompartmentConfig, LockerConfig, SimConfig
    from edge.locker.protocols import PROTOCOLS
    from edge.locker.service import LockerService
    from edge.service import ServiceContext
    from edge.store import Store

    protocol = PROTOCOLS[driver_name]
    board = protocol.board_range[0]
    n = protocol.locks_per_board
    comps = {str(i): CompartmentConfig(board=board, lock=i) for i in range(1, n + 1)}
    # No auto-close: the bench closes each door once the service has seen it open. A door closing
    # 0.1 s after the pulse could close before a late poll (a busy machine) read it open: "not
    # confirmed open", a failed bench instead of a slow figure.
    config = LockerConfig(driver=driver_name, port="sim", rate_limit_s=0.5, poll_interval_s=0.05, pulse_ms=100,
                          compartments=comps, sim=SimConfig(auto_close_s=None))
    samples = []

    async def run(workdir: Path):
        store = Store(workdir / "bench.db")
        svc = LockerService(ServiceContext(name="locker", site="bench", device="bench", store=store,
                                           config=config, data_dir=workdir))
        await svc.start()
        task = asyncio.create_task(svc.run())
        try:
            for i in range(cycles):
                c = 1 + i % n
                await svc.wait_door(c, "closed", 2.0)
                # Not timed: the previous pulse's coil window (the hard cap on boards that time
                # their own pulse) must end first, coils never overlap.
                await asyncio.sleep(svc.driver.coil_wait_s() + 0.01)
                t0 = time.perf_counter()
                await svc.open_compartment(c, reason="bench", actor="bench")
                if not await svc.wait_door(c, "open", 5.0):
                    raise RuntimeError(f"compartment {c} not confirmed open")
                samples.append(time.perf_counter() - t0)
                svc.sim.bus.close_door(board, c)  # the simulated citizen, once the door was seen open
        finally:
            task.cancel()
            await svc.stop()
            store.close()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp)))
    return _summary(samples)


def main(args) -> int:
    import logging
    logging.getLogger("edge.locker").setLevel(logging.WARNING)
    _progress(f"locker bench: bare pty round trip x{args.rounds}")
    bare = bench_bare_pty(args.rounds)
    _progress(f"locker bench: {args.driver} driver open + status x{args.rounds}")
    first, status = bench_driver(args.driver, args.rounds)
    _progress(f"locker bench: service open-and-confirm x{args.cycles}")
    cycle = bench_cycle(args.driver, args.cycles)
    results = {"driver": args.driver, "bare_pty_round_trip": bare, "open_to_first_byte": first,
               "status_round_trip": status, "open_and_confirm": cycle}
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"locker bench ({args.driver} simulator on a pty)")
    print(f"{'measure':<42}{'n':>6}{'median ms':>12}{'p95 ms':>10}{'max ms':>10}")
    rows = [("bare pty write -> first byte (baseline)", bare), ("driver open -> first reply byte", first),
            ("driver status round trip", status), ("service open -> door confirmed", cycle)]
    for label, r in rows:
        print(f"{label:<42}{r['n']:>6}{r['median_ms']:>12.3f}{r['p95_ms']:>10.3f}{r['max_ms']:>10.3f}")
    return 0
