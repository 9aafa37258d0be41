"""The supervisor: one asyncio process per Pi running the configured services.

Each service runs under a `ServiceRunner`: a crash restarts that service alone, with jittered
exponential backoff, and a circuit breaker stops retrying after too many crashes in a window.
The device `status` shows each service ok/degraded/down. systemd's watchdog is fed only while
every critical service (pager, locker) is running, healthy and making progress.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import socket
import time
from pathlib import Path
from typing import Any, Callable

from edge import __version__
from edge.config import SERVICE_CLASSES, Config, SupervisorConfig, import_object
from edge.device import DeviceService
from edge.mqtt import CommandDispatcher, Reporter
from edge.security import load_key
from edge.service import Service, ServiceContext
from edge.store import Store

log = logging.getLogger(__name__)

LOOP_LAG_LIMIT_S = 5.0  # an event loop blocked this long is wedged: stop feeding the watchdog
# Services stopped first on shutdown: the locker turns its coils off before anything else.
STOP_FIRST = ("locker",)


def sd_notify(message: str) -> bool:
    """Send one sd_notify datagram (READY=1, WATCHDOG=1, STOPPING=1); False outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)
        return True
    except OSError as err:
        log.warning("sd_notify(%s) failed: %s", message, err)
        return False


def watchdog_interval_s() -> float | None:
    usec = os.environ.get("WATCHDOG_USEC")
    return int(usec) / 2e6 if usec and usec.isdigit() else None


class ServiceRunner:
    """Runs one service: start, run, restart on crash with backoff, breaker after repeated crashes."""

    def __init__(self, name: str, factory: Callable[[], Service], policy: SupervisorConfig,
                 *, clock: Callable[[], float] = time.monotonic, on_change: Callable[[], None] = lambda: None):
        self.name, self.factory, self.policy = name, factory, policy
        self.clock, self.on_change = clock, on_change
        self.service: Service | None = None
        self.running = False
        self.breaker_open = False
        self.crashes: list[float] = []
        self.restarts = 0

    def health(self) -> str:
        if self.breaker_open:
            return "down"
        if not self.running or self.service is None:
            return "degraded"
        try:
            state = self.service.health()
        except Exception:
            log.exception("%s: health() raised", self.name)
            return "degraded"
        return state if state in ("ok", "degraded", "down") else "degraded"

    def progressing(self) -> bool:
        """False when the service declared a heartbeat and has not beaten it in time."""
        service = self.service
        if service is None or service.wedged_after_s is None:
            return True
        return time.monotonic() - service.last_heartbeat <= service.wedged_after_s

    async def run_forever(self) -> None:
        backoff = self.policy.backoff_initial_s
        while True:
            service = self.factory()
            self.service = service
            try:
                await service.start()
                self.running = True
                self.on_change()
                backoff = self.policy.backoff_initial_s if self.restarts == 0 else backoff
                await service.run()
                raise RuntimeError("run() returned: a service's main loop must not end")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("service %s crashed", self.name)
            self.running = False
            await self._stop_quietly(service)
            self.restarts += 1
            now = self.clock()
            self.crashes = [t for t in self.crashes if now - t < self.policy.breaker_window_s] + [now]
            if len(self.crashes) >= self.policy.breaker_failures:
                log.error("service %s crashed %d times in %.0f s: down for %.0f s",
                          self.name, len(self.crashes), self.policy.breaker_window_s, self.policy.breaker_cooldown_s)
                self.breaker_open = True
                self.on_change()
                await asyncio.sleep(self.policy.breaker_cooldown_s)
                self.breaker_open, self.crashes = False, []
                backoff = self.policy.backoff_initial_s
                continue
            self.on_change()
            delay = backoff * random.uniform(0.8, 1.2)
            log.warning("restarting %s in %.1f s", self.name, delay)
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, self.policy.backoff_max_s)

    async def stop(self) -> None:
        if self.service is not None and self.running:
            self.running = False
            await self._stop_quietly(self.service)

    async def _stop_quietly(self, service: Service) -> None:
        try:
            await asyncio.wait_for(service.stop(), timeout=10)
        except Exception:
            log.exception("service %s failed to stop cleanly", self.name)


class Supervisor:
    """Builds the services of a config, runs them, reports over MQTT, stops cleanly on SIGTERM."""

    def __init__(self, config: Config, *, pin_factory: Any = None, demo: bool = False,
                 service_classes: dict[str, type[Service]] | None = None):
        self.config = config
        self.pin_factory, self.demo = pin_factory, demo
        self.service_classes = service_classes
        self.store: Store | None = None
        self.reporter: Reporter | None = None
        self.dispatcher: CommandDispatcher | None = None
        self.runners: dict[str, ServiceRunner] = {}
        self.peers: dict[str, Service] = {}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._last_status: dict[str, str] = {}
        self._loop_lag_s = 0.0

    # -- building ------------------------------------------------------------------------------
    def _service_class(self, name: str) -> type[Service]:
        if self.service_classes and name in self.service_classes:
            return self.service_classes[name]
        return import_object(SERVICE_CLASSES[name])

    def _factory(self, name: str, cls: type[Service] | None = None) -> Callable[[], Service]:
        cls = cls or self._service_class(name)
        ctx = ServiceContext(
            name=name, site=self.config.site, device=self.config.device, store=self.store,
            config=self.config.services.get(name), data_dir=Path(self.config.data_dir),
            language=self.config.language, peers=self.peers, pin_factory=self.pin_factory, demo=self.demo,
            broker_connected=self.reporter.connected.is_set if self.reporter else None,
        )

        def build() -> Service:
            service = cls(ctx)
            self.peers[name] = service  # peers and the dispatcher always see the live instance
            return service

        return build

    # -- running -------------------------------------------------------------------------------
    async def run(self) -> None:
        """Run until `request_stop()` or SIGTERM/SIGINT; then stop everything in order."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.request_stop)
            except (NotImplementedError, RuntimeError):
                pass
        self.store = Store(self.config.store_path)
        key = load_key(self.config.broker.command_key_file) if self.config.broker.command_key_file else None
        self.dispatcher = CommandDispatcher(self.store, self.peers, site=self.config.site, device=self.config.device,
                                            command_key=key, max_age_s=self.config.broker.command_max_age_s)
        self.reporter = Reporter(self.config.broker, self.store, site=self.config.site, device=self.config.device,
                                 version=__version__, on_command=self._command_from_thread(loop))
        for name in self.config.enabled_services():
            self.runners[name] = ServiceRunner(name, self._factory(name), self.config.supervisor,
                                               on_change=self._report_status)
        # The built-in `device` service (resend of events) needs no config and no runner.
        self._factory("device", DeviceService)()
        for key in [] if self.demo else self.config.simulated():
            log.warning("%s = \"sim\": this service runs on its built-in SIMULATOR, not on real hardware", key)
        self.reporter.set_services(self.health())
        self.reporter.start()
        try:
            self._tasks = [asyncio.create_task(r.run_forever(), name=f"service:{n}") for n, r in self.runners.items()]
            self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
            if self.demo:
                self._tasks.append(asyncio.create_task(self._run_demos(), name="demo"))
            await self._wait_started()
            sd_notify("READY=1")
            log.info("edge %s running on %s/%s: %s", __version__, self.config.site, self.config.device,
                     ", ".join(self.runners) or "no services")
            await self._stop.wait()
        finally:
            await self._shutdown()

    def request_stop(self) -> None:
        self._stop.set()

    def health(self) -> dict[str, str]:
        return {name: runner.health() for name, runner in self.runners.items()}

    def critical_ok(self) -> bool:
        """True when every critical service runs, is not down and is making progress."""
        if self._loop_lag_s > LOOP_LAG_LIMIT_S:
            return False
        for runner in self.runners.values():
            service = runner.service
            if service is not None and service.critical:
                if not runner.running or runner.health() == "down" or not runner.progressing():
                    return False
        return True

    async def _wait_started(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._stop.is_set():
            if all(r.running or r.breaker_open or r.restarts for r in self.runners.values()):
                return
            await asyncio.sleep(0.05)

    def _command_from_thread(self, loop: asyncio.AbstractEventLoop) -> Callable[[str, bytes], None]:
        def on_command(service: str, payload: bytes) -> None:  # paho's thread: hand over, never block
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.dispatcher.dispatch(service, payload)))
        return on_command

    def _report_status(self) -> None:
        status = self.health()
        if status != self._last_status and self.reporter is not None:
            self._last_status = status
            self.reporter.set_services(status)

    async def _housekeeping(self) -> None:
        """Status refresh, watchdog feeding, loop-lag measurement, outbox pruning."""
        interval = watchdog_interval_s()
        tick = min(interval or 1.0, 1.0)
        last_status = 0.0
        while True:
            started = time.monotonic()
            await asyncio.sleep(tick)
            self._loop_lag_s = time.monotonic() - started - tick
            self._report_status()
            if interval is not None and self.critical_ok():
                sd_notify("WATCHDOG=1")
            if time.monotonic() - last_status > self.config.supervisor.status_interval_s:
                last_status = time.monotonic()
                self.reporter.set_services(self.health())
                await asyncio.to_thread(self.store.prune_outbox)

    async def _run_demos(self) -> None:
        await asyncio.sleep(0.5)
        demos = [asyncio.create_task(self._demo_one(name)) for name in self.runners]
        await asyncio.gather(*demos)

    async def _demo_one(self, name: str) -> None:
        runner = self.runners[name]
        while not runner.running:
            await asyncio.sleep(0.1)
        try:
            await runner.service.demo()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("demo of %s failed", name)

    async def _shutdown(self) -> None:
        sd_notify("STOPPING=1")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        order = [n for n in STOP_FIRST if n in self.runners] + [n for n in self.runners if n not in STOP_FIRST]
        for name in order:
            await self.runners[name].stop()
        if self.reporter is not None:
            await asyncio.to_thread(self.reporter.stop)
        if self.store is not None:
            self.store.close()
        log.info("edge stopped")
