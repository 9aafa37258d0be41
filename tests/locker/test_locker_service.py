"""LockerService on pty simulators with a real store: boot, flows, safety rules, alarms."""

import asyncio
import json

import pytest
from .lockerkit import DOOR_S, STAFF_PIN, Clock, bus, config, events, running, service, states, until

from edge.locker.flows import LockerRefused
from edge.testing import FakeVision


def run(coro, timeout_s: float = 120.0):
    """Run a test body with a deadline: a hang fails with a timeout instead of stalling the suite
    (above the waits inside, edge.testing.DEADLINE_S; a body normally takes a second or two)."""
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


# -- boot and stop ----------------------------------------------------------------------------------

def test_boot_turns_outputs_off_reads_every_door_and_publishes_a_snapshot(tmp_path):
    svc = service(tmp_path, config("modbus"))

    async def body():
        async with running(svc):
            kinds = [r.kind for r in bus(svc).requests]
            assert kinds[:2] == ["all_off", "status"]  # outputs off before anything else
            snap = states(svc.ctx.store)[0]
            assert snap["doors"] == {str(n): "closed" for n in range(1, 7)}
            assert snap["boards"] == {"1": "online"} and snap["alarms"] == []

    run(body())


def test_stop_turns_outputs_off_first(tmp_path):
    svc = service(tmp_path, config("modbus"))

    async def body():
        async with running(svc):
            sim_bus = bus(svc)
        assert sim_bus.requests[-1].kind == "all_off"

    run(body())


def test_boot_with_a_board_offline_raises_the_alarm(tmp_path):
    cfg = config("kerong")
    svc = service(tmp_path, cfg)

    async def body():
        await svc.start()
        bus(svc).offline.add(0)
        task = asyncio.create_task(svc.run())
        try:
            assert await until(lambda: events(svc.ctx.store, "board_offline"))
            assert svc.health() == "down"
            assert states(svc.ctx.store)[-1]["boards"] == {"0": "offline"}
            bus(svc).offline.clear()
            assert await until(lambda: events(svc.ctx.store, "alarm_cleared"))
            assert svc.health() == "ok"
        finally:
            task.cancel()
            await svc.stop()

    run(body())


# -- loading and pickup -----------------------------------------------------------------------------

def test_load_then_pickup_with_pin(tmp_path):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            loaded = await svc.load(STAFF_PIN, "h29-261207-0201", "M", pin="4321")
            comp = loaded["compartment"]
            assert comp == 2  # the smallest M that is not the accessible one
            assert await svc.wait_door(comp, "open", DOOR_S)
            assert await svc.lookup("H29-261207-0201") == {"status": "waiting", "compartment": comp,
                                                      "face_enrolled": False, "pin_set": True}
            bus(svc).close_door(0, comp)
            assert await svc.wait_door(comp, "closed", DOOR_S)
            svc.clock.advance(0.5)  # past the rate limit, on the service's clock
            assert await svc.verify_pin("h29-261207-0201", "4321")
            assert await svc.pickup("h29-261207-0201", {"method": "pin", "ref": "s1"}, actor="kiosk") == {"compartment": comp}
            assert await svc.wait_door(comp, "open", DOOR_S)
            bus(svc).close_door(0, comp)
            assert await svc.wait_door(comp, "closed", DOOR_S)
            assert (await svc.lookup("h29-261207-0201"))["status"] == "collected"
            types = [e["type"] for e in events(svc.ctx.store)]
            assert types == ["loaded", "pulse_sent", "door_opened", "door_closed",
                             "pulse_sent", "door_opened", "door_closed", "collected"]
            assert svc.view()["compartments"][comp]["state"] == "free"
            assert "H29-261207-0201" not in json.dumps(svc.view())  # no receipt codes on screens
            assert bus(svc).pulses_for(0, comp) == 2

    run(body())


def test_wrong_code_expired_and_collected_open_nothing(tmp_path):
    clock = Clock()
    svc = service(tmp_path, clock=clock)

    async def body():
        async with running(svc):
            with pytest.raises(LockerRefused) as err:
                await svc.pickup("NOPE-1", {"method": "face", "ref": "s"}, actor="kiosk")
            assert err.value.reason == "unknown" and err.value.message_vi
            await svc.load(STAFF_PIN, "H29-261207-0071", "S", deadline_days=1)
            clock.offset = 2 * 86400
            assert (await svc.lookup("H29-261207-0071"))["status"] == "expired"
            with pytest.raises(LockerRefused, match="expired"):
                await svc.pickup("H29-261207-0071", {"method": "face", "ref": "s"}, actor="kiosk")
            assert len(bus(svc).pulses) == 1  # only the loading opened a door
            assert svc.flows.expire_due() == [{"receipt": "H29-261207-0071", "compartment": 1}]
            assert events(svc.ctx.store, "expired")

    run(body())


def test_pin_is_hashed_and_attempts_are_limited(tmp_path):
    svc = service(tmp_path, config(pin_attempts=3))

    async def body():
        async with running(svc):
            await svc.load(STAFF_PIN, "H29-261207-0007", None, pin="5555")
            stored = svc.ctx.store.query("SELECT pin_hash FROM locker_assignments")[0]["pin_hash"]
            assert "5555" not in stored and stored.startswith("pbkdf2_sha256$")
            for wrong in ("1111", "2222", "3333"):
                assert not await svc.verify_pin("H29-261207-0007", wrong)
            assert not await svc.verify_pin("H29-261207-0007", "5555")  # locked now, even with the right PIN
            assert events(svc.ctx.store, "pin_locked")
            with pytest.raises(LockerRefused, match="not_verified"):
                await svc.pickup("H29-261207-0007", {"method": "pin", "ref": "s"}, actor="kiosk")

    run(body())


def test_pickup_by_pin_needs_a_verified_pin_face_claim_opens(tmp_path):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            comp = (await svc.load(STAFF_PIN, "H29-261207-0008", "L", pin="8888"))["compartment"]
            bus(svc).close_door(0, comp)
            assert await svc.wait_door(comp, "closed", DOOR_S)  # read closed before time moves on
            svc.clock.advance(0.55)  # past the rate limit
            with pytest.raises(LockerRefused, match="not_verified"):
                await svc.pickup("H29-261207-0008", {"method": "pin", "ref": "s"}, actor="kiosk")
            with pytest.raises(LockerRefused, match="not_verified"):
                await svc.pickup("H29-261207-0008", {"method": "magic"}, actor="kiosk")
            assert await svc.pickup("H29-261207-0008", {"method": "face", "ref": "sess-1"}, actor="kiosk") == {"compartment": comp}
            with pytest.raises(LockerRefused, match="busy"):  # a second pickup while opening
                await svc.pickup("H29-261207-0008", {"method": "face", "ref": "sess-2"}, actor="kiosk")
            assert bus(svc).pulses_for(0, comp) == 2

    run(body())


def test_wrong_staff_pin_opens_nothing_and_full_locker_is_refused(tmp_path):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            with pytest.raises(LockerRefused, match="staff"):
                await svc.load("0000", "H29-261207-0001", "M")
            await svc.load(STAFF_PIN, "H29-261207-0002", "XL")
            with pytest.raises(LockerRefused, match="full"):
                await svc.load(STAFF_PIN, "H29-261207-0003", "XL")
            with pytest.raises(LockerRefused, match="duplicate"):
                await svc.load(STAFF_PIN, "H29-261207-0002", "S")
            with pytest.raises(LockerRefused, match="size"):
                await svc.load(STAFF_PIN, "H29-261207-0004", "HUGE")
            assert len(bus(svc).pulses) == 1

    run(body())


# -- safety rules -----------------------------------------------------------------------------------

def test_valid_open_pulses_even_if_the_sensor_says_open(tmp_path):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            bus(svc).force_open(0, 4)
            assert await svc.wait_door(4, "open", DOOR_S)
            await svc.open_compartment(4, reason="staff")
            assert bus(svc).pulses_for(0, 4) == 1
            assert events(svc.ctx.store, "pulse_sent")[0]["compartment"] == 4

    run(body())


def test_rate_limit_per_compartment(tmp_path):
    svc = service(tmp_path, config(rate_limit_s=30.0))

    async def body():
        async with running(svc):
            await svc.open_compartment(5)
            with pytest.raises(LockerRefused, match="rate"):
                await svc.open_compartment(5)
            await svc.open_compartment(6)  # another compartment is not held back
            assert bus(svc).pulses_for(0, 5) == 1 and bus(svc).pulses_for(0, 6) == 1

    run(body())


def test_same_command_id_opens_once(tmp_path):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            first = await svc.open_compartment(2, cmd_id="cmd-42")
            svc.clock.advance(0.6)  # past the rate limit: only the id stops a second pulse
            again = await svc.open_compartment(2, cmd_id="cmd-42")
            assert first["state"] == "pulsed" and again["duplicate"]
            assert bus(svc).pulses_for(0, 2) == 1

    run(body())


def test_unknown_compartment_and_maintenance_are_refused(tmp_path):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            with pytest.raises(LockerRefused, match="unknown compartment 99"):
                await svc.open_compartment(99)
            await svc.set_maintenance(3, True)
            with pytest.raises(LockerRefused, match="maintenance"):
                await svc.open_compartment(3)
            assert svc.view()["compartments"][3]["state"] == "maintenance"
            assert bus(svc).pulses == []

    run(body())


# -- alarms ---------------------------------------------------------------------------------------

def test_forced_open_alarm_and_clear(tmp_path):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            bus(svc).force_open(0, 1)
            assert await until(lambda: events(svc.ctx.store, "forced_open"))
            assert states(svc.ctx.store)[-1]["alarms"][0]["alarm"] == "forced_open"
            bus(svc).close_door(0, 1)
            assert await until(lambda: events(svc.ctx.store, "alarm_cleared"))
            assert states(svc.ctx.store)[-1]["alarms"] == []

    run(body())


def test_left_open_alarm(tmp_path):
    svc = service(tmp_path, config(left_open_s=1.0))

    async def body():
        async with running(svc):
            await svc.open_compartment(2)
            assert await svc.wait_door(2, "open", DOOR_S)
            svc.clock.advance(1.0)  # the door stays open past left_open_s
            assert await until(lambda: events(svc.ctx.store, "left_open"))
            assert not events(svc.ctx.store, "forced_open")

    run(body())


def test_open_not_detected_for_a_stuck_door_returns_the_pickup_to_waiting(tmp_path):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            comp = (await svc.load(STAFF_PIN, "H29-261207-0009", "M"))["compartment"]
            bus(svc).close_door(0, comp)
            assert await svc.wait_door(comp, "closed", DOOR_S)  # read closed before time moves on
            svc.clock.advance(0.55)  # past the rate limit
            bus(svc).door(0, comp).stuck = True
            await svc.pickup("H29-261207-0009", {"method": "face", "ref": "s"}, actor="kiosk")
            # The kiosk waits for "closed": the door never opened, so that is not a collection.
            closing = asyncio.create_task(svc.wait_door(comp, "closed", 5))
            svc.clock.advance(svc.config.open_detect_s)  # the door had its time to open
            assert await until(lambda: events(svc.ctx.store, "open_not_detected"))
            svc.clock.advance(5)  # the kiosk's wait runs out
            assert not await closing
            assert (await svc.lookup("H29-261207-0009"))["status"] == "waiting"
            assert await svc.wait_door(comp, "closed", DOOR_S)  # asked again later: it simply is closed

    run(body())


def test_flapping_sensor_raises_sensor_fault(tmp_path):
    svc = service(tmp_path, config(flap_limit=4, flap_window_s=30.0))

    async def body():
        async with running(svc):
            for _ in range(3):
                bus(svc).force_open(0, 6)
                assert await svc.wait_door(6, "open", DOOR_S)
                bus(svc).close_door(0, 6)
                assert await svc.wait_door(6, "closed", DOOR_S)
            assert await until(lambda: events(svc.ctx.store, "sensor_fault"))
            assert svc.health() == "degraded"

    run(body())


# -- staff audit, MQTT commands -------------------------------------------------------------------

def test_audit_opens_one_at_a_time_after_each_door_closes(tmp_path):
    svc = service(tmp_path, config(sim=config().sim.__class__(auto_close_s=0.2)))

    async def body():
        async with running(svc):
            results = await svc.audit_open_all("staff:an", wait_close_s=DOOR_S)  # each door shuts 0.2 s after its pulse
            assert [r["compartment"] for r in results] == [1, 2, 3, 4, 5, 6]
            assert all(r["opened"] and r["closed"] for r in results)
            pulses = bus(svc).pulses
            assert [p.lock for p in pulses] == [1, 2, 3, 4, 5, 6]
            closed = [e for e in events(svc.ctx.store, "door_closed")]
            opened = [e for e in events(svc.ctx.store, "pulse_sent")]
            # staged: each pulse comes after the previous door closed
            for prev_close, next_pulse in zip(closed, opened[1:]):
                assert prev_close["seq"] < next_pulse["seq"]

    run(body())


def test_mqtt_commands(tmp_path):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            assert "open" in svc.signed_commands and "audit_open_all" in svc.signed_commands
            status = await svc.handle_command("status", {})
            assert status["doors"]["1"] == "closed"
            loaded = await svc.handle_command("load", {"receipt": "H29-261207-0081", "size": "M", "deadline_days": None,
                                                       "accessible": False})
            assert loaded == {"compartment": 2}
            assert (await svc.handle_command("expire", {"receipt": "H29-261207-0081"}))["expired"][0]["compartment"] == 2
            assert (await svc.handle_command("maintenance", {"compartment": 4, "on": True}))["maintenance"]
            opened = await svc.handle_command("open", {"compartment": 5, "reason": "test"})
            assert opened["compartment"] == 5

    run(body())


def test_bad_citizen_pin_or_receipt_is_refused_before_any_door_moves(tmp_path):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            for receipt, pin in (("H29-261207-0001", "12"), ("H29-261207-0001", "12ab"), ("bad code!", None), ("", None)):
                with pytest.raises(LockerRefused, match="bad_input"):
                    await svc.load(STAFF_PIN, receipt, "M", pin=pin)
            assert bus(svc).pulses == []
            assert svc.ctx.store.query("SELECT count(*) AS n FROM locker_assignments")[0]["n"] == 0

    run(body())


def test_concurrent_loads_get_different_compartments(tmp_path):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            results = await asyncio.gather(*(svc.load(STAFF_PIN, f"H29-261207-004{i}", "M") for i in range(3)))
            comps = sorted(r["compartment"] for r in results)
            assert comps == [2, 3, 5]  # every M compartment once; the accessible one (3) last
            assert sorted(p.lock for p in bus(svc).pulses) == [2, 3, 5]

    run(body())


def test_vision_peer_learns_waiting_and_templates_go_on_pickup(tmp_path):
    clock = Clock()
    svc = service(tmp_path, clock=clock)
    vision = FakeVision(enrolled={"H29-261207-0021"})
    svc.ctx.peers["vision"] = vision

    async def body():
        async with running(svc):
            comp = (await svc.load(STAFF_PIN, "h29-261207-0021", "M"))["compartment"]
            await svc.load(STAFF_PIN, "H29-261207-0022", "S", deadline_days=1)
            assert (await svc.lookup("H29-261207-0021"))["face_enrolled"] is True
            assert (await svc.lookup("H29-261207-0022"))["face_enrolled"] is False
            bus(svc).close_door(0, comp)
            assert await svc.wait_door(comp, "closed", DOOR_S)
            svc.clock.advance(0.55)  # past the rate limit
            await svc.pickup("H29-261207-0021", {"method": "face", "ref": "s"}, actor="kiosk")
            assert await svc.wait_door(comp, "open", DOOR_S)
            bus(svc).close_door(0, comp)
            assert await svc.wait_door(comp, "closed", DOOR_S)
            clock.offset = 2 * 86400
            await svc.handle_command("expire", {"receipt": None})
            assert await until(lambda: len(vision.told) == 4)
        return vision.told

    calls = run(body())
    assert calls == [("result_waiting", "H29-261207-0021", True), ("result_waiting", "H29-261207-0022", True),
                     ("delete", "H29-261207-0021", "pickup"), ("delete", "H29-261207-0022", "expiry")]


def test_templates_go_when_staff_reclaim_a_result(tmp_path):
    # Kept until the retention period (30 days) before: a face with no result left to collect.
    svc = service(tmp_path)
    vision = FakeVision(enrolled={"H29-261207-0023"})
    svc.ctx.peers["vision"] = vision

    async def body():
        async with running(svc):
            comp = (await svc.load(STAFF_PIN, "H29-261207-0023", "M"))["compartment"]
            bus(svc).close_door(0, comp)
            assert await svc.wait_door(comp, "closed", DOOR_S)
            svc.clock.advance(0.55)            # past the per-compartment rate limit of the load's open
            await svc.reclaim(STAFF_PIN, "H29-261207-0023")
            assert await until(lambda: len(vision.told) == 2)
        return vision.told

    assert run(body()) == [("result_waiting", "H29-261207-0023", True), ("delete", "H29-261207-0023", "reclaim")]


def test_the_staff_code_lockout_survives_a_restart(tmp_path):
    # The wrong codes were counted in memory only: a restart gave a guesser a fresh set of tries.
    clock = Clock()
    svc = service(tmp_path, clock=clock)
    attempts = svc.config.pin_attempts

    async def guess(s, pin):
        with pytest.raises(LockerRefused) as err:
            await s.kiosk_api.staff(pin)
        return str(err.value)

    async def body():
        async with running(svc):
            for _ in range(attempts):
                await guess(svc, "000000")
        restarted = service(tmp_path, store=svc.ctx.store, clock=clock)
        async with running(restarted):
            assert "too many wrong staff codes" in await guess(restarted, STAFF_PIN)   # even the right one
            clock.offset += 301
            assert await restarted.kiosk_api.staff(STAFF_PIN)

    run(body())
