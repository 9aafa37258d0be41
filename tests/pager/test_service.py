"""PagerService end to end: store, pty simulator, MockFactory counter panel, commands, outages."""

import asyncio
import json

import pytest
from gpiozero.pins.mock import MockFactory

from edge.errors import CommandError
from edge.pager.config import CounterDef, PagerConfig, PanelDef, ServiceDef
from edge.pager.service import PagerService
from edge.pager.sim import ANSWER_WAIT_S
from edge.service import ServiceContext, validate_args
from edge.store import Store
from edge.testing import DEADLINE_S, OFFICE_MORNING, FakeClock, office_clock, until

NEXT, RECALL, SKIP, LED = 5, 6, 13, 19


def make_service(tmp_path, clock=None, **overrides):
    """A pager on its pty simulator, on real time from an office morning (`office_clock`); with a
    FakeClock its loops wait on that clock (ServiceContext.sleep)."""
    clock = clock or office_clock()
    settings = dict(
        # ANSWER_WAIT_S: a late ACK from the simulator's thread must not become a retry (a second page)
        driver="waveware", port="sim", system_id=10, ack_timeout_s=ANSWER_WAIT_S, retries=1, long_press_s=0.3,
        bounce_s=0, double_press_s=0,
        services={"a": ServiceDef(prefix="A"), "b": ServiceDef(prefix="B")},
        counters={"1": CounterDef(services=["a", "b"], panel=PanelDef(next_pin=NEXT, recall_pin=RECALL, skip_pin=SKIP,
                                                                      rating_pins=[20, 21, 22, 23, 24],
                                                                      serving_led_pin=LED)),
                  "2": CounterDef(services=["b"])})
    settings.update(overrides)
    store = Store(tmp_path / "edge.db")
    factory = MockFactory()
    ctx = ServiceContext(name="pager", site="s", device="d", store=store, config=PagerConfig(**settings),
                         data_dir=tmp_path, pin_factory=factory, clock=clock,
                         sleep=clock.wait if isinstance(clock, FakeClock) else asyncio.sleep)
    return PagerService(ctx), store, factory


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))  # a hang guard above the 30 s waits inside


def events(store, type):
    return [json.loads(p) for _, t, p, _, _ in store.pending(limit=10000)
            if t == "pager/event" and json.loads(p)["type"] == type]


async def started(service):
    await service.start()
    task = asyncio.create_task(service.run())
    return task


def commander(service):
    """`await command(type, args)`: a command validated against the service's spec, as MQTT sends it."""
    async def command(type, args):
        return await service.handle_command(type, validate_args(service.commands[type], args))
    return command


async def advance_until(clock, predicate, what, step_s=1.0, timeout_s=DEADLINE_S):
    """Move the fake clock on a step at a time until `predicate` holds: what the woken loops set off
    (a reopened port, a frame on the pty) takes a few real milliseconds, so it is polled like `until`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not reached within {timeout_s} s"
        clock.advance(step_s)
        await asyncio.sleep(0.005)


async def finish(service, task):
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await service.stop()


def test_call_next_pages_the_card(tmp_path):
    service, store, _ = make_service(tmp_path)

    async def scenario():
        task = await started(service)
        try:
            ticket = await service.issue("a")
            assert ticket["ticket"] == "A001" and ticket["card"] == 1
            called = await service.call_next("1")
            assert called["card"] == 1
            await until(lambda: service.sim.vibrated == [1])
            await service.recall("1")
            await until(lambda: service.sim.vibrated == [1, 1])
            view = service.view()
            assert view["counters"]["1"]["ticket"] == "A001" and view["transmitter"]["online"]
            assert service.health() == "ok"
            assert (await service.page(42))["card"] == 42
            assert service.sim.vibrated[-1] == 42
        finally:
            await finish(service, task)

    run(scenario())


def test_commands(tmp_path):
    service, store, _ = make_service(tmp_path)
    command = commander(service)

    async def scenario():
        task = await started(service)
        try:
            assert (await command("call_next", {"counter": "2"}))["ticket"] is None
            issued = await command("issue", {"service": "b", "priority": "elderly"})
            assert issued["ticket"] == "B001"
            assert (await command("call_next", {"counter": "2"}))["ticket"] == "B001"
            assert (await command("transfer", {"counter": "2", "to_counter": "1"}))["to_counter"] == "1"
            assert (await command("call_next", {"counter": "1"}))["ticket"] == "B001"
            assert (await command("done", {"counter": "1"}))["ticket"] == "B001"
            assert (await command("rate", {"counter": "1", "score": 5}))["score"] == 5
            assert (await command("pause", {"counter": "2"}))["paused"] is True
            with pytest.raises(CommandError, match="unknown counter '7'"):
                await command("recall", {"counter": "7"})
            with pytest.raises(CommandError, match="card must be 1..99, found 100"):
                await command("page", {"card": 100})
            with pytest.raises(CommandError, match="found 0"):
                await command("page", {"card": 0})
            with pytest.raises(CommandError, match="must be int"):
                await command("page", {"card": "7"})
        finally:
            await finish(service, task)

    run(scenario())


def test_transmitter_outage_alarms_and_recovers(tmp_path):
    clock = FakeClock()
    service, store, _ = make_service(tmp_path, clock=clock)

    async def scenario():
        task = await started(service)
        try:
            await service.issue("a")
            service.sim.unplug()
            await service.call_next("1")  # the page cannot go out: alarm, degraded, the call stays queued
            await until(lambda: service.health() == "degraded")
            offline = events(store, "transmitter_offline")
            assert offline and offline[0]["alarm"] is True and offline[0]["driver"] == "waveware"
            service.sim.replug()
            await advance_until(clock, lambda: service.sim.vibrated == [1], "the page after the reconnect")
            assert service.health() == "ok"
            assert events(store, "transmitter_online")
        finally:
            await finish(service, task)

    run(scenario())


def test_missing_port_at_start_is_degraded_not_a_crash(tmp_path):
    service, store, _ = make_service(tmp_path, port=str(tmp_path / "ttyUSB-absent"))

    async def scenario():
        task = await started(service)
        try:
            assert service.health() == "degraded"
            assert events(store, "transmitter_offline")[0]["port"].endswith("ttyUSB-absent")
            assert (await service.issue("a"))["ticket"] == "A001"  # the queue keeps working
        finally:
            await finish(service, task)

    run(scenario())


def test_counter_panel_buttons(tmp_path):
    service, store, factory = make_service(tmp_path)

    async def scenario():
        task = await started(service)
        try:
            await service.issue("a")
            await service.issue("a")
            next_pin, skip_pin, led = factory.pin(NEXT), factory.pin(SKIP), factory.pin(LED)
            await asyncio.to_thread(next_pin.drive_low)
            await asyncio.to_thread(next_pin.drive_high)
            await until(lambda: service.sim.vibrated == [1])
            await until(lambda: led.state)  # "now serving" LED lit
            # A short press of skip does nothing; holding it marks a no-show. The short press is press
            # and release in one hop off the loop: as two hops they could be long_press_s (0.3 s) apart
            # on a loaded machine, and that is a long press.
            await asyncio.to_thread(lambda: (skip_pin.drive_low(), skip_pin.drive_high()))
            await until(lambda: not service.counter_panels.busy)  # whatever the press set off has run
            assert service.view()["counters"]["1"]["ticket"] == "A001"
            await asyncio.to_thread(skip_pin.drive_low)
            await until(lambda: service.view()["counters"]["1"]["ticket"] is None)
            await asyncio.to_thread(skip_pin.drive_high)
            assert events(store, "ticket_no_show")[0]["ticket"] == "A001"
            await until(lambda: not led.state)
            # Next again, done by the next press, then the 4-key rating.
            await asyncio.to_thread(next_pin.drive_low)
            await asyncio.to_thread(next_pin.drive_high)
            await until(lambda: service.view()["counters"]["1"]["ticket"] == "A002")
            await service.done("1")
            await asyncio.to_thread(factory.pin(23).drive_low)
            await until(lambda: bool(events(store, "rating")))
            assert events(store, "rating")[0]["score"] == 4
        finally:
            await finish(service, task)

    run(scenario())


def test_restart_keeps_the_queue(tmp_path):
    clock = office_clock()  # one time line across the restart
    service, store, _ = make_service(tmp_path, clock=clock)

    async def first():
        task = await started(service)
        try:
            for _ in range(3):
                await service.issue("a")
            await service.call_next("1")
            return service.view()
        finally:
            await finish(service, task)

    before = run(first())
    store.close()
    again, store2, _ = make_service(tmp_path, clock=clock)

    async def second():
        task = await started(again)
        try:
            after = again.view()
            assert after["counters"] == before["counters"] and after["services"] == before["services"]
            assert (await again.call_next("2")) is None
            assert (await again.issue("a"))["ticket"] == "A004"
        finally:
            await finish(again, task)

    run(second())


def test_page_queued_in_an_outage_is_dropped_if_the_ticket_moved_on(tmp_path):
    clock = FakeClock()
    service, store, _ = make_service(tmp_path, clock=clock, retries=0)

    async def scenario():
        task = await started(service)
        try:
            await service.issue("a")
            await service.issue("a")
            service.sim.unplug()
            await service.call_next("1")  # A001 on card 1: queued, the transmitter is gone
            await until(lambda: service.health() == "degraded")
            await service.no_show("1")  # the desk moved on before the box came back
            await service.call_next("1")  # A002 on card 2
            service.sim.replug()
            await advance_until(clock, lambda: service.sim.vibrated == [2], "card 2's page after the reconnect")
            await service.page(42)  # pages go out in order: anything still queued went before this one
            assert service.sim.vibrated == [2, 42]  # card 1 (maybe handed out again) never rang late
        finally:
            await finish(service, task)

    run(scenario())


def test_repage_timer_pages_again_until_the_recall_limit(tmp_path):
    clock = FakeClock(OFFICE_MORNING)
    service, store, _ = make_service(tmp_path, clock=clock, repage_s=40, max_recalls=2)

    async def scenario():
        task = await started(service)
        try:
            await service.issue("a")
            await service.call_next("1")
            await until(lambda: service.sim.vibrated == [1])
            clock.advance(39)  # not due yet
            await clock.settle()
            assert events(store, "ticket_recalled") == []
            clock.advance(2)
            await clock.settle()
            await until(lambda: service.sim.vibrated == [1, 1])
            clock.advance(41)
            await clock.settle()
            await until(lambda: service.sim.vibrated == [1, 1, 1])
            clock.advance(41)
            await clock.settle()
            await service.page(42)  # pages go out in order: a fourth call would have gone before this one
            assert service.sim.vibrated == [1, 1, 1, 42]  # max_recalls reached: staff decide now
            assert [e["recalls"] for e in events(store, "ticket_recalled")] == [1, 2]
        finally:
            await finish(service, task)

    run(scenario())


def test_book_then_checkin_and_resume(tmp_path):
    service, store, _ = make_service(tmp_path)
    command = commander(service)

    async def scenario():
        task = await started(service)
        try:
            await command("issue", {"service": "a"})
            await command("book", {"code": "LH-2026-0001", "service": "a", "slot": service.ctx.clock() - 60})
            checked = await command("checkin", {"code": "LH-2026-0001"})
            assert checked["position"] == 1  # its slot was before the walk-in arrived
            await service.pause("1")
            assert service.view()["counters"]["1"]["paused"]
            await service.resume("1")
            assert (await service.call_next("1"))["ticket"] == checked["ticket"]
        finally:
            await finish(service, task)

    run(scenario())


def test_transmitter_plugged_in_later_comes_online_without_a_page(tmp_path):
    clock = FakeClock()
    service, store, _ = make_service(tmp_path, clock=clock, reconnect_max_s=0.1)

    async def scenario():
        await service.start()
        service.sim.unplug()
        service.link.go_offline("unplugged for the test")
        task = asyncio.create_task(service.run())
        try:
            # The run loop and the reconnect loop (after its first failed try) wait on the clock.
            await until(lambda: clock.sleepers == 2, what="the reconnect loop waiting after a failed try")
            for _ in range(3):  # three more tries while the port is still gone
                clock.advance(1)
                await clock.settle()
            assert service.health() == "degraded"
            service.sim.replug()
            await advance_until(clock, lambda: service.health() == "ok", "the transmitter back online")
            # The port is reopened in a worker thread, which marks the link online there; the event is
            # written on the loop once that thread has returned: a moment later.
            await until(lambda: bool(events(store, "transmitter_online")), what="the transmitter_online event")
            assert service.health() == "ok"
        finally:
            await finish(service, task)

    run(scenario())


SEGMENTS_4 = [2, 3, 4, 7, 8, 9, 10]  # a..g of the 4-digit multiplexed display at counter 1
DIGITS_4 = [11, 12, 16, 17]
SEGMENTS_1 = [18, 25, 26, 27, 20, 21, 22, 23]  # a..g + dp of the single-digit display at counter 2


def test_display_text_fits_the_digits():
    from importlib import resources

    from gpiozero.fonts import load_font_7seg

    from edge.pager.panel import display_text

    with resources.files("gpiozero.fonts").joinpath("7seg.txt").open() as f:
        font = load_font_7seg(f)  # the font LEDCharDisplay uses by default
    assert display_text("A012", 4, font) == "A012"
    assert display_text("A012", 3, font) == "012"
    assert display_text("A012", 1, font) == "2"
    assert display_text("B7", 4, font) == "  B7"
    assert display_text("K012", 4, font) == " 012"  # K is not drawable on 7 segments
    assert display_text(None, 3, font) == "   "


def test_now_serving_display(tmp_path):
    service, store, factory = make_service(tmp_path, counters={
        "1": CounterDef(services=["a"], panel=PanelDef(next_pin=NEXT, segment_pins=SEGMENTS_4, digit_pins=DIGITS_4)),
        "2": CounterDef(services=["b"], panel=PanelDef(segment_pins=SEGMENTS_1))})
    lit = lambda pins: [factory.pin(p).state for p in pins]  # noqa: E731

    async def scenario():
        task = await started(service)
        multi, single = service.panels[0].display, service.panels[1].display
        try:
            assert multi.value == (" ",) * 4 and single.value == " " and not any(lit(SEGMENTS_1))
            for _ in range(12):
                await service.issue("a")
            for _ in range(11):
                await service.call_next("1")
                await service.done("1")
            await service.issue("b")
            await asyncio.to_thread(factory.pin(NEXT).drive_low)  # the panel's own "next" key
            await asyncio.to_thread(factory.pin(NEXT).drive_high)
            await until(lambda: multi.value == ("A", "0", "1", "2"))
            assert service.view()["counters"]["1"]["ticket"] == "A012"
            await service.call_next("2")
            # B001 on one digit: "1" lights segments b and c only, the decimal point stays dark.
            assert single.value == "1"
            assert lit(SEGMENTS_1) == [False, True, True, False, False, False, False, False]
            await service.pause("2")
            assert single.value == " " and not any(lit(SEGMENTS_1))  # paused: blank
            await service.resume("2")
            assert single.value == "1"
            await service.done("1")
            # Blank = no digit selected (select pins are active-low by default, so all high).
            assert multi.value == (" ",) * 4 and all(lit(DIGITS_4))
        finally:
            await finish(service, task)
        assert multi.closed and single.closed and service.panels == []

    run(scenario())


def test_lrs_keepalive_goes_out_between_pages(tmp_path):
    clock = FakeClock(1_700_000_000.0)
    store = Store(tmp_path / "edge.db")
    config = PagerConfig(driver="lrs", port="sim", system_id=3, keepalive_s=15, services={"a": ServiceDef(prefix="A")},
                         counters={"1": CounterDef(services=["a"])})
    service = PagerService(ServiceContext(name="pager", site="s", device="d", store=store, config=config,
                                          data_dir=tmp_path, pin_factory=MockFactory(), clock=clock,
                                          sleep=clock.wait))

    async def scenario():
        task = await started(service)
        try:
            await until(lambda: clock.sleepers == 2, what="the run and keep-alive loops waiting on the clock")
            clock.advance(14.5)
            await clock.settle()
            await service.page(7)  # frames go out in order: a keep-alive queued by now went before this page
            await until(lambda: service.sim.vibrated == [7])
            assert service.sim.keepalives == []  # not due yet
            clock.advance(0.5)
            await clock.settle()
            await until(lambda: len(service.sim.keepalives) == 1)
            await service.issue("a")
            await service.call_next("1")
            await until(lambda: service.sim.vibrated == [7, 1])
            clock.advance(15)
            await clock.settle()
            await until(lambda: len(service.sim.keepalives) == 2)
            # The link counts a keep-alive once its write returned, on the loop: that can come after the
            # simulator's thread has already recorded it, so wait for the count itself.
            await until(lambda: service.link.keepalives_sent == 2, what="the link counting the second keep-alive")
            # Every frame was a whole PAGE or the exact keep-alive to system 3's capcode (1000000).
            assert service.sim.rejected == [] and service.link.keepalives_sent == 2
        finally:
            await finish(service, task)

    run(scenario())
