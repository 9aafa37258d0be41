"""Kiosk test helpers: a kiosk (and its peers) served from a background event loop, and Chromium.

The Fake peers live in kiosk_fakes.py beside this file. The browser is Debian's chromium driven
by Playwright (a downloaded browser build cannot work here, see shared/design.md §3).
"""

from __future__ import annotations

import asyncio
import os
import shutil
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


def shot(page, tmp_path: Path, name: str) -> Path:
    """A screenshot in the test's output (tmp_path/screenshots), also copied to $EDGE_SCREENSHOT_DIR if set."""
    folder = tmp_path / "screenshots"
    folder.mkdir(exist_ok=True)
    path = folder / f"kiosk-{name}.png"
    page.screenshot(path=str(path))
    export = os.environ.get("EDGE_SCREENSHOT_DIR")
    if export:
        Path(export).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(export) / path.name)
    return path
