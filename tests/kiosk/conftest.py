"""Kiosk test fixtures: a background event loop, a page in the shared Chromium (tests/conftest.py).

The Fake peers live in kiosk_fakes.py and the harness in kiosk_harness.py beside this file. The
browser is /usr/bin/chromium driven by Playwright (a downloaded browser build cannot work here,
see shared/design.md §3).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kiosk_harness import LoopThread  # noqa: E402


@pytest.fixture
def loop_thread():
    lt = LoopThread()
    try:
        yield lt
    finally:
        lt.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1024, "height": 768}, locale="vi-VN")
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    try:
        yield pg
    finally:
        context.close()
