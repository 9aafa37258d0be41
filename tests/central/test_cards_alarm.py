"""Pager cards running out is a stored alarm (QA, issue 19): opened when the cards left in the
pager base's snapshot fall to the threshold, so the webhook fires; cleared when they recover."""

from __future__ import annotations

from .conftest import wait_until
from .test_notify import Receiver


def open_card_alarms(app) -> list[dict]:
    return [a for a in app.get("/api/alarms") if a["kind"] == "cards_low"]


def test_low_pager_cards_open_a_notified_alarm_that_clears_when_cards_come_back(central_app, devices):
    hook = Receiver()
    try:
        app = central_app(webhooks=(hook.url,))
        desk = devices("hn", "desk-1")
        desk.state("pager", {"services": {}, "counters": {}, "cards_out": 50, "cards_free": 49})
        wait_until(lambda: app.get("/api/queues") is not None and app.app.consumer.stats()["stored"] >= 0,
                   what="central up")
        desk.state("pager", {"services": {}, "counters": {}, "cards_out": 94, "cards_free": 5})
        wait_until(lambda: open_card_alarms(app), what="cards_low alarm opened")
        wait_until(lambda: any(a["alarm"].get("kind") == "cards_low" for a in hook.received), what="webhook told")
        assert sum(a["alarm"].get("kind") == "cards_low" for a in hook.received) == 1     # once, not every round
        html = app.get("/", raw=True)[1].decode()
        assert "Sắp hết thẻ rung" in html
        desk.state("pager", {"services": {}, "counters": {}, "cards_out": 20, "cards_free": 79})
        wait_until(lambda: not open_card_alarms(app), what="cards_low alarm cleared")
        assert sum(a["alarm"].get("kind") == "cards_low" for a in hook.received) == 1
    finally:
        hook.close()
