"""Data-driven locker scenarios (like Klipper's .test files): config + faults + actions + expected events.

Each `scenarios/*.toml` runs against the real LockerService on the Kerong pty simulator:

    description = "…"
    [config]                 # overrides of the test config (see lockerkit.config)
    [[step]]                 # do = load | pickup | verify_pin | open | close | force | fault | stuck
    do = "pickup"            #      | offline | online | wait_event | advance | advance_days | expire
                             #      | maintenance | lookup   (advance: `seconds` on the service's clock)
    receipt = "H29-261207-0051"
    error = "expired"        # the step must be refused with this reason (nothing opens)
    expect = { status = "waiting" }   # keys the result must contain
    events = ["loaded", …]   # in order (other events may come between)
    no_events = ["forced_open"]
    pulses = { "2" = 1 }     # exact pulses per compartment; every other compartment: none
    config_error = "…"       # the config must be refused at start (regex), like Klipper's SHOULD_FAIL
"""

import asyncio
import tomllib
from pathlib import Path

import pytest
from .lockerkit import DOOR_S, STAFF_PIN, Clock, config, events, polled, running, service, until

from edge.errors import ConfigError
from edge.locker.config import CompartmentConfig
from edge.locker.flows import LockerRefused
from edge.testing import DEADLINE_S

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.toml"))


async def do_step(svc, clock, step: dict):
    bus = svc.sim.bus
    act = step["do"]
    comp = step.get("compartment")
    where = svc.config.where(comp) if comp else None
    if act == "load":
        return await svc.load(step.get("staff_pin", STAFF_PIN), step["receipt"], step.get("size"),
                              pin=step.get("pin"), deadline_days=step.get("deadline_days"))
    if act == "pickup":
        return await svc.pickup(step["receipt"], {"method": step.get("method", "face"), "ref": "scenario"},
                                actor="kiosk")
    if act == "verify_pin":
        return {"ok": await svc.verify_pin(step["receipt"], step["pin"])}
    if act == "lookup":
        return await svc.lookup(step["receipt"])
    if act == "open":
        return await svc.open_compartment(comp, cmd_id=step.get("id"), reason="scenario")
    if act == "close":
        await svc.wait_door(comp, "open", 3)
        bus.close_door(where.board, where.lock)
        return {"closed": await svc.wait_door(comp, "closed", DOOR_S)}
    if act == "force":
        bus.force_open(where.board, where.lock)
        return {"open": await svc.wait_door(comp, "open", DOOR_S)}
    if act == "fault":
        bus.inject(step["fault"], step.get("count", 1))
    elif act == "stuck":
        bus.door(where.board, where.lock).stuck = step.get("on", True)
    elif act == "offline":
        bus.offline.add(step.get("board", 0))
    elif act == "online":
        bus.offline.discard(step.get("board", 0))
    elif act == "wait_event":
        assert await until(lambda: events(svc.ctx.store, step["type"]), timeout_s=step.get("timeout_s", DEADLINE_S)), \
            f"no {step['type']} event"
    elif act == "advance_days":
        clock.offset += step["days"] * 86400
    elif act == "expire":
        return {"expired": svc.flows.expire_due(step.get("receipt"))}
    elif act == "maintenance":
        return await svc.set_maintenance(comp, step.get("on", True))
    elif act == "advance":  # time passes on the service's clock (a rate limit, an open-detect timer)
        clock.advance(step["seconds"])
    else:
        raise AssertionError(f"unknown scenario step {act!r}")
    return {}


def is_subsequence(wanted, seen):
    it = iter(seen)
    return all(any(w == s for s in it) for w in wanted)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(tmp_path, path):
    spec = tomllib.loads(path.read_text(encoding="utf-8"))
    clock = Clock()
    overrides = dict(spec.get("config", {}))
    if "compartments" in overrides:
        overrides["compartments"] = {k: CompartmentConfig(**v) for k, v in overrides["compartments"].items()}
    svc = service(tmp_path, config(**overrides), clock=clock)
    if "config_error" in spec:  # a config that must be refused before any door is touched
        with pytest.raises(ConfigError, match=spec["config_error"]):
            asyncio.run(svc.start())
        return

    async def body():
        async with running(svc):
            for n, step in enumerate(spec.get("step", []), 1):
                label = f"{path.name} step {n} ({step['do']})"
                if "error" in step:
                    pulses_before = len(svc.sim.bus.pulses)
                    with pytest.raises(LockerRefused) as err:
                        await do_step(svc, clock, step)
                    assert err.value.reason == step["error"], f"{label}: {err.value}"
                    assert len(svc.sim.bus.pulses) == pulses_before, f"{label}: a refused step pulsed"
                    continue
                result = await do_step(svc, clock, step)
                for key, value in step.get("expect", {}).items():
                    assert result.get(key) == value, f"{label}: {key} = {result.get(key)!r}, expected {value!r}"
            await polled(svc)  # what the doors and timers still had to report is in the events
            return svc.sim.bus

    bus = asyncio.run(asyncio.wait_for(body(), 120))  # a hang guard, above the waits inside
    seen = [e["type"] for e in events(svc.ctx.store)]
    assert is_subsequence(spec.get("events", []), seen), f"events {seen}"
    for unwanted in spec.get("no_events", []):
        assert unwanted not in seen, f"unexpected {unwanted} in {seen}"
    if "pulses" in spec:
        want = {int(k): v for k, v in spec["pulses"].items()}
        got = {n: bus.pulses_for(0, svc.config.where(n).lock) for n in svc.config.compartment_ids()}
        assert got == {n: want.get(n, 0) for n in got}, f"pulses {got}"
