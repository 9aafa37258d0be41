"""Safety review: what the locker reports when the port dies part-way through an open."""

from __future__ import annotations

import pytest

from edge.locker.driver import OpenUncertain, SerialLockerDriver
from edge.locker.protocols import PROTOCOLS
from edge.locker.sim import BusSim, SimTransport


class DiesAfterWrites(SimTransport):
    """An adapter that is unplugged after `writes` frames went out."""

    def __init__(self, bus, writes):
        super().__init__(bus)
        self.writes_left = writes

    def write(self, data):
        if self.writes_left == 0:
            self.is_open = False
        self.writes_left -= 1
        return super().write(data)


def test_port_gone_before_a_retry_is_reported_uncertain_not_as_nothing_sent():
    bus = BusSim("kerong", boards=[0])
    bus.door(0, 6).stuck = True  # the first pulse does not move the bolt: a retry will be wanted
    bus.inject("no_reply")  # the first open's reply is lost
    driver = SerialLockerDriver(PROTOCOLS["kerong"](), transport=DiesAfterWrites(bus, 2), retries=1,
                                sleep=lambda s: None)
    # open (lands, reply lost), status (door closed), then the port dies before the retry.
    with pytest.raises(OpenUncertain, match="open sent"):
        driver.open(0, 6)
    assert bus.pulses_for(0, 6) == 1


def test_a_pickup_cancelled_mid_pulse_still_records_the_pulse_and_a_stuck_door_returns_to_waiting(tmp_path):
    """The kiosk may be stopped while its pickup waits for the bus: the bolt moved regardless."""
    import asyncio
    import threading

    from .lockerkit import DOOR_S, STAFF_PIN, bus, events, running, service, until

    svc = service(tmp_path)
    in_open, release = threading.Event(), threading.Event()

    async def body():
        async with running(svc):
            comp = (await svc.load(STAFF_PIN, "H29-261207-0007", "M"))["compartment"]
            bus(svc).close_door(0, comp)
            assert await svc.wait_door(comp, "closed", DOOR_S)  # read closed before time moves on
            svc.clock.advance(0.55)  # past the rate limit, on the service's clock
            bus(svc).door(0, comp).stuck = True
            real_open = svc.driver.open

            def slow_open(*a, **kw):  # the pulse goes out, the reply takes its time
                result = real_open(*a, **kw)
                in_open.set()
                release.wait(5)
                return result

            svc.driver.open = slow_open
            pickup = asyncio.create_task(svc.pickup("H29-261207-0007", {"method": "face", "ref": "s"}, actor="kiosk"))
            await asyncio.to_thread(in_open.wait, 5)
            pickup.cancel()  # the kiosk session is torn down while the driver is mid-open
            release.set()
            with pytest.raises(asyncio.CancelledError):
                await pickup
            svc.driver.open = real_open
            assert bus(svc).pulses_for(0, comp) == 2  # the load's and the pickup's
            # The pulse is on record, so the open-detect timer runs: the stuck door hands the result back.
            svc.clock.advance(svc.config.open_detect_s)
            await until(lambda: events(svc.ctx.store, "open_not_detected"))
            assert [e["compartment"] for e in events(svc.ctx.store, "open_not_detected")] == [comp]
            assert (await svc.lookup("H29-261207-0007"))["status"] == "waiting"
            assert not svc.ctx.store.query("SELECT 1 FROM locker_opens WHERE state = 'started'")

    asyncio.run(body())


@pytest.mark.parametrize("key", ["07", "+7", "\uff17"])
def test_a_compartment_key_that_is_not_a_plain_number_is_a_config_error_naming_it(key):
    """"07" and "7" would both be compartment 7 (or "07" one nobody can address): refuse at load."""
    from edge.config import from_dict
    from edge.errors import ConfigError

    with pytest.raises(ConfigError, match="compartment key"):
        from_dict({"site": "hn", "device": "kiosk-01", "role": "kiosk",
                   "locker": {"compartments": {key: {"board": 0, "lock": 1}, "8": {"board": 0, "lock": 2}}}})


def test_a_kerong_open_reply_addressed_to_another_lock_is_not_taken_as_confirmation(rig):
    """Kerong answers an unlock with the status frame at the unlocked lock's address (design §5)."""
    r = rig("kerong")
    real_status_reply = r.bus.protocol.status_reply
    r.bus.protocol.status_reply = lambda board, doors, occ, lock=1: real_status_reply(board, doors, occ, lock=lock % 16 + 1)
    result = r.driver.open(0, 4)
    assert r.kinds() == ["open", "status"]  # re-read, not trusted, not resent
    assert "about lock 5, expected lock 4" in result.note and result.frames_sent == 1
    assert r.bus.pulses_for(0, 4) == 1 and r.bus.pulses_for(0, 5) == 0


def waiting_for_bus(svc) -> int:
    """Tasks queued for the service's bus lock (the poll loop, an open)."""
    return len(svc._hw._waiters or ())


def test_a_pickup_whose_result_moved_to_another_compartment_while_it_waited_opens_no_door(tmp_path):
    """The early check and the intent's re-check must be about the same assignment, or the door is stale."""
    import asyncio

    from edge.locker.flows import LockerRefused
    from .lockerkit import DOOR_S, STAFF_PIN, bus, running, service, until

    svc = service(tmp_path)

    async def body():
        async with running(svc):
            comp = (await svc.load(STAFF_PIN, "H29-261207-0001", "M"))["compartment"]
            bus(svc).close_door(0, comp)
            assert await svc.wait_door(comp, "closed", DOOR_S)  # read closed before time moves on
            svc.clock.advance(0.55)  # past the rate limit, on the service's clock
            await svc._hw.acquire()  # the bus is busy (another open): the pickup waits for it
            # The poll loop queues for the bus too: first it, then the pickup, so that the pickup's
            # place in the queue is the one awaited (not the poll loop's).
            await until(lambda: waiting_for_bus(svc) == 1, what="the poll loop waiting for the bus")
            pickup = asyncio.create_task(svc.pickup("H29-261207-0001", {"method": "face", "ref": "s"}, actor="kiosk"))
            await until(lambda: waiting_for_bus(svc) == 2, what="the pickup waiting for the bus")
            # Meanwhile staff took the result back and loaded it again into another compartment.
            with svc.ctx.store.transaction() as tx:
                tx.execute("UPDATE locker_assignments SET status = 'reclaimed' WHERE receipt = 'H29-261207-0001'")
                svc.flows.create_assignment(tx, receipt="H29-261207-0001", compartment=5, size="M", pin_hash=None,
                                            deadline_days=None, staff="an", face_enrolled=False)
            svc._hw.release()
            with pytest.raises(LockerRefused, match="moved while waiting"):  # refused by the re-check
                await pickup
            assert bus(svc).pulses_for(0, comp) == 1  # only the load's pulse: the old door stays shut
            assert bus(svc).pulses_for(0, 5) == 0
            assert (await svc.lookup("H29-261207-0001"))["status"] == "waiting"

    asyncio.run(body())


def test_a_reclaim_of_a_result_collected_while_it_waited_opens_no_door(tmp_path):
    """Staff reclaim A; before the bus is free A is collected and B loaded into that compartment."""
    import asyncio

    from edge.locker.flows import LockerRefused
    from .lockerkit import DOOR_S, STAFF_PIN, bus, running, service, until

    svc = service(tmp_path)

    async def body():
        async with running(svc):
            comp = (await svc.load(STAFF_PIN, "H29-261207-0010", "M"))["compartment"]
            bus(svc).close_door(0, comp)
            assert await svc.wait_door(comp, "closed", DOOR_S)  # read closed before time moves on
            svc.clock.advance(0.55)  # past the rate limit, on the service's clock
            await svc._hw.acquire()
            # The poll loop queues for the bus too (and the reclaim checks the staff PIN in a thread
            # first): the poll loop's place in the queue must not pass for the reclaim's.
            await until(lambda: waiting_for_bus(svc) == 1, what="the poll loop waiting for the bus")
            reclaim = asyncio.create_task(svc.reclaim(STAFF_PIN, "H29-261207-0010"))
            await until(lambda: waiting_for_bus(svc) == 2, what="the reclaim waiting for the bus")  # it has read A
            with svc.ctx.store.transaction() as tx:
                tx.execute("UPDATE locker_assignments SET status = 'collected' WHERE receipt = 'H29-261207-0010'")
                svc.flows.create_assignment(tx, receipt="H29-261207-0011", compartment=comp, size="M", pin_hash=None,
                                            deadline_days=None, staff="an", face_enrolled=False)
            svc._hw.release()
            with pytest.raises(LockerRefused, match="to reclaim any more"):  # refused by the re-check
                await reclaim
            assert bus(svc).pulses_for(0, comp) == 1  # only the load's pulse: B's door stays shut
            assert (await svc.lookup("H29-261207-0010"))["status"] == "collected"
            assert (await svc.lookup("H29-261207-0011"))["status"] == "waiting"

    asyncio.run(body())


def test_a_verified_pin_is_used_up_by_the_pickup_it_allowed(tmp_path):
    """A door that stays shut hands the result back; the PIN must then be entered again."""
    import asyncio

    from edge.locker.flows import LockerRefused
    from .lockerkit import DOOR_S, STAFF_PIN, bus, events, running, service, until

    svc = service(tmp_path)

    async def body():
        async with running(svc):
            comp = (await svc.load(STAFF_PIN, "H29-261207-0008", "M", pin="4321"))["compartment"]
            bus(svc).close_door(0, comp)
            assert await svc.wait_door(comp, "closed", DOOR_S)  # read closed before time moves on
            svc.clock.advance(0.55)  # past the rate limit, on the service's clock
            bus(svc).door(0, comp).stuck = True
            assert await svc.verify_pin("H29-261207-0008", "4321")
            await svc.pickup("H29-261207-0008", {"method": "pin", "ref": "s1"}, actor="kiosk")
            svc.clock.advance(svc.config.open_detect_s)  # the door had its time to open
            await until(lambda: events(svc.ctx.store, "open_not_detected"))
            assert (await svc.lookup("H29-261207-0008"))["status"] == "waiting"
            with pytest.raises(LockerRefused, match="not_verified|PIN"):
                await svc.pickup("H29-261207-0008", {"method": "pin", "ref": "s2"}, actor="kiosk")

    asyncio.run(body())


@pytest.mark.parametrize("driver, window_s", [("kerong", 1.0), ("8a", 1.0), ("modbus", 0.3)])
def test_the_next_coil_waits_out_a_pulse_the_board_times_itself(driver, window_s):
    """Kerong and 8A choose their own pulse length: the next open waits the hard cap, not our
    configured 300 ms; Modbus is told the length, so its own (rounded to 100 ms) is enough."""
    from edge.locker.driver import COIL_RELEASE_S

    now = [0.0]
    slept = []
    bus = BusSim(driver, boards=[0] if driver == "kerong" else [1])
    board = 0 if driver == "kerong" else 1
    drv = SerialLockerDriver(PROTOCOLS[driver](), transport=SimTransport(bus), clock=lambda: now[0],
                             sleep=lambda s: slept.append(s))
    drv.open(board, 1, 250)
    drv.open(board, 2, 250)
    assert slept and slept[0] == pytest.approx(window_s + COIL_RELEASE_S)
