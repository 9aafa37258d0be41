"""Shared fixtures: a real mosquitto on a free loopback port, a store in tmp_path, one Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from edge.localbroker import MosquittoBroker
from edge.store import Store

# Hypothesis's two wall-clock rules fail a test on a busy machine, not on a wrong answer: a 200 ms
# deadline per example and the too_slow health check on generating them. Off for every property
# test (2 CI cores shared by two workers and their brokers); what the examples assert is unchanged.
# Derandomized: each test draws the same examples on every run, so CI and a developer's machine see
# the same result; fresh random examples: `pytest --hypothesis-profile=explore`.
settings.register_profile("edge", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.register_profile("explore", parent=settings.get_profile("edge"), derandomize=False)
settings.load_profile("edge")


@pytest.fixture
def mosquitto(tmp_path):
    """A started mosquitto on 127.0.0.1 at a free port; `.kill()`/`.start()` simulate an outage."""
    broker = MosquittoBroker(workdir=tmp_path / "mosquitto")
    (tmp_path / "mosquitto").mkdir(exist_ok=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "edge.db")
    try:
        yield s
    finally:
        s.close()


# -- Debian's Chromium, driven by Playwright (a downloaded browser build cannot work here) ---------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def pytest_collection_modifyitems(items):
    """Tests that use the shared `chromium` run last, after the other browser tests, which run after
    the rest. While Playwright's sync API is open it keeps an event loop running in the main thread:
    asyncio.run() (in any area's test) and a test's own sync_playwright() would fail after it."""
    def rank(item) -> int:
        if "chromium" in getattr(item, "fixturenames", ()):
            return 2
        return 1 if item.get_closest_marker("browser") else 0
    items.sort(key=rank)  # stable: the collection order within each group


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the whole run (each test takes a fresh context from it): starting
    one costs seconds on a busy machine. Safe per session thanks to the order above."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make setup installs Debian's chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        # Playwright gives a launch 30 s; two workers starting Chromium beside brokers and
        # PostgreSQL on 2 busy cores can take longer. It returns as soon as the browser is up.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=120_000)
        try:
            yield browser
        finally:
            browser.close()
