"""KioskService: the device's local web screens, an aiohttp app inside the supervisor's event loop.

Pages are plain HTML/CSS/JS from `static/` (no CDN: the device may have no internet); live
updates go out as server-sent events (the edge.kiosk.web package). The pickup journey is `flows.PickupFlow`;
this module pairs the web app's setup with its teardown, follows the QR camera, drives the
"get result" button and gathers the technician's status.
"""

from __future__ import annotations

import asyncio
import errno

from aiohttp import web

from edge.errors import ConfigError, EdgeError
from edge.kiosk.flows import Limits, PickupFlow
from edge.kiosk.staff import StaffAuth
from edge.kiosk.messages import explain
from edge.kiosk.voice import Voice
from edge.kiosk.status_reasons import health_reasons
from edge.qr.codes import PROCEDURE_KINDS, RECEIPT_KIND
from edge.kiosk.web import build_app
from edge.kiosk.web.common import Latest
from edge.kiosk.web.reception import pager_priorities, queue_known, queue_name
from edge.kiosk.web.status import broker_link, cpu_temperature, disk_usage
from edge.service import Service


class KioskService(Service):
    name = "kiosk"

    def __init__(self, ctx):
        super().__init__(ctx)
        cfg = ctx.config
        self.host, self.port = cfg.host, cfg.port
        self.language = ctx.language if cfg.language == "device" else cfg.language
        self.limits = Limits.from_config(cfg)
        self.counters = list(cfg.counters)
        self.button_pin, self.button_bounce_s = cfg.button_pin, cfg.button_bounce_s
        self.flow: PickupFlow | None = None
        self.runner: web.AppRunner | None = None
        self.button = None
        self.url: str | None = None
        self._closing = asyncio.Event()
        self.voice = Voice(cfg.display_voice, cfg.display_voice_text)  # the wall display's spoken call
        self.voice_mode, self.highlight_s = cfg.display_voice, cfg.display_highlight_s
        self.reception = Latest()  # the last procedure the desk camera read, for the reception screen
        self._problems = cfg.problems()
        self.staff = StaffAuth(cfg.staff_pins, required=cfg.staff_login, session_s=cfg.staff_session_s,
                               attempts=cfg.staff_attempts, lockout_s=cfg.staff_lockout_s, clock=ctx.clock,
                               store=ctx.store)  # lockouts survive a restart

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._problems:  # also for a config built in code: never serve the queue controls open on the LAN
            raise ConfigError(self._problems)
        self.flow = PickupFlow(store=self.ctx.store, locker=self.ctx.locker,
                               vision=self.ctx.vision, limits=self.limits,
                               clock=self.ctx.clock, language=self.language)
        runner = web.AppRunner(build_app(self), handle_signals=False, access_log=None)
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, self.host, self.port, reuse_address=True).start()
            except OSError as err:
                if not (self.ctx.demo and err.errno == errno.EADDRINUSE):
                    raise
                # Only under `edge demo` (another demo may hold the port): said out loud, never on a device.
                self.log.warning("kiosk: port %d is taken (%s); the demo uses a free port instead", self.port, err)
                await web.TCPSite(runner, self.host, 0).start()
        except OSError:
            await runner.cleanup()  # what started is torn down; nothing half-open is left
            raise
        self.runner = runner
        port = runner.addresses[0][1] if runner.addresses else self.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{port}"
        if self.button_pin:
            from edge.kiosk.button import GetResultButton
            self.button = GetResultButton(self.button_pin, self._button_pressed, loop=asyncio.get_running_loop(),
                                          pin_factory=self.ctx.pin_factory, bounce_s=self.button_bounce_s)
        self.log.info("kiosk: screens at %s (%s)", self.url, ", ".join(self.screen_urls().values()))

    async def run(self) -> None:
        scans = asyncio.create_task(self._follow_qr())
        try:
            while True:
                await self.ctx.sleep(1.0)  # the injected clock's wait in a test, asyncio.sleep on a device
                await self.flow.tick()
                if scans.done():  # a failure to follow the camera must not end quietly
                    scans.result()
        finally:
            scans.cancel()

    async def _follow_qr(self) -> None:
        """Codes the QR service reads from a camera: receipts drive the kiosk, procedures the reception screen."""
        qr, queue = None, None
        try:
            while True:
                peer = self.ctx.qr()
                if peer is not qr:  # started, restarted or gone: (re)subscribe to the live instance
                    if qr is not None and queue is not None:
                        qr.unsubscribe(queue)
                    qr, queue = peer, (peer.subscribe() if peer is not None else None)
                if queue is None:
                    await self.ctx.sleep(1.0)
                    continue
                try:
                    item = await asyncio.wait_for(queue.get(), 1.0)
                except asyncio.TimeoutError:
                    continue
                await self._scanned(item)
        finally:
            if qr is not None and queue is not None:
                qr.unsubscribe(queue)

    async def _scanned(self, item: dict) -> None:
        kind = item.get("kind")
        if kind == RECEIPT_KIND and item.get("code") and self.ctx.locker() is not None:
            await self.flow.scanned(item["code"])
        elif kind in PROCEDURE_KINDS:
            procedure = item.get("procedure")
            if isinstance(procedure, dict):
                procedure = {**procedure, "queue_name": queue_name(self, procedure.get("queue_service")),
                             "queue_known": queue_known(self, procedure.get("queue_service"))}
            self.reception.publish({"kind": kind, "code": item.get("code"), "procedure": procedure,
                                    "ticket": item.get("ticket"), "card": item.get("card"),
                                    "refused": item.get("refused"), "priorities": pager_priorities(self),
                                    # the refusal as the screen says it (edge.kiosk.messages)
                                    "refused_msg": explain(item["refused"]) if item.get("refused") else None})

    async def stop(self) -> None:
        self._closing.set()  # open event streams end now, so cleanup does not wait for them
        if self.flow is not None:
            self.flow.wake()
        self.reception.publish(None)
        if self.button is not None:
            self.button.close()
            self.button = None
        if self.flow is not None:
            await self.flow.close()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def health(self) -> str:
        return "ok" if self.runner is not None else "down"

    def snapshot(self) -> dict:
        view = self.flow.view() if self.flow else {}
        return {"step": view.get("step", "start"), "url": self.url}

    def screen_urls(self) -> dict[str, str]:
        urls = {"kiosk": f"{self.url}/kiosk", "reception": f"{self.url}/reception",
                "display": f"{self.url}/display", "loading": f"{self.url}/loading", "status": f"{self.url}/status"}
        pager = self.ctx.pager()
        counters = self.counters or (pager.counters() if pager is not None else None) or ["1"]
        for counter in counters:
            urls[f"counter {counter}"] = f"{self.url}/counter?c={counter}"
        return urls

    async def demo(self) -> None:
        """Print where the screens are, load results to collect, then press the (simulated) 'get result' button once."""
        from edge.kiosk.demo_results import RESULTS, load_demo_results, scanned_receipt_result

        lines = [f"  {name:<12} {url}" for name, url in self.screen_urls().items()]
        print("kiosk: screens on this device (open them in a browser):\n" + "\n".join(lines), flush=True)
        locker = self.ctx.locker()
        if locker is not None:
            qr = self.ctx.qr()
            qr_demo = qr is not None and qr.snapshot().get("camera") == "sim"  # the demo camera shows a receipt
            results = RESULTS + ((scanned_receipt_result(self.ctx.site),) if qr_demo else ())
            loaded = await load_demo_results(locker, self.ctx.peer("vision"), results=results)
            print("kiosk: results waiting in the locker, to collect at " + f"{self.url}/kiosk:\n"
                  + "\n".join(loaded), flush=True)
        pin = self.button.mock_pin() if self.button is not None else None
        if pin is None:  # no button, or a real one: nobody to press it
            return
        await self.ctx.sleep(3.0)  # time to look at the kiosk screen before the press
        pin.drive_low()  # pressed (pull-up button): gpiozero calls back on its thread
        await self.ctx.sleep(0.2)
        pin.drive_high()
        view = self.flow.view()
        print(f"kiosk: the 'get result' button was pressed: the screen shows step '{view['step']}'", flush=True)
        await self.ctx.sleep(5.0)
        await self.flow.cancel(view.get("session"))
        print("kiosk: the demo session was cancelled; the screen is back at the start", flush=True)

    def _button_pressed(self) -> None:
        asyncio.ensure_future(self.flow.start(source="button"))

    # -- status page data ----------------------------------------------------------------------------
    def device_status(self) -> dict:
        services = {}
        for name, peer in sorted(self.ctx.peers.items()):
            try:
                services[name] = peer.health()
            except Exception as err:  # a peer's health() must not take the status page down
                services[name] = f"degraded ({err})"
        alarms, reasons = [], {}
        for name, peer in sorted(self.ctx.peers.items()):
            try:  # the retained snapshot lists alarms (a view may only count them)
                snap = peer.snapshot() if peer is not self else {}
            except EdgeError:
                snap = {}
            if name in services:  # why it is not "ok", in words (edge.kiosk.status_reasons)
                reasons[name] = health_reasons(name, services[name], snap)
            found = snap.get("alarms") if isinstance(snap, dict) else None
            for alarm in found if isinstance(found, list) else []:
                alarms.append({"service": name, **(alarm if isinstance(alarm, dict) else {"alarm": str(alarm)})})
        return {"site": self.ctx.site, "device": self.ctx.device, "services": services, "reasons": reasons,
                "alarms": alarms,
                "broker": broker_link(self.ctx.store, self.ctx.clock, self.ctx.broker_connected), "disk": disk_usage(self.ctx.data_dir),
                "temperature_c": cpu_temperature()}
