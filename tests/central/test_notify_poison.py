"""A poison `locker/notify` message is refused by name (a ValueError, so the SMS worker counts it
as rejected and acknowledges it). A deeply nested one raised RecursionError instead: the worker
held it forever and every round failed before sending any citizen's SMS."""

from __future__ import annotations

import pytest

from edge.central import sms

TOPIC = "motcua/v1/hn/kiosk-01/locker/notify"


@pytest.mark.parametrize("payload, why", [
    (b'{"id": "n-1", "extra": ' + b"[" * 50000 + b"]" * 50000 + b"}", "nested"),
    (b'{"id": "n-1", "ts": 1e999, "kind": "result_ready"}', "number"),
    (b'{"id": "n-1", "receipt": "A\\u0000B"}', "NUL"),
])
def test_a_poison_notify_is_a_value_error_naming_the_fault(payload, why):
    with pytest.raises(ValueError) as err:
        sms.parse_notify(TOPIC, payload)
    assert why in str(err.value)
