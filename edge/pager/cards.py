"""When a pager base is running out of cards: one rule for the device's screens (reception, via
`cards_low` in the pager's view) and central's `cards_low` alarm (edge.central.cards)."""

from __future__ import annotations

CARDS_LOW_FRACTION = 0.15        # warn when fewer than this share of the pager cards are left
CARDS_LOW_MIN = 5                # ... but never below this many (a small office has few cards)


def is_low(cards_free: int, cards_out) -> bool:
    """True when the cards left are at or below max(CARDS_LOW_MIN, 15 % of all cards in use)."""
    total = cards_free + (cards_out if isinstance(cards_out, int) and not isinstance(cards_out, bool) else 0)
    return cards_free <= max(CARDS_LOW_MIN, total * CARDS_LOW_FRACTION)
