"""Result-ready SMS on the device: phone checks, the PIN made here, `locker/notify` through the
outbox, reminders and expiry notices, and the phone/PIN nowhere else (events, state, audit, logs)."""

import asyncio
import json
import logging

import pytest
from .lockerkit import STAFF_PIN, Clock, events, running, service

from edge import phone as phones
from edge.locker import notify
from edge.locker.flows import LockerRefused
from edge.locker.pins import check_pin
from edge.mqtt import CommandDispatcher

PHONE = "0912 345 678"
E164 = "+84912345678"
DIGITS = ("912345678", "0912345678")


def run(coro, timeout_s: float = 120.0):  # a hang guard, above the waits inside (DEADLINE_S)
    return asyncio.run(asyncio.wait_for(coro, timeout_s))


def notifies(store) -> list[dict]:
    rows = store.query("SELECT payload, qos, retain FROM outbox WHERE topic = 'locker/notify' ORDER BY row_id")
    assert all(r["qos"] == 1 and not r["retain"] for r in rows)
    return [json.loads(r["payload"]) for r in rows]


def everything_but_notify(store) -> str:
    """Every other outbox message, the audit log and every other table, as one text."""
    parts = [r["payload"] for r in store.query("SELECT payload FROM outbox WHERE topic != 'locker/notify'")]
    parts += [json.dumps(list(r)) for r in store.query("SELECT * FROM audit")]
    parts += [json.dumps(list(r)) for r in store.query("SELECT * FROM locker_assignments")]
    parts += [json.dumps(list(r)) for r in store.query("SELECT * FROM commands")]
    return "\n".join(parts)


@pytest.mark.parametrize("raw, expected", [
    ("0912345678", "+84912345678"), ("0912 345 678", "+84912345678"), ("+84 912 345 678", "+84912345678"),
    ("0084912345678", "+84912345678"), ("0351234567", "+84351234567"), ("058.123.4567", "+84581234567"),
    ("0771234567", "+84771234567"), ("0861234567", "+84861234567"),
])
def test_vietnamese_mobile_numbers_are_normalised(raw, expected):
    assert phones.normalise(raw) == expected
    assert phones.mask(expected) == expected.replace("+84", "0")[:3] + "****" + expected[-3:]


@pytest.mark.parametrize("raw, why", [
    ("09123abc78", "letters"), ("091234567", "9 digits"), ("09123456789", "11 digits"),
    ("0212345678", "mobile prefix"), ("0412345678", "mobile prefix"), ("+1 202 555 0100", "digits"),
    ("", "empty"), ("０９１２３４５６７８", "letters"), (912345678, "text"),
])
def test_other_numbers_are_refused_without_echoing_them(raw, why):
    with pytest.raises(phones.BadPhone) as err:
        phones.normalise(raw)
    assert why in str(err.value) and "03/05/07/08/09" in str(err.value)
    if isinstance(raw, str) and len(raw) > 4:
        assert raw not in str(err.value)


def test_a_load_with_a_phone_queues_one_notify_with_the_pin_whose_hash_alone_is_kept(tmp_path, caplog):
    svc = service(tmp_path)
    caplog.set_level(logging.DEBUG)

    async def body():
        async with running(svc):
            loaded = await svc.load(STAFF_PIN, "H29-261207-0201", "M", phone=PHONE, deadline_days=3)
            assert loaded["sms_to"] == "091****678"
            (msg,) = notifies(svc.ctx.store)
            assert set(msg) == {"id", "ts", "kind", "phone", "receipt", "compartment", "pin", "deadline"}
            assert msg["kind"] == "result_ready" and msg["phone"] == E164 and msg["receipt"] == "H29-261207-0201"
            assert msg["compartment"] == loaded["compartment"]
            assert len(msg["pin"]) == 6 and msg["pin"].isdigit()
            row = svc.ctx.store.query("SELECT pin_hash, deadline FROM locker_assignments")[0]
            assert check_pin(msg["pin"], row["pin_hash"]) and msg["deadline"] == row["deadline"]
            # the citizen's PIN opens it: it is the one the SMS carries
            assert await svc.verify_pin("H29-261207-0201", msg["pin"])
            (loaded_event,) = events(svc.ctx.store, "loaded")
            assert loaded_event["sms"] is True and loaded_event["phone_masked"] == "091****678"
            return msg["pin"]

    pin = run(body())
    text = everything_but_notify(svc.ctx.store) + "\n".join(r.getMessage() for r in caplog.records)
    for secret in (*DIGITS, pin):
        assert secret not in text
    assert "091****678" in text  # masked, so staff can still tell which number was used


def test_each_loading_draws_its_own_pin(tmp_path):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            for n in range(3):
                await svc.load(STAFF_PIN, f"H29-261207-03{n:02d}", None, phone=PHONE)
                svc.clock.advance(svc.config.rate_limit_s)  # past the rate limit, on the service's clock
            return [m["pin"] for m in notifies(svc.ctx.store)]

    pins = run(body())
    assert len(pins) == 3 and len(set(pins)) == 3 and all(len(p) == 6 for p in pins)


@pytest.mark.parametrize("phone, pin, reason", [("09ab345678", None, "phone"), ("0212345678", None, "phone"),
                                                 (PHONE, "2468", "bad_input")])
def test_a_bad_phone_or_a_phone_with_a_staff_pin_is_refused_and_nothing_is_stored(tmp_path, phone, pin, reason):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            with pytest.raises(LockerRefused) as err:
                await svc.load(STAFF_PIN, "H29-261207-0101", None, pin=pin, phone=phone)
            assert err.value.reason == reason
            if reason == "phone":
                assert "Số điện thoại không hợp lệ" in err.value.message_vi
            assert not svc.ctx.store.query("SELECT 1 FROM locker_assignments")
            assert not notifies(svc.ctx.store)
            assert not events(svc.ctx.store, "pulse_sent")

    run(body())


def test_reminder_a_day_before_then_expired_notice_then_the_phone_is_forgotten(tmp_path):
    clock = Clock()
    svc = service(tmp_path, clock=clock)

    async def body():
        async with running(svc):
            await svc.load(STAFF_PIN, "H29-261207-0109", None, phone=PHONE, deadline_days=3)
            store = svc.ctx.store
            assert notify.sweep(store, clock) == 0            # too early for a reminder
            clock.offset = 2.2 * 86400
            assert notify.sweep(store, clock) == 1
            assert notify.sweep(store, clock) == 0            # once only
            clock.offset = 3.1 * 86400
            await svc.handle_command("expire", {"receipt": None})
            kinds = [(m["kind"], m["pin"]) for m in notifies(store)]
            assert kinds == [("result_ready", kinds[0][1]), ("reminder", None), ("expired", None)]
            assert all(m["phone"] == E164 and m["receipt"] == "H29-261207-0109" for m in notifies(store))
            assert not store.query("SELECT 1 FROM locker_notify")  # the number is gone with the result

    run(body())


def test_a_collected_result_gets_no_reminder_and_its_phone_is_forgotten(tmp_path):
    clock = Clock()
    svc = service(tmp_path, clock=clock)

    async def body():
        async with running(svc):
            await svc.load(STAFF_PIN, "H29-261207-0105", None, phone=PHONE, deadline_days=2)
            with svc.ctx.store.transaction() as tx:  # collected (the door flow is tested elsewhere)
                tx.execute("UPDATE locker_assignments SET status = 'collected'")
            clock.offset = 1.5 * 86400
            assert notify.sweep(svc.ctx.store, clock) == 0
            assert not svc.ctx.store.query("SELECT 1 FROM locker_notify")

    run(body())


def test_a_published_notify_leaves_the_device_outbox(tmp_path):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            await svc.load(STAFF_PIN, "H29-261207-0107", None, phone=PHONE)
            store = svc.ctx.store
            rows = [r[0] for r in store.pending() if r[1] == "locker/notify"]
            assert len(rows) == 1
            store.mark_published(rows)        # the broker acknowledged it (PUBACK)
            notify.sweep(store, svc.clock)
            assert not store.query("SELECT 1 FROM outbox WHERE topic = 'locker/notify'")

    run(body())


def test_the_mqtt_load_command_takes_a_phone_and_the_audit_keeps_it_masked(tmp_path):
    svc = service(tmp_path)

    async def body():
        async with running(svc):
            dispatcher = CommandDispatcher(svc.ctx.store, {"locker": svc}, site="hn", device="kiosk-01",
                                           command_key=None, clock=svc.clock)
            svc.signed_commands = frozenset()  # signatures are tested in test_locker_mqtt; here: the args
            cmd = {"id": "c-1", "type": "load", "args": {"receipt": "H29-261207-0103", "phone": PHONE}}
            result = await dispatcher.dispatch("locker", json.dumps(cmd).encode())
            assert result["ok"] and result["sms_to"] == "091****678"
            bad = {"id": "c-2", "type": "load", "args": {"receipt": "H29-261207-0104", "phone": "09x1234567"}}
            refused = await dispatcher.dispatch("locker", json.dumps(bad).encode())
            assert not refused["ok"] and "phone" in refused["error"]
            assert [m["receipt"] for m in notifies(svc.ctx.store)] == ["H29-261207-0103"]

    run(body())
    text = everything_but_notify(svc.ctx.store)
    assert "912345678" not in text and "091****678" in text


def test_edge_monitor_shows_a_notify_masked(mosquitto):
    import threading
    import time

    import paho.mqtt.client as mqtt

    from edge.monitor import watch

    lines, stop, heard = [], threading.Event(), threading.Event()

    def show(line: str) -> None:
        lines.append(line)
        heard.set()

    thread = threading.Thread(target=watch, args=(mosquitto.url, "hn", show, stop), daemon=True)
    thread.start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    body = {"id": "n1", "ts": time.time(), "kind": "result_ready", "phone": E164, "receipt": "H29-261207-0101",
            "compartment": 2, "pin": "480913", "deadline": time.time() + 86400}
    deadline = time.monotonic() + 30
    while not lines and time.monotonic() < deadline:   # until the monitor's subscription is in place
        pub.publish("motcua/v1/hn/kiosk-01/locker/notify", json.dumps(body), qos=1).wait_for_publish(5)
        heard.wait(0.2)  # the monitor shows it, or it was not subscribed yet: publish again
    stop.set()
    pub.loop_stop()
    assert lines and "H29-261207-0101" in lines[0] and "091****678" in lines[0]
    assert "480913" not in "\n".join(lines) and "912345678" not in "\n".join(lines)


def test_a_one_day_deadline_gets_no_reminder_on_top_of_the_result_sms(tmp_path):
    clock = Clock()
    svc = service(tmp_path, clock=clock)

    async def body():
        async with running(svc):
            await svc.load(STAFF_PIN, "H29-261207-0110", None, phone=PHONE, deadline_days=1)
            clock.offset = 60
            assert notify.sweep(svc.ctx.store, clock) == 0
            assert [m["kind"] for m in notifies(svc.ctx.store)] == ["result_ready"]

    run(body())
