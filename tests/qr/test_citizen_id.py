"""The citizen ID card's QR: parsed for the reception form, validated, and kept private —
never in a log line, an event, the store or an MQTT message, and only in the hands of the
reader that asked for it."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from edge.config import BrokerConfig
from edge.mqtt import Reporter
from edge.qr import citizen_id
from edge.qr.codes import parse
from edge.qr.decoder import Decoder
from edge.testing import MqttRecorder, wait_until

from tests.qr.test_service import frame_of, make_qr, run

# A made-up card: Hà Nội (001), male born in the 1900s (0), 1990 (90).
CARD = "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Số 5 phố Hàng Bài, Phường Tràng Tiền, Hà Nội|15042021"
SECRETS = ("001090123456", "012345678", "Nguyễn Văn An", "Hàng Bài", "01011990")
TODAY = date(2026, 12, 7)


def card(**changes) -> str:
    parts = dict(zip(citizen_id.FIELDS, CARD.split("|")))
    parts.update(changes)
    return "|".join(parts[f] for f in citizen_id.FIELDS)


def test_a_card_is_parsed_into_form_fields():
    parsed = parse(CARD)
    assert parsed.kind == "citizen_id" and parsed.reason is None
    assert parsed.fields == {
        "id_number": "001090123456", "old_id_number": "012345678", "name": "Nguyễn Văn An",
        "birth_date": "1990-01-01", "sex": "Nam", "residence": "Số 5 phố Hàng Bài, Phường Tràng Tiền, Hà Nội",
        "issue_date": "2021-04-15", "province": "Hà Nội",
    }
    assert parsed.code is None  # nothing that a caller would log as "the code"


@pytest.mark.parametrize("text, field", [
    (card(id_number="079301234567", sex="Nữ", birth_date="24122001"), "TP Hồ Chí Minh"),  # female, 2000s
    (card(old_id_number=""), "Hà Nội"),                                                    # no old number
    (CARD + "|", "Hà Nội"),                                                               # a trailing bar
    (CARD + "|079090000001", "Hà Nội"),                                                   # 2024 card: more fields
])
def test_valid_variants(text, field):
    fields, why = citizen_id.parse_card(text, TODAY)
    assert why is None and fields["province"] == field


@pytest.mark.parametrize("text, reason", [
    (card(id_number="003090123456"), "province code"),          # 003 is no province
    (card(id_number="001190123456"), "sex digit"),              # 1 = female, the card says Nam
    (card(id_number="001290123456"), "century"),                # 2 = born 2000–2099, but 1990
    (card(id_number="001091123456"), "century and year"),       # year digits 91, born 1990
    (card(birth_date="31021990"), "date of birth"),
    (card(birth_date="01012030"), "date of birth"),             # in the future
    (card(issue_date="15042010"), "date of issue"),             # before the first 12-digit cards
    (card(issue_date="15042031"), "date of issue"),             # in the future
    (card(sex="X"), "sex"),
    (card(name="Nguyễn V4n An"), "full name"),
    (card(name=""), "full name"),
    (card(old_id_number="12345"), "old ID number"),
    (card(residence=" "), "place of residence"),
])
def test_invalid_cards_say_which_field_without_quoting_it(text, reason):
    parsed = parse(text)
    fields, why = citizen_id.parse_card(text, TODAY)
    assert parsed.kind == "citizen_id"  # still private: it looks like a card
    assert reason in why and reason in parsed.reason
    assert not any(secret in why for secret in SECRETS + ("31021990", "01012030", "V4n", "12345"))


def test_too_few_fields_is_still_treated_as_a_card_if_it_starts_like_one():
    parsed = parse("001090123456|012345678|Nguyễn Văn An|01011990|Nam|Hà Nội")  # 6 fields
    assert parsed.kind == "citizen_id" and "6 fields" in parsed.reason
    assert not citizen_id.looks_like_card("1.001193")
    assert not citizen_id.looks_like_card("00109012345|x|x|x|x|x|x")  # 11 digits


def test_reprs_never_show_the_card():
    (scan,) = Decoder().decode(frame_of(CARD))
    assert scan.kind == "citizen_id" and scan.text == CARD  # the caller that needs it gets it
    for shown in (repr(scan), repr(parse(CARD)), str(scan)):
        assert not any(secret in shown for secret in SECRETS), shown


def test_the_desk_form_gets_the_card_and_nothing_else_keeps_it(store, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)

    async def scenario():
        qr = make_qr(store, tmp_path)
        await qr.start()
        form = qr.subscribe(private=True)   # the reception form that fills in from the card
        kiosk = qr.subscribe()              # any other reader: never sees a card
        handled = await qr.scan_frame(frame_of(CARD, "1.001193"))
        await qr.stop()
        return qr, form, kiosk, handled

    qr, form, kiosk, handled = run(scenario())
    assert sorted(h["kind"] for h in handled) == ["citizen_id", "procedure"]
    items = [form.get_nowait() for _ in range(form.qsize())]
    (card_item,) = [i for i in items if i["kind"] == "citizen_id"]
    assert card_item["fields"]["id_number"] == "001090123456" and card_item["fields"]["name"] == "Nguyễn Văn An"
    assert [kiosk.get_nowait()["kind"] for _ in range(kiosk.qsize())] == ["procedure"]
    # Nothing of the card in the logs, the events, the state, the dedupe memory or the database.
    assert "citizen ID card" in caplog.text
    assert not any(secret in caplog.text for secret in SECRETS)
    outbox = store.query("SELECT topic, payload FROM outbox")
    assert any('"1.001193"' in row["payload"] for row in outbox)
    assert not any(secret in row["payload"] for row in outbox for secret in SECRETS)
    assert not any(isinstance(key, str) for key in qr._seen)
    assert not any(secret in str(qr.snapshot()) for secret in SECRETS)
    store.close()
    for path in tmp_path.glob("edge.db*"):  # the database, its WAL and shared memory
        data = path.read_bytes()
        assert not any(secret.encode() in data for secret in SECRETS), path.name


def test_the_same_card_shown_twice_is_deduplicated_without_keeping_it(store, tmp_path):
    async def scenario():
        qr = make_qr(store, tmp_path)
        await qr.start()
        form = qr.subscribe(private=True)
        first = await qr.scan_frame(frame_of(CARD))
        again = await qr.scan_frame(frame_of(CARD))
        await qr.stop()
        return first, again, form.qsize()

    first, again, delivered = run(scenario())
    assert [h["kind"] for h in first] == ["citizen_id"] and again == [] and delivered == 1


def test_no_mqtt_message_carries_the_card(mosquitto, store, tmp_path):
    """The real publish path: the outbox drained by the reporter into a real mosquitto."""
    reporter = Reporter(BrokerConfig(url=mosquitto.url), store, site="hn-badinh", device="desk-01", version="t")
    recorder = MqttRecorder(mosquitto.url).start()
    reporter.start()
    try:
        async def scenario():
            qr = make_qr(store, tmp_path)
            await qr.start()
            await qr.scan_frame(frame_of(CARD))
            await qr.scan_frame(frame_of("1.001193"))  # published after the card: our marker
            await qr.stop()

        run(scenario())
        recorder.wait_for(lambda t, p: t.endswith("/qr/event") and p.get("code") == "1.001193")
        wait_until(lambda: store.pending_count() == 0, what="outbox drained")
        seen = [f"{t} {p}" for t, p, _ in recorder.messages]
        assert any("/qr/state" in s for s in seen)
        assert not any(secret in s for s in seen for secret in SECRETS)
    finally:
        reporter.stop()
        recorder.stop()


def test_edge_qr_scan_prints_the_card_masked(tmp_path):
    import json
    import subprocess
    import sys

    import cv2

    image = tmp_path / "card.png"
    cv2.imwrite(str(image), frame_of(CARD))
    out = subprocess.run([sys.executable, "-m", "edge", "qr", "scan", str(image)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    (code,) = json.loads(out.stdout)["codes"]
    assert code["kind"] == "citizen_id" and "not shown" in code["text"]
    assert not any(secret in out.stdout + out.stderr for secret in SECRETS)
