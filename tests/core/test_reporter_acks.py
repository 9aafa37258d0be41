"""The reporter marks an outbox row published only on that row's own PUBACK, also when paho gives
the row a mid a status message had before (paho's mids wrap after 65,535 messages)."""

from __future__ import annotations

import types

import paho.mqtt.client as mqtt
import pytest

from edge.config import BrokerConfig
from edge.mqtt import Reporter


@pytest.fixture
def reporter(store):
    """A reporter that is never started: the test plays paho (the mid each publish gets, the PUBACKs)."""
    reporter = Reporter(BrokerConfig(url="mqtt://127.0.0.1:1"), store, site="hn", device="desk-01", version="t")
    reporter.connected.set()
    reporter.next_mid = 0
    reporter.client.publish = lambda *args, **kwargs: types.SimpleNamespace(mid=reporter.next_mid,
                                                                            rc=mqtt.MQTT_ERR_SUCCESS)
    return reporter


def puback(reporter, mid):
    reporter._on_publish(reporter.client, None, mid, None, None)
    reporter._flush_acks()


@pytest.mark.parametrize("status_ack_first", [False, True])
def test_a_status_puback_is_never_taken_for_a_later_row_with_the_same_mid(reporter, store, status_ack_first):
    with store.transaction() as tx:
        tx.emit("pager", "ticket_issued", ticket="A001")
    (row_id, topic, payload, qos, retain), = store.pending()
    reporter.next_mid = 7
    if status_ack_first:  # the status's PUBACK arrives before publish() has returned its mid
        puback(reporter, 7)
    reporter.set_services({"pager": "ok"})
    if not status_ack_first:
        puback(reporter, 7)
    assert reporter._send(row_id, topic, payload, qos, retain)  # 65,535 messages later: mid 7 again
    reporter._flush_acks()
    assert store.pending_count() == 1  # not published before its own PUBACK
    puback(reporter, 7)
    assert store.pending_count() == 0


def test_a_rows_puback_that_beats_its_send_still_marks_it(reporter, store):
    with store.transaction() as tx:
        tx.emit("pager", "ticket_issued", ticket="A001")
    (row_id, topic, payload, qos, retain), = store.pending()
    reporter.next_mid = 9
    puback(reporter, 9)  # paho's network thread got the PUBACK before _send noted the mid
    assert reporter._send(row_id, topic, payload, qos, retain)
    reporter._flush_acks()
    assert store.pending_count() == 0
