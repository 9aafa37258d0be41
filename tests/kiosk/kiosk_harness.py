"""Kiosk test harness: services on a background event loop (so sync Playwright can drive them),
and screenshots. A plain module (not conftest) so that its name cannot clash with other areas'."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from pathlib import Path

from edge.kiosk.config import KioskConfig
from edge.kiosk.service import KioskService
from edge.service import ServiceContext
from edge.testing import office_clock

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


@contextmanager
def served_kiosk(loop_thread: LoopThread, store, tmp_path: Path, make_peers, *, clock=time.time, **config):
    """A KioskService on a free port with the peers `make_peers()` returns (built on the loop);
    yields (service, peers), with the service itself as peers["kiosk"]. `clock`: what the service
    reads the time from (an edge.testing.FakeClock lets a test skip a timeout)."""
    peers: dict = {}

    async def build():
        peers.update(make_peers())
        ctx = ServiceContext(name="kiosk", site="s1", device="kiosk-01", store=store, clock=clock,
                             config=replace(KioskConfig(), port=0, **config), data_dir=tmp_path, peers=peers)
        svc = KioskService(ctx)
        peers["kiosk"] = svc
        served = Served(loop_thread, [svc])
        await served.start()
        return svc, served

    svc, served = loop_thread.call(build())
    try:
        yield svc, peers
    finally:
        loop_thread.call(served.stop())


@contextmanager
def served_desk(loop_thread: LoopThread, store, tmp_path: Path, *, qr=None, kiosk: dict | None = None,
                queue_name_en: str = "", make_peers=dict):
    """A reception desk as under `edge demo`: the real pager on its JTECH simulator (queue "ho-tich",
    prefix A, counter 1, on an `office_clock`), the real QR service when `qr` (a QrConfig) is given, and a KioskService
    with `kiosk` as config overrides. Yields the services by name; `make_peers()` (built on the
    loop) adds peers such as a FakeLocker."""
    from edge.pager.config import CounterDef, PagerConfig, ServiceDef
    from edge.pager.service import PagerService
    from edge.qr.service import QrService

    peers: dict = {}

    def ctx(name, cfg, **more):
        return ServiceContext(name=name, site="test", device="desk-01", store=store, config=cfg,
                              data_dir=tmp_path, peers=peers, **more)

    pager_cfg = PagerConfig(port="sim", services={"ho-tich": ServiceDef(prefix="A", name="Hộ tịch", name_en=queue_name_en)},
                            counters={"1": CounterDef(services=["ho-tich"])}, double_press_s=0)
    services = {"qr": QrService(ctx("qr", qr))} if qr is not None else {}
    services.update(pager=PagerService(ctx("pager", pager_cfg, clock=office_clock())),
                    kiosk=KioskService(ctx("kiosk", replace(KioskConfig(), port=0, **(kiosk or {})))))

    async def build():
        peers.update(services, **make_peers())
        served = Served(loop_thread, list(services.values()))
        await served.start()
        return served

    served = loop_thread.call(build(), timeout_s=60)
    try:
        yield services
    finally:
        loop_thread.call(served.stop())


@asynccontextmanager
async def pager_and_kiosk(store, tmp_path: Path, clock=None, **kiosk):
    """On the running loop: a real pager (JTECH pty simulator, queue "ho-tich", counter 1, on an
    `office_clock`) and the kiosk web app beside it (on `clock`, if given), sharing one store;
    `kiosk` are config overrides. Yields (kiosk, pager)."""
    from edge.pager.config import CounterDef, PagerConfig, ServiceDef
    from edge.pager.service import PagerService

    peers: dict = {}
    pager_cfg = PagerConfig(port="sim", services={"ho-tich": ServiceDef(prefix="A", name="Hộ tịch")},
                            counters={"1": CounterDef(services=["ho-tich"])}, double_press_s=0)
    pager = PagerService(ServiceContext(name="pager", site="t", device="d", store=store, config=pager_cfg,
                                        data_dir=tmp_path, peers=peers, clock=office_clock()))
    kiosk_svc = KioskService(ServiceContext(name="kiosk", site="t", device="d", store=store, data_dir=tmp_path,
                                            peers=peers, config=replace(KioskConfig(), port=0, **kiosk),
                                            **({"clock": clock} if clock else {})))
    peers.update(pager=pager, kiosk=kiosk_svc)
    await pager.start()
    run = asyncio.create_task(pager.run())
    await kiosk_svc.start()
    try:
        yield kiosk_svc, pager
    finally:
        await kiosk_svc.stop()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await pager.stop()


def at_step(page, *steps: str, timeout: float | None = None) -> None:
    """Wait until the pickup page shows one of `steps` with no press of its own awaiting an answer.

    A step can reach the page by its event stream before the answer to the press that caused it
    (6 starts in 40 under load), and the page ignores a press while one is in flight (kiosk.js
    `act`): a test that typed a code and pressed Enter at once could see that Enter dropped."""
    selector = ", ".join(f"body[data-step='{step}']:not(.busy)" for step in steps)
    page.wait_for_selector(selector, **({} if timeout is None else {"timeout": timeout}))


def shows(page, condition: str, timeout: float | None = None) -> None:
    """Wait until the pickup page meets `condition` (JavaScript) with no press awaiting its answer:
    a refusal's notice, too, can come by the event stream before the answer (see `at_step`)."""
    page.wait_for_function(f"!document.body.classList.contains('busy') && ({condition})",
                           **({} if timeout is None else {"timeout": timeout}))


# Every value the pickup page's step takes, in order, kept in window.edgeSteps as it changes: a test
# can check a screen that shows only briefly (the thank-you) even if it never polled while it was up.
STEP_RECORDER = """
window.edgeSteps = [];
new MutationObserver(records => {
  for (const r of records) window.edgeSteps.push(r.oldValue);
  window.edgeSteps.push(document.body.dataset.step);
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-step"], attributeOldValue: true});
"""


def record_steps(page) -> None:
    """From the next page load on, record every step the page shows (see `saw_step`)."""
    page.add_init_script(STEP_RECORDER)


def saw_step(page, step: str, timeout: float | None = None) -> None:
    """Wait until the page has shown `step` since it loaded, even if it shows another one by now."""
    page.wait_for_function(f"(window.edgeSteps || []).includes({step!r})",
                           **({} if timeout is None else {"timeout": timeout}))


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
