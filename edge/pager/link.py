"""The pager's transmitter link: port (or the built-in simulator), one page at a time, outages.

`TransmitterLink` opens the transmitter the `[pager]` section names (edge.pager.setup's settings,
the port through edge.hw.serial, or pigpio waves on a GPIO), runs the transmit worker that hands
pages to the driver one at a time (the cheap transmitters have no over-the-air acknowledgement
and must not be talked over), notices an outage (a port error, a USB port gone from /dev), keeps
the calls queued meanwhile and reopens the port with a doubling, jittered, capped backoff. With
`keepalive_s` it also sends the LRS anti-theft keep-alive through the same queue.

It knows nothing of tickets or the store: the service tells it whether a ticket is still called
on a card (`still_called`), and hears the transitions (`on_offline`, `on_online`) to write the
`transmitter_offline`/`transmitter_online` events. Its loops wait through the service's `sleep`
(ServiceContext.sleep: asyncio.sleep on a device, a test's FakeClock.wait).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from pathlib import Path
from typing import Any, Awaitable, Callable

from edge.errors import ConfigError, DeviceError
from edge.pager import config as pager_config
from edge.pager import setup
from edge.pager.driver import PagerDriver, make_transmitter, open_transport
from edge.pager.protocol import FrameError
from edge.pager.queue import QueueError

RECONNECT_FIRST_S = 0.1
KEEPALIVE = 0  # "card" of a keep-alive in the page queue (card 0 is never a real page)
KEEPALIVE_CHECK_S = 0.5

log = logging.getLogger("edge.pager")


class TransmitterLink:
    def __init__(self, config: pager_config.PagerConfig, *, data_dir: Path, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[Any]], still_called: Callable[[str, int], bool],
                 on_offline: Callable[[], None], on_online: Callable[[], None]):
        self.config = config
        self.data_dir = data_dir
        self.clock, self.sleep = clock, sleep
        self.still_called = still_called  # in the transmit thread: is this ticket still called on this card?
        self.on_offline, self.on_online = on_offline, on_online
        self.sim = None
        self.driver: Any = None  # PagerDriver, or PigpioOokTransmitter for `port = "pigpio:N"`
        self.online = False
        self.last_error = ""
        self.open_pi = None  # pigpio connector for `port = "pigpio:N"`; tests inject a fake
        self.keepalives_sent = 0
        self._pages: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected: asyncio.Event | None = None
        self._lost: asyncio.Event | None = None
        self._keepalive_queued = False
        self._card_ticket: dict[int, str] = {}  # for log lines: which ticket a card was paged for

    # -- lifecycle --------------------------------------------------------------------------
    def open(self) -> bool:
        """On the service's loop, at start: the simulator if asked, then the port; True when usable."""
        self._loop = asyncio.get_running_loop()
        self._pages = asyncio.Queue()
        self._connected, self._lost = asyncio.Event(), asyncio.Event()
        if self.config.port == "sim":
            self._start_sim()
        if self._connect():
            self._connected.set()
            return True
        return False

    def tasks(self) -> list[asyncio.Task]:
        """The link's background work, for the service's run(): a crashed one is a crashed service."""
        tasks = [asyncio.create_task(self._transmit_worker(), name="pager-transmit"),
                 asyncio.create_task(self._reconnect_loop(), name="pager-reconnect")]
        if self.config.keepalive_s:
            tasks.append(asyncio.create_task(self._keepalive_loop(), name="pager-keepalive"))
        return tasks

    def close(self) -> None:
        if self.driver:
            self.driver.close()
            self.driver = None
        if self.sim:
            self.sim.stop()
            self.sim = None

    def state(self) -> dict:
        """The `transmitter` part of the pager's view and retained state."""
        return {"driver": self.config.driver, "online": self.online}

    @property
    def port(self) -> str:
        return self.sim.path if self.sim else self.config.port

    # -- pages ------------------------------------------------------------------------------
    def queue_page(self, card: int, ticket: str | None) -> asyncio.Future:
        """Queue a page; `ticket` None is a technician's test page (always sent). The future gets
        the attempts the driver needed, or the QueueError of a page the transmitter refused."""
        done = self._loop.create_future()
        self._card_ticket[card] = ticket or "test page"
        self._pages.put_nowait((card, ticket, done))
        return done

    async def _transmit_worker(self) -> None:
        while True:
            card, ticket, done = await self._pages.get()
            if card == KEEPALIVE:
                await self._send_keepalive()
                continue
            attempts = await self._transmit(card, ticket)
            if not done.done():
                if isinstance(attempts, Exception):
                    done.set_exception(attempts)
                else:
                    done.set_result(attempts)

    async def _transmit(self, card: int, ticket: str | None) -> int | Exception:
        """Send one page, waiting through an outage (the call stays queued until the box returns)."""
        while True:
            await self._connected.wait()
            driver = self.driver
            try:
                result = await asyncio.to_thread(self._page_if_still_called, driver, card, ticket)
                if result is None:
                    log.info("pager: page to card %d dropped: %s is no longer called", card, ticket)
                    return 0
                return result.attempts
            except FrameError as err:
                log.warning("pager: page to card %d for %s refused: %s", card, ticket, err)
                return QueueError(f"page to card {card} refused: {err}")
            except DeviceError as err:
                self.go_offline(str(err))

    def _page_if_still_called(self, driver: Any, card: int, ticket: str | None):
        """In the transmit thread: check, then page (one hop off the loop, not two: the tail latency
        of a press on a busy Pi is mostly thread hand-offs)."""
        if ticket is not None and not self.still_called(ticket, card):
            return None
        return driver.page(card)

    # -- LRS anti-theft keep-alive ----------------------------------------------------------
    async def _keepalive_loop(self) -> None:
        """A keep-alive every keepalive_s while online, through the page queue so it never
        interleaves with a page; at most one waits in the queue (a backlog of keep-alives is useless)."""
        last = self.clock()
        while True:
            await self.sleep(KEEPALIVE_CHECK_S)
            if self.clock() - last < self.config.keepalive_s:
                continue
            last = self.clock()
            if self._connected.is_set() and not self._keepalive_queued:
                self._keepalive_queued = True
                self._pages.put_nowait((KEEPALIVE, None, self._loop.create_future()))

    async def _send_keepalive(self) -> None:
        self._keepalive_queued = False
        driver = self.driver
        if driver is None or not self._connected.is_set():
            return  # offline: the next one goes out after the reconnect
        try:
            await asyncio.to_thread(driver.keepalive)
            self.keepalives_sent += 1
        except FrameError as err:  # the config check makes this unreachable; never crash the worker on it
            log.warning("pager: keep-alive refused: %s", err)
        except DeviceError as err:
            self.go_offline(str(err))

    # -- outages ----------------------------------------------------------------------------
    async def _reconnect_loop(self) -> None:
        """Reopen a lost transmitter with a doubling, jittered, capped backoff (pages or not)."""
        delay = RECONNECT_FIRST_S
        while True:
            if self.driver is not None:
                await self._lost.wait()
                self._lost.clear()
                delay = RECONNECT_FIRST_S
                continue
            # The port opens in a worker thread; the link turns online here, on the loop, in the same
            # step as its event: nothing (a test, the port-vanished check) sees it online without one.
            if self._take(await asyncio.to_thread(self._open_driver)):
                self.on_online()
                self._connected.set()
                continue
            await self.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.config.reconnect_max_s)

    def go_offline(self, error: str) -> None:
        self.last_error = error
        self._connected.clear()
        if self.driver:
            self.driver.close()
            self.driver = None
        self._lost.set()
        if self.online:
            self.online = False
            self.on_offline()

    def check_port(self) -> None:
        # A USB transmitter that was unplugged vanishes from /dev: notice it before the next page.
        port = self.port
        if self.online and port.startswith("/") and not os.path.exists(port):
            self.go_offline(f"{port} disappeared")

    # -- opening ----------------------------------------------------------------------------
    def _start_sim(self) -> None:
        from edge.pager.sim import TransmitterSim

        settings = setup.sim_settings(setup.settings_from_config(self.config))
        self.sim = TransmitterSim(self.config.driver, link_dir=self.data_dir, ook_protocol=self.config.ook_protocol,
                                  on_page=self._on_sim_page, **settings)
        self.sim.start()
        log.info("pager: transmitter simulator (%s) on %s", self.config.driver, self.sim.path)

    def _on_sim_page(self, card: int) -> None:
        log.info("pager: card %d vibrated for %s", card, self._card_ticket.get(card, "?"))

    def _connect(self) -> bool:
        """On the loop: open the transmitter and use it; True when usable."""
        return self._take(self._open_driver())

    def _take(self, driver: Any) -> bool:
        """On the loop: use `driver`, or stay offline when None (`last_error` says why)."""
        if driver is None:
            return False
        self.driver, self.online = driver, True
        return True

    def _open_driver(self) -> Any:
        """Open the port and build the driver, or None (reason in `last_error`). It changes no other
        state, so the reconnect loop runs it in a worker thread and takes the result on the loop."""
        cfg = self.config
        if cfg.port.startswith("pigpio:"):
            return self._open_pigpio()
        try:
            codec = make_transmitter(cfg.driver, **setup.settings_from_config(cfg))
        except FrameError as err:
            raise ConfigError(f"pager: transmitter settings refused: {err}") from err
        try:
            transport = open_transport(self.port, baud=cfg.baud or codec.baud, rtscts=cfg.cts_flow,
                                       timeout_s=cfg.ack_timeout_s)
        except DeviceError as err:
            self.last_error = str(err)
            return None
        return PagerDriver(transport, codec, retries=cfg.retries, ack_timeout_s=cfg.ack_timeout_s,
                           cts_flow=cfg.cts_flow)

    def _open_pigpio(self) -> Any:
        from edge.pager import ook_pigpio

        try:
            gpio = ook_pigpio.parse_port(self.config.port)
            pi, pulse = (self.open_pi or ook_pigpio.open_pi)()
        except DeviceError as err:
            self.last_error = str(err)
            return None
        return ook_pigpio.PigpioOokTransmitter(pi, gpio, protocol=self.config.ook_protocol,
                                               system=self.config.system_id, pulse=pulse)
