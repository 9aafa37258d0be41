"""Safety review of the pickup state machine: a session past its idle timeout never opens a door."""

from __future__ import annotations

import asyncio

import pytest

from edge.kiosk.flows import Limits, PickupFlow, SessionError
from edge.testing import FakeClock, until
from kiosk_fakes import FakeLocker, FakeVision

CODE = "000.00.01.H29-240115-0001"


def make(store, **limits):
    locker = FakeLocker({CODE: {"status": "waiting", "compartment": 7, "pin": "4321"}})
    clock = FakeClock()
    flow = PickupFlow(store=store, locker=lambda: locker, vision=lambda: FakeVision(enrolled=()), clock=clock,
                      limits=Limits(face_pause_s=0.0, **limits))
    return flow, locker, clock


def test_a_pin_sent_after_the_idle_timeout_opens_nothing_even_before_the_next_tick(store):
    async def go():
        flow, locker, clock = make(store, session_timeout_s=60)
        v = await flow.start()
        await flow.submit_code(v["session"], CODE)  # at the PIN step, the citizen walks away
        clock.now += 61  # timed out; the once-a-second tick has not run yet
        with pytest.raises(SessionError):
            await flow.submit_pin(v["session"], "4321")
        assert locker.opened == []
        assert flow.view()["session"] is None and flow.view()["message"] == "msg.timeout"
    asyncio.run(go())


def test_pressing_start_after_the_idle_timeout_gives_a_fresh_session_not_the_old_one(store):
    async def go():
        flow, locker, clock = make(store, session_timeout_s=60)
        first = await flow.start()
        await flow.submit_code(first["session"], CODE)
        clock.now += 61  # a second citizen presses start before the tick ended the first session
        second = await flow.start()
        assert second["session"] != first["session"] and second["step"] == "code"
        assert locker.opened == []
    asyncio.run(go())


def test_a_face_accepted_after_the_session_timed_out_opens_nothing(store):
    async def go():
        locker = FakeLocker({CODE: {"status": "waiting", "compartment": 7, "pin": "4321"}})
        vision = FakeVision(enrolled=(CODE,), decisions=[{"decision": "accept", "score": 0.9}])
        vision.gate = asyncio.Event()  # the camera check hangs past the idle timeout
        clock = FakeClock()
        flow = PickupFlow(store=store, locker=lambda: locker, vision=lambda: vision, clock=clock,
                          limits=Limits(face_pause_s=0.0, session_timeout_s=60))
        v = await flow.start()
        await flow.submit_code(v["session"], CODE)
        assert flow.view()["step"] == "face"
        await until(lambda: vision.calls > 0, what="the face check under way")
        clock.now += 61
        vision.gate.set()  # the late answer is "accept", for a session nobody is standing at any more
        await until(lambda: flow.view()["session"] is None, what="the timed-out session ended")
        assert locker.opened == []
        assert flow.view()["session"] is None and flow.view()["message"] == "msg.timeout"
    asyncio.run(go())
