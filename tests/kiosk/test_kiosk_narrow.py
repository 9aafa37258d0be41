"""The pickup start screen on a narrow screen (390 px, as in the issue's walk): the big green
button was 420 px wide at least and pushed the page sideways."""

from __future__ import annotations

import pytest

from test_pickup_browser import kiosk, open_kiosk  # noqa: F401  (the fixture, with Fake peers)

pytestmark = pytest.mark.browser


def test_the_start_button_fits_a_390_px_screen(kiosk, page):  # noqa: F811
    svc, _ = kiosk
    page.set_viewport_size({"width": 390, "height": 844})
    open_kiosk(page, svc)
    assert page.is_visible("#start")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("#start").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] >= 100   # still a big target
