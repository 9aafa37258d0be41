"""Kiosk test fixtures: a background event loop, Debian's Chromium (Playwright), a page.

The Fake peers live in kiosk_fakes.py and the harness in kiosk_harness.py beside this file. The
browser is /usr/bin/chromium driven by Playwright (a downloaded browser build cannot work here,
see shared/design.md §3).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kiosk_harness import CHROMIUM, CHROMIUM_ARGS, LoopThread  # noqa: E402


@pytest.fixture
def loop_thread():
    lt = LoopThread()
    try:
        yield lt
    finally:
        lt.close()


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium per test module. Not per session: Playwright's sync API keeps an event
    loop running in the main thread while it is open, which would break asyncio.run() in any test
    (of any area) that the same worker runs afterwards."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make setup installs Debian's chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1024, "height": 768}, locale="vi-VN")
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    try:
        yield pg
    finally:
        context.close()
