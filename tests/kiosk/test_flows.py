"""The pickup state machine against Fake peers: which door opens, when, and what is audited."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from edge.audit import verify as audit_verify
from edge.kiosk.flows import Limits, PickupFlow, SessionError, guidance_key, receipt_from_text
from kiosk_fakes import FakeLocker, FakeVision
from edge.testing import FakeClock, until

CODE = "000.00.01.H29-240115-0001"
OTHER = "000.00.01.H29-240115-0002"


def make(store, *, receipts=None, enrolled=(CODE,), decisions=(), **limits):
    locker = FakeLocker(receipts if receipts is not None else
                        {CODE: {"status": "waiting", "compartment": 7, "pin": "4321"},
                         OTHER: {"status": "waiting", "compartment": 2, "pin": "1111"}})
    vision = FakeVision(enrolled=enrolled, decisions=decisions)
    clock = FakeClock()
    flow = PickupFlow(store=store, locker=lambda: locker, vision=lambda: vision, clock=clock,
                      limits=Limits(face_pause_s=0.0, **limits))
    return flow, locker, vision, clock


def audit_actions(store):
    return [r["action"] for r in store.query("SELECT action FROM audit ORDER BY id")]


def test_face_journey_opens_only_the_claimed_compartment_and_audits_each_step(store):
    async def go():
        flow, locker, vision, _ = make(store, decisions=["accept"])
        v = await flow.start()
        assert v["step"] == "code"
        v = await flow.submit_code(v["session"], CODE)
        assert v["step"] == "face"
        await until(lambda: flow.view()["step"] == "open")
        v = flow.view()
        assert v["compartment"] == 7 and v["receipt"].endswith("0001") and CODE not in json.dumps(v)
        assert [(o[1], o[2]) for o in locker.opened] == [(7, "face")]
        locker.door_closed.set()
        await until(lambda: flow.view()["step"] == "thanks")
        assert flow.session is None
        await flow.close()
    asyncio.run(go())
    actions = audit_actions(store)
    for action in ("session.start", "code.lookup", "step.face", "face.accept", "locker.opened",
                   "door.closed", "session.end"):
        assert action in actions
    assert audit_verify(store.path).ok


def test_wrong_face_falls_back_to_pin_without_opening_then_pin_opens(store):
    async def go():
        flow, locker, vision, _ = make(store, decisions=["reject", "reject", "reject"], face_attempts=3)
        v = await flow.start()
        await flow.submit_code(v["session"], CODE)
        await until(lambda: flow.view()["step"] == "pin")
        assert vision.calls == 3 and locker.opened == []
        assert flow.view()["notice"] == "kiosk.pin_after_face"
        v = await flow.submit_pin(v["session"], "4321")
        assert v["step"] == "open" and [(o[1], o[2]) for o in locker.opened] == [(7, "pin")]
        await flow.close()
    asyncio.run(go())


def test_retry_guidance_is_shown_and_does_not_use_up_attempts(store):
    async def go():
        flow, locker, vision, _ = make(store, decisions=[])
        vision.gate = asyncio.Event()
        vision.decisions = [{"decision": "retry", "reason": "too_dark", "guidance": "too_dark"}, "accept"]
        v = await flow.start()
        await flow.submit_code(v["session"], CODE)
        vision.gate.set()
        await until(lambda: flow.view()["step"] == "open")
        assert locker.opened and flow.session.face_rejects == 0 and flow.session.face_retries == 1
        await flow.close()
    asyncio.run(go())


def test_live_camera_guidance_is_shown_while_a_check_runs(store):
    async def go():
        flow, locker, vision, _ = make(store, decisions=["accept"])
        vision.gate = asyncio.Event()
        vision.live = "too_dark"
        v = await flow.start()
        await flow.submit_code(v["session"], CODE)
        await until(lambda: flow.view()["guidance"] == "guide.too_dark")
        vision.live = "too_small"
        await until(lambda: flow.view()["guidance"] == "guide.too_small")
        assert locker.opened == []
        vision.gate.set()
        await until(lambda: flow.view()["step"] == "open")
        await flow.close()
    asyncio.run(go())


def test_no_face_consent_goes_straight_to_pin(store):
    async def go():
        flow, locker, vision, _ = make(store, enrolled=())
        v = await flow.start()
        v = await flow.submit_code(v["session"], CODE)
        assert v["step"] == "pin" and vision.calls == 0
        await flow.close()
    asyncio.run(go())


def test_wrong_pins_lock_the_receipt_across_sessions(store):
    async def go():
        flow, locker, vision, clock = make(store, enrolled=(), pin_attempts=3, lockout_s=600)
        v = await flow.start()
        await flow.submit_code(v["session"], CODE)
        for pin in ("0000", "1234"):
            v = await flow.submit_pin(v["session"], pin)
            assert v["step"] == "pin" and v["notice"] == "kiosk.pin_wrong"
        v = await flow.submit_pin(v["session"], "9999")
        assert v["step"] == "message" and v["message"] == "msg.locked" and v["params"]["minutes"] == 10
        # a new session with the same receipt is refused while locked, even with the right PIN
        v = await flow.start()
        v = await flow.submit_code(v["session"], CODE)
        assert v["message"] == "msg.locked"
        clock.now += 601
        v = await flow.start()
        v = await flow.submit_code(v["session"], CODE)
        v = await flow.submit_pin(v["session"], "4321")
        assert v["step"] == "open" and len(locker.opened) == 1
        await flow.close()
    asyncio.run(go())
    assert "lockout" in audit_actions(store)


@pytest.mark.parametrize("status, message", [("expired", "msg.expired"), ("collected", "msg.collected"),
                                             ("cancelled", "msg.no_result")])
def test_kind_messages_and_nothing_opens(store, status, message):
    async def go():
        flow, locker, _, _ = make(store, receipts={CODE: {"status": status, "compartment": 7, "pin": "1"}})
        v = await flow.start()
        v = await flow.submit_code(v["session"], CODE)
        assert v["step"] == "message" and v["message"] == message and locker.opened == []
    asyncio.run(go())


def test_a_locker_refusal_at_the_door_is_said_kindly_and_nothing_opens(store):
    from edge.locker.flows import LockerRefused

    async def go():
        flow, locker, _, _ = make(store, enrolled=())

        async def refuse(*args, **kwargs):  # collected at another kiosk between lookup and pickup
            raise LockerRefused("collected")  # what the real locker raises
        locker.pickup = refuse
        v = await flow.start()
        await flow.submit_code(v["session"], CODE)
        v = await flow.submit_pin(v["session"], "4321")
        assert v["step"] == "message" and v["message"] == "msg.collected" and locker.opened == []
    asyncio.run(go())
    assert "locker.refused" in audit_actions(store)


def test_wrong_codes_count_and_end_the_session(store):
    async def go():
        flow, locker, _, _ = make(store, code_attempts=3)
        v = await flow.start()
        sid = v["session"]
        v = await flow.submit_code(sid, "000.00.01.H29-240115-9999")
        assert v["step"] == "code" and v["notice"] == "kiosk.code_wrong" and v["attempts_left"] == 2
        v = await flow.submit_code(sid, "hello; DROP TABLE")
        assert v["notice"] == "kiosk.code_bad" and v["attempts_left"] == 1
        v = await flow.submit_code(sid, "")
        assert v["step"] == "message" and v["message"] == "msg.too_many_codes"
        with pytest.raises(SessionError):
            await flow.submit_code(sid, CODE)  # the old page cannot continue a finished session
        assert locker.opened == []
    asyncio.run(go())


def test_idle_session_times_out_and_a_second_citizen_gets_a_fresh_session(store):
    async def go():
        flow, locker, _, clock = make(store, enrolled=(), session_timeout_s=60)
        first = await flow.start()
        await flow.submit_code(first["session"], CODE)  # first citizen walks away at the PIN step
        clock.now += 30
        await flow.tick()
        assert flow.view()["step"] == "pin"
        clock.now += 31
        await flow.tick()
        v = flow.view()
        assert v["step"] == "message" and v["message"] == "msg.timeout" and v["session"] is None
        second = await flow.start()
        assert second["session"] != first["session"] and second["step"] == "code"
        with pytest.raises(SessionError):
            await flow.submit_pin(first["session"], "4321")
        assert locker.opened == []
    asyncio.run(go())


def test_start_twice_keeps_one_session_and_wrong_step_is_refused(store):
    async def go():
        flow, _, _, _ = make(store)
        a = await flow.start()
        b = await flow.start(source="button")
        assert a["session"] == b["session"]
        with pytest.raises(SessionError):
            await flow.submit_pin(a["session"], "4321")
    asyncio.run(go())


def test_door_left_open_reminds_then_ends(store):
    async def go():
        flow, locker, _, _ = make(store, enrolled=())
        locker.close_answers = [False, False, False]
        v = await flow.start()
        await flow.submit_code(v["session"], CODE)
        await flow.submit_pin(v["session"], "4321")
        await until(lambda: flow.view()["step"] == "message")
        assert flow.view()["message"] == "msg.door_left_open"
    asyncio.run(go())


def test_session_end_event_carries_no_receipt_or_pin(store):
    async def go():
        flow, _, _, _ = make(store, enrolled=())
        v = await flow.start()
        await flow.submit_code(v["session"], CODE)
        await flow.submit_pin(v["session"], "86421")
        await flow.cancel(v["session"])
    asyncio.run(go())
    payloads = [r[2] for r in store.pending()]
    assert payloads and all(CODE not in p and "86421" not in p for p in payloads)
    audit_rows = json.dumps([dict(r) for r in store.query("SELECT * FROM audit")])
    # A PIN is never written down, even a wrong one. The rows hold hex hashes too, which may
    # contain these digits by chance: only a PIN standing on its own counts.
    assert not re.search(r"(?<![0-9a-f])86421(?![0-9a-f])", audit_rows)


def test_receipt_from_text_and_guidance():
    assert receipt_from_text(f"  {CODE}\n") == CODE
    assert receipt_from_text(f"https://dichvucong.gov.vn/tra-cuu?ma_ho_so={CODE}") == CODE
    assert receipt_from_text("1.001193") is None and receipt_from_text("x" * 2000) is None
    assert guidance_key("too_dark") == "guide.too_dark" and guidance_key("face too small") == "guide.too_small"
    assert guidance_key("something new") == "guide.ok"
