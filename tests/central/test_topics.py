"""Topic and payload contract checks (pure): what is accepted, what is refused and why."""

from __future__ import annotations

import json

import pytest

from edge.central import topics

TS = 1_790_000_000.5
EVENT = {"id": "0f3c9a", "seq": 7, "ts": TS, "type": "ticket_issued", "ticket": "A012"}


def ev(**change) -> bytes:
    body = {**EVENT, **change}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def test_event_is_parsed_with_site_device_service():
    e = topics.parse("motcua/v1/hanoi-bd/desk-1/pager/event", ev())
    assert (e.site, e.device, e.service, e.id, e.seq, e.ts, e.type) == ("hanoi-bd", "desk-1", "pager", "0f3c9a", 7, TS, "ticket_issued")
    assert e.body == EVENT


def test_status_and_state():
    s = topics.parse("motcua/v1/s/d/status", json.dumps(
        {"state": "offline", "ts": TS, "version": "1.0", "services": {"pager": "down"}}).encode())
    assert (s.state, s.version, s.services) == ("offline", "1.0", {"pager": "down"})
    st = topics.parse("motcua/v1/s/d/locker/state", json.dumps({"ts": TS, "compartments": []}).encode())
    assert (st.service, st.snapshot["compartments"]) == ("locker", [])


@pytest.mark.parametrize("topic,payload,reason", [
    ("motcua/v1/s/d/pager/event", b"not json", "not_json"),
    ("motcua/v1/s/d/pager/event", b"\xff\xfe", "not_json"),
    ("motcua/v1/s/d/pager/event", b"[1, 2]", "not_object"),
    ("motcua/v1/s/d/pager/event", ev(id=...), "missing_id"),
    ("motcua/v1/s/d/pager/event", ev(seq=...), "missing_seq"),
    ("motcua/v1/s/d/pager/event", ev(seq="7"), "bad_seq"),
    ("motcua/v1/s/d/pager/event", ev(seq=-1), "bad_seq"),
    ("motcua/v1/s/d/pager/event", ev(seq=True), "bad_seq"),
    ("motcua/v1/s/d/pager/event", ev(seq=7.5), "bad_seq"),
    ("motcua/v1/s/d/pager/event", ev(id=12), "bad_id"),
    ("motcua/v1/s/d/pager/event", ev(id="x" * 200), "bad_id"),
    ("motcua/v1/s/d/pager/event", ev(ts="today"), "bad_ts"),
    ("motcua/v1/s/d/pager/event", ev(ts=TS * 1000), "bad_ts"),
    ("motcua/v1/s/d/pager/event", ev(ts=...), "missing_ts"),
    ("motcua/v1/s/d/pager/event", ev(type=None), "bad_type"),
    ("motcua/v1/s/d/pager/event", ev(pad="x" * (1024 * 1024)), "too_large"),
    ("motcua/v2/s/d/pager/event", ev(), "bad_topic"),
    ("motcua/v1/S D/d/pager/event", ev(), "bad_topic"),
    ("motcua/v1/s/d/pager/extra/event", ev(), "bad_topic"),
    ("motcua/v1/s/d/pager/cmd", ev(), "bad_topic"),
    ("motcua/v1/s/d/status", b'{"state": "sleeping", "ts": 1790000000}', "bad_state"),
    ("motcua/v1/s/d/status", b'{"state": "online", "ts": 1790000000, "services": ["pager"]}', "bad_services"),
])
def test_bad_messages_are_refused_with_a_reason(topic, payload, reason):
    with pytest.raises(topics.BadMessage) as err:
        topics.parse(topic, payload)
    assert err.value.reason == reason
    assert reason in str(err.value)


def test_biometric_and_personal_fields_never_pass():
    e = topics.parse("motcua/v1/s/d/vision/event", ev(type="match", embedding=[0.1] * 128, phone="0912345678"))
    assert "embedding" not in e.body and "phone" not in e.body
    assert e.redacted == ("embedding", "phone")


def test_shared_subscription_for_events_plain_for_retained():
    shared, plain = topics.subscriptions("central")
    assert shared == ["$share/central/motcua/v1/+/+/+/event", "$share/central/motcua/v1/+/+/device/cmd/result"]
    assert plain == ["motcua/v1/+/+/status", "motcua/v1/+/+/+/state"]
    assert topics.subscriptions("")[0] == ["motcua/v1/+/+/+/event", "motcua/v1/+/+/device/cmd/result"]
