"""Ratings tied to the citizen's phone: the DG text, the web flow with a one-time code, rate limits,
bad input (clear refusal, nothing stored), and the list without phone numbers."""

from __future__ import annotations

import json
import re
import time
import uuid

import psycopg
import pytest

from edge.central import db, ratings, sms, smstext
from edge.central.ratings import RatingRefused

RECEIPT = "000.00.01.H29-261207-0002"
PHONE = "+84912345678"
TEXTS = smstext.Texts()


@pytest.fixture
def conn(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        db.migrate(c)
        sms.migrate(c)
        yield c


def result_sent(conn, receipt=RECEIPT, phone=PHONE, site="hn"):
    """The result-ready SMS of `receipt` went to `phone` (what the SMS service records)."""
    sms.queue_text(conn, ref=uuid.uuid4().hex, kind="result_ready", phone=phone, body="…", site=site,
                   device="kiosk-01", receipt=receipt, has_pin=True)


def otp_sent(conn, receipt=RECEIPT) -> str:
    body = conn.execute("SELECT body FROM sms_messages WHERE kind = 'otp' AND receipt = %s ORDER BY id DESC LIMIT 1",
                        (receipt,)).fetchone()[0]
    return re.search(r"\b(\d{6})\b", body.replace(receipt, "")).group(1)


def stored(conn) -> list[tuple]:
    return conn.execute("SELECT site, receipt, score, channel, comment FROM ratings ORDER BY receipt").fetchall()


@pytest.mark.parametrize("text, expected", [
    ("DG HS-1 5", ("HS-1", 5)), ("dg hs-1 1", ("HS-1", 1)), ("ĐG HS-1 3", ("HS-1", 3)),
    ("  đg    000.00.01.H29-261207-0002     4  ", ("000.00.01.H29-261207-0002", 4)), ("Dg HS/2 2", ("HS/2", 2)),
    ("D G HS-1 5", ("HS-1", 5)),
])
def test_dg_texts_are_understood(text, expected):
    parsed = ratings.parse_sms(text)
    assert (parsed.receipt, parsed.score) == expected


@pytest.mark.parametrize("text, reason", [
    ("DG HS-1 6", "score"), ("DG HS-1 0", "score"), ("DG HS-1", "score"), ("DG HS-1 5 sao", "score"),
    ("DG HS-1 năm", "score"), ("DG H<S 5", "receipt"), ("DG", "score"),
])
def test_malformed_dg_texts_are_refused_by_name(text, reason):
    with pytest.raises(RatingRefused) as err:
        ratings.parse_sms(text)
    assert err.value.reason == reason and err.value.message_vi


@pytest.mark.parametrize("text", ["Cam on", "", "DGHS 5", "hello DG HS-1 5"])
def test_other_texts_are_not_ratings(text):
    assert ratings.parse_sms(text) is None


def test_sms_rating_counts_only_from_the_phone_the_result_went_to(conn):
    result_sent(conn)
    assert ratings.handle_sms(conn, "0987654321", f"DG {RECEIPT} 1")[0] == "rating_wrong_phone"
    assert ratings.handle_sms(conn, PHONE, "DG HS-UNKNOWN 5")[0] == "rating_unknown"
    assert ratings.handle_sms(conn, "VIETTEL", "DG HS 5") is None          # a brand name: nobody to answer
    assert ratings.handle_sms(conn, PHONE, "xin chào") is None
    assert stored(conn) == []
    kind, values, site, receipt, to = ratings.handle_sms(conn, "0912 345 678", f"dg {RECEIPT.lower()} 2")
    assert (kind, values["score"], site, to) == ("rating_ok", 2, "hn", PHONE)
    ratings.handle_sms(conn, PHONE, f"DG {RECEIPT} 5")                     # a new one replaces the old
    assert stored(conn) == [("hn", RECEIPT, 5, "sms", None)]


def test_web_rating_with_a_one_time_code(conn):
    result_sent(conn)
    assert ratings.request_code(conn, TEXTS, RECEIPT.lower(), "0912.345.678", "10.0.0.7") == "091****678"
    code = otp_sent(conn)
    otp = conn.execute("SELECT phone, has_pin, status FROM sms_messages WHERE kind = 'otp'").fetchone()
    assert otp == (PHONE, True, "queued")   # it goes by SMS to that phone only; erased once sent
    with pytest.raises(RatingRefused) as err:
        ratings.submit(conn, RECEIPT, PHONE, "000000" if code != "000000" else "111111", 4)
    assert err.value.reason == "code" and stored(conn) == []
    site = ratings.submit(conn, RECEIPT, PHONE, code, "4", "  Cán bộ nhiệt tình  ")
    assert site == "hn" and stored(conn) == [("hn", RECEIPT, 4, "web", "Cán bộ nhiệt tình")]
    with pytest.raises(RatingRefused):                                     # a code is used once
        ratings.submit(conn, RECEIPT, PHONE, code, 1)
    # phone numbers and codes are not kept in the rating tables
    dump = json.dumps([list(r) for t in ("ratings", "rating_codes", "rating_requests")
                       for r in conn.execute(f"SELECT * FROM {t}").fetchall()], default=str)
    assert "912345678" not in dump and code not in dump


def test_a_code_expires_after_five_wrong_tries(conn):
    result_sent(conn)
    ratings.request_code(conn, TEXTS, RECEIPT, PHONE, "c1")
    code = otp_sent(conn)
    wrong = "123456" if code != "123456" else "654321"
    for _ in range(ratings.CODE_ATTEMPTS):
        with pytest.raises(RatingRefused):
            ratings.submit(conn, RECEIPT, PHONE, wrong, 5)
    with pytest.raises(RatingRefused) as err:
        ratings.submit(conn, RECEIPT, PHONE, code, 5)                      # even the right one now
    assert err.value.reason == "code" and stored(conn) == []


@pytest.mark.parametrize("receipt, phone, reason", [
    (RECEIPT, "09123abc78", "phone"), (RECEIPT, "0212345678", "phone"), ("", PHONE, "receipt"),
    ("HS 1", PHONE, "receipt"), ("HS-KHONG-CO", PHONE, "unknown"), (RECEIPT, "0987654321", "unknown"),
])
def test_bad_code_requests_get_a_clear_answer_and_send_nothing(conn, receipt, phone, reason):
    result_sent(conn)
    with pytest.raises(RatingRefused) as err:
        ratings.request_code(conn, TEXTS, receipt, phone, "c1")
    assert err.value.reason == reason and err.value.message_vi.endswith(".")
    assert not conn.execute("SELECT 1 FROM sms_messages WHERE kind = 'otp'").fetchall()
    assert not conn.execute("SELECT 1 FROM rating_codes").fetchall()


@pytest.mark.parametrize("score, comment, reason", [(0, "", "score"), (6, "", "score"), ("năm", "", "score"),
                                                    (True, "", "score"), (5, "x" * 501, "comment"),
                                                    (5, ["list"], "comment")])
def test_bad_ratings_are_refused_before_the_code_is_used(conn, score, comment, reason):
    result_sent(conn)
    ratings.request_code(conn, TEXTS, RECEIPT, PHONE, "c1")
    code = otp_sent(conn)
    with pytest.raises(RatingRefused) as err:
        ratings.submit(conn, RECEIPT, PHONE, code, score, comment)
    assert err.value.reason == reason and stored(conn) == []
    ratings.submit(conn, RECEIPT, PHONE, code, 3)                          # the code still works


def test_code_requests_are_rate_limited_per_number_and_per_client(conn):
    result_sent(conn)
    for _ in range(ratings.CODES_PER_PHONE_PER_HOUR):
        ratings.request_code(conn, TEXTS, RECEIPT, PHONE, "client-a")
    with pytest.raises(RatingRefused) as err:
        ratings.request_code(conn, TEXTS, RECEIPT, PHONE, "client-b")      # another client, same number
    assert err.value.reason == "rate_phone"
    reasons = []
    for n in range(ratings.REQUESTS_PER_CLIENT_PER_HOUR + 1):              # one client trying many numbers
        with pytest.raises(RatingRefused) as err:
            ratings.request_code(conn, TEXTS, RECEIPT, f"09876543{n:02d}", "client-c")
        reasons.append(err.value.reason)
    assert reasons == ["unknown"] * ratings.REQUESTS_PER_CLIENT_PER_HOUR + ["rate_client"]
    otps = conn.execute("SELECT count(*) FROM sms_messages WHERE kind = 'otp'").fetchone()[0]
    assert otps == ratings.CODES_PER_PHONE_PER_HOUR


def test_list_has_sms_web_and_counter_ratings_and_no_phone(conn):
    result_sent(conn)
    result_sent(conn, "HS-B", "+84987000111", site="dn")
    ratings.handle_sms(conn, PHONE, f"DG {RECEIPT} 4")
    ratings.request_code(conn, TEXTS, "HS-B", "0987000111", "c")
    ratings.submit(conn, "HS-B", "0987000111", otp_sent(conn, "HS-B"), 2, "chậm")
    now = time.time()
    db.ensure_partitions(conn, [db.month_start(now)], set())
    conn.execute("INSERT INTO events (ts, id, site, device, service, seq, type, body) VALUES "
                 "(to_timestamp(%s), 'e1', 'hn', 'desk-01', 'pager', 1, 'rating', %s)",
                 (now, json.dumps({"ticket": "A012", "service": "ho-tich", "counter": "3", "score": 5})))
    everything = ratings.list_ratings(conn)
    assert {(r["site"], r["channel"], r["score"]) for r in everything} == {("hn", "sms", 4), ("dn", "web", 2),
                                                                           ("hn", "counter", 5)}
    assert all({"site", "receipt", "score", "channel", "ts"} <= set(r) for r in everything)
    assert "912345678" not in json.dumps(everything) and "987000111" not in json.dumps(everything)
    assert [r["channel"] for r in ratings.list_ratings(conn, site="dn")] == ["web"]
    assert ratings.list_ratings(conn, since=now + 60) == []
    counter = [r for r in everything if r["channel"] == "counter"][0]
    assert counter["counter"] == "3" and counter["service"] == "ho-tich" and counter["receipt"] is None
    summary = ratings.summary(everything)
    assert {"site": "hn", "channel": "counter", "service": "ho-tich", "counter": "3", "count": 1,
            "average": 5.0} in summary


def test_answers_to_one_number_are_capped_per_hour(conn):
    answered = [ratings.may_reply(conn, PHONE) for _ in range(ratings.REPLIES_PER_PHONE_PER_HOUR + 2)]
    assert answered == [True] * ratings.REPLIES_PER_PHONE_PER_HOUR + [False, False]
    assert ratings.may_reply(conn, "+84987654321")          # another number is answered
