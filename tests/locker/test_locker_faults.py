"""Random open/status commands with injected faults: the wrong door never opens, no blind resend.

The invariant is checked after every command against what the simulated boards really did.
The 10,000-command run per protocol uses the in-process transport (about a second each) and runs
in `make test`; a 150-command run goes over a real pty; longer soaks are marked slow.
"""

import asyncio
import random

import pytest
from .lockerkit import config, polled, running, service, until

from edge.errors import DeviceNotReady
from edge.locker.driver import OpenUncertain, SerialLockerDriver
from edge.locker.hardware import RECONNECT_MAX_S
from edge.locker.protocols import PROTOCOLS
from edge.locker.sim import FAULTS, BusSim, PtySim, SimTransport
from edge.testing import FakeClock

BOARDS = {"kerong": [0, 1], "8a": [1, 2], "modbus": [1, 2]}


def check_invariant(bus, start_req, start_pulse, cmd, outcome, retries):
    """What the boards saw during one command must match what was asked."""
    requests = bus.requests[start_req:]
    pulses = bus.pulses[start_pulse:]
    kind, board, lock = cmd
    if kind == "status":
        assert pulses == [], f"a status command pulsed {pulses}"
        if isinstance(outcome, Exception):
            return
        truth = {n: bus.doors[(board, n)].open for n in outcome.locks}
        assert {n: s.open for n, s in outcome.locks.items()} == truth, "status reading differs from the doors"
        return
    # Only the commanded lock is ever pulsed: the wrong door never opens.
    assert all((p.board, p.lock) == (board, lock) for p in pulses), f"wrong door pulsed: {pulses}"
    assert len(pulses) <= 1 + retries
    opens = [i for i, r in enumerate(requests) if r.kind == "open"]
    for first, second in zip(opens, opens[1:]):  # never a blind resend: a status read in between
        assert any(r.kind == "status" for r in requests[first + 1:second]), f"blind resend: {requests}"
    if not isinstance(outcome, Exception) and outcome.door_open:
        assert bus.doors[(board, lock)].open, "reported open but the door is closed"


def soak(name, transport_for, commands, seed, retries=1, sleep=None, clock=None):
    rng = random.Random(seed)
    bus = BusSim(name, boards=BOARDS[name], seed=seed)
    proto = PROTOCOLS[name]()
    driver = SerialLockerDriver(proto, transport=transport_for(bus), reply_timeout_s=0.02, retries=retries,
                                clock=clock or (lambda: 0.0), sleep=sleep or (lambda s: None))
    locks = range(1, proto.locks_per_board + 1)
    counts = {"open": 0, "status": 0, "errors": 0}
    for _ in range(commands):
        if rng.random() < 0.3:
            bus.inject(rng.choice(FAULTS), rng.choice((1, 1, 2)))
        if rng.random() < 0.05:
            bus.offline.symmetric_difference_update({rng.choice(BOARDS[name])})
        if rng.random() < 0.1:
            bus.door(rng.choice(BOARDS[name]), rng.choice(locks)).stuck ^= True
        if rng.random() < 0.05:
            bus.force_open(rng.choice(BOARDS[name]), rng.choice(locks))
        if rng.random() < 0.3:
            bus.close_door(rng.choice(BOARDS[name]), rng.choice(locks))
        board = rng.choice(BOARDS[name] + [BOARDS[name][-1] + 1])  # sometimes a board that is not there
        cmd = ("open", board, rng.choice(locks)) if rng.random() < 0.5 else ("status", board, None)
        start_req, start_pulse = len(bus.requests), len(bus.pulses)
        try:
            outcome = driver.open(board, cmd[2], 300) if cmd[0] == "open" else driver.status(board)
        except (OpenUncertain, DeviceNotReady) as err:
            outcome = err
            counts["errors"] += 1
        counts[cmd[0]] += 1
        check_invariant(bus, start_req, start_pulse, cmd, outcome, retries)
    return counts, bus


SEEDS = {"kerong": 11, "8a": 12, "modbus": 13}


@pytest.mark.parametrize("name", ["kerong", "8a", "modbus"])
def test_10000_random_commands_with_faults(name):
    # In-process transport: about a second per protocol, so the full 10,000 run in `make test`.
    counts, bus = soak(name, SimTransport, 10_000, seed=SEEDS[name])
    assert counts["open"] + counts["status"] == 10_000
    assert counts["errors"] > 100 and len(bus.pulses) > 1000  # the faults did bite, doors did open


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("name", ["kerong", "8a", "modbus"])
def test_random_commands_soak(name, seed):
    soak(name, SimTransport, 50_000, seed=seed, retries=seed % 3)


def test_random_commands_over_a_real_pty(tmp_path):
    import serial

    ptys = []

    def over_pty(bus):
        pty = PtySim(bus, link=tmp_path / "tty").start()
        ptys.append(pty)
        # Read in step with the boards (PacedPort): a board thread scheduled late on a loaded machine
        # is no lost reply, and no pulse lands after its command; a reply never sent reads at once.
        return pty.paced(serial.serial_for_url(pty.path, baudrate=19200, timeout=0.05), silence_at_once=True)

    clock = FakeClock(0.0)
    try:
        counts, bus = soak("kerong", over_pty, 150, seed=3, clock=clock, sleep=clock.sleep)
    finally:
        for p in ptys:
            p.stop()
    assert counts["open"] > 40
    # The bytes over the pty and pyserial do what the in-process transport does, command for command.
    clock = FakeClock(0.0)
    same_counts, same_bus = soak("kerong", SimTransport, 150, seed=3, clock=clock, sleep=clock.sleep)
    def doors(b):
        return [(p.board, p.lock) for p in b.pulses]

    assert (counts, bus.requests, doors(bus)) == (same_counts, same_bus.requests, doors(same_bus))


def test_service_survives_unplug_and_replug(tmp_path):
    bus = BusSim("kerong", boards=[0])
    pty = PtySim(bus, link=tmp_path / "ttyUSB-locker").start()
    svc = service(tmp_path, config(port=pty.path, offline_after=2))

    async def body():
        async with running(svc):
            # A plain port on the pty, as on a device: on a loaded machine the boot's status read may
            # time out (board_offline at boot, cleared by the next poll that gets its answer).
            assert await until(lambda: svc.health() == "ok")
            pty.unplug()
            assert await until(lambda: svc.health() == "down")
            with pytest.raises(DeviceNotReady):
                await svc.open_compartment(1)
            assert bus.pulses == []
            pty.replug()  # a new /dev/pts behind the same name: the service reconnects by itself
            # once its backoff has run out on its clock; the longer the machine took to get here,
            # the longer that backoff grew (up to RECONNECT_MAX_S): move the clock past it.
            svc.clock.advance(RECONNECT_MAX_S)
            assert await until(lambda: svc.health() == "ok")
            svc.clock.advance(0.6)  # past the rate limit: the failed open still counts for it
            await svc.open_compartment(1)
            assert [(p.board, p.lock) for p in bus.pulses] == [(0, 1)]

    try:
        asyncio.run(asyncio.wait_for(body(), 120))  # a hang guard, above the waits inside
    finally:
        pty.stop()


def test_service_random_operations_every_pulse_has_a_durable_intent(tmp_path):
    """Random opens (some with repeated ids), door moves and bus faults through the service:
    every pulse the boards saw belongs to an open intent written before it, for that compartment."""
    from edge.locker.flows import LockerRefused

    svc = service(tmp_path, config(rate_limit_s=0.5, retries=1))
    rng = random.Random(5)

    async def body():
        async with running(svc):
            b = svc.sim.bus
            ids = []
            for _ in range(120):
                roll = rng.random()
                comp = rng.randint(1, 6)
                if roll < 0.2:
                    b.inject(rng.choice(FAULTS))
                elif roll < 0.3:
                    b.force_open(0, comp)
                elif roll < 0.45:
                    b.close_door(0, comp)
                elif roll < 0.5:
                    b.door(0, comp).stuck ^= True
                else:
                    cmd_id = rng.choice(ids) if ids and rng.random() < 0.2 else f"cmd-{len(ids)}"
                    ids.append(cmd_id)
                    try:
                        await svc.open_compartment(comp, cmd_id=cmd_id)
                    except (LockerRefused, DeviceNotReady):
                        pass
                # Time passes between operations on the service's clock (rate limits, open-detect and
                # left-open timers, coil windows); the poll loop reads the doors in between as it runs.
                svc.clock.advance(rng.choice((0, 0.01, 0.05)))
                await asyncio.sleep(0)  # let the other tasks run
            await polled(svc)  # the doors and timers have reported the last operations
            return b

    b = asyncio.run(asyncio.wait_for(body(), 90))
    intents = svc.ctx.store.query("SELECT id, compartment, state, created FROM locker_opens")
    by_comp = {}
    for row in intents:
        by_comp.setdefault(row["compartment"], []).append(row)
    assert len({r["id"] for r in intents}) == len(intents)
    for comp in range(1, 7):
        pulses = b.pulses_for(0, comp)
        sent = [r for r in by_comp.get(comp, []) if r["state"] != "failed"]
        assert pulses <= 2 * len(sent), f"compartment {comp}: {pulses} pulses for {len(sent)} intents"
        assert pulses >= len([r for r in sent if r["state"] in ("opened", "not_detected")])
    assert len(b.pulses) > 10
