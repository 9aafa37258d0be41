"""One rule for 'pager cards running out' (edge/pager/cards.py), used by the device's view and by
central's `cards_low` alarm."""

from __future__ import annotations

from edge.central import cards as central_cards
from edge.pager import cards


def test_the_rule_is_five_cards_or_fifteen_percent_whichever_is_more():
    assert cards.is_low(5, 0) and not cards.is_low(6, 0)          # a small office: 5 cards
    assert cards.is_low(15, 85) and not cards.is_low(16, 84)      # 100 cards: 15 %
    assert cards.is_low(0, True) and not cards.is_low(8, None)    # cards_out unknown: counted as none


def test_central_alarms_by_the_same_rule_as_the_device():
    assert central_cards.is_low is cards.is_low
