"""Reception warns about pager cards running out by the same rule as central's `cards_low` alarm
(edge/pager/cards.py: at or below max(5, 15 % of the cards)), read from the view's `cards_low` flag."""

from __future__ import annotations

import json
import urllib.request

import pytest

from test_desk_screens import _desk

pytestmark = pytest.mark.browser


def test_reception_says_cards_left_not_low_when_central_would_not_alarm(loop_thread, store, tmp_path, chromium):
    services, served = _desk(loop_thread, store, tmp_path, cards=8)     # 8 free: low before at <= 10, not by the rule
    url = services["kiosk"].url
    try:
        with urllib.request.urlopen(url + "/api/pager", timeout=10) as r:
            view = json.load(r)
        assert view["cards_free"] == 8 and view["cards_low"] is False
        page = chromium.new_page(locale="vi-VN")
        page.goto(url + "/reception")
        page.wait_for_function("document.querySelector('#cards').textContent === 'Còn 8 thẻ rung'")
        assert "low" not in page.get_attribute("#cards", "class")
        page.close()
    finally:
        loop_thread.call(served.stop())
