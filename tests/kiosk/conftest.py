"""Kiosk test helpers: a kiosk (and its peers) served from a background event loop, and Chromium.

The Fake peers live in kiosk_fakes.py beside this file. The browser is Debian's chromium driven
by Playwright (a downloaded browser build cannot work here, see shared/design.md §3).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


class LoopThread:
    """An asyncio loop on its own thread, so a sync test (Playwright) can drive async services."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kiosk-test-loop", daemon=True)
        self.thread.start()

    def call(self, coro, timeout_s: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def close(self) -> None:
        async def cancel_rest():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self.call(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Served:
    """Services started in order on a LoopThread, each with its run() task; stopped in reverse."""

    def __init__(self, loop: LoopThread, services: list):
        self.loop, self.services, self.tasks = loop, services, []

    async def start(self):
        for svc in self.services:
            await svc.start()
            self.tasks.append(asyncio.get_running_loop().create_task(svc.run()))

    async def stop(self):
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for svc in reversed(self.services):
            await svc.stop()


@pytest.fixture
def loop_thread():
    lt = LoopThread()
    try:
        yield lt
    finally:
        lt.close()


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium per test worker."""
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
