"""PagerService: the queue engine, the transmitter (with reconnection) and the counter panels.

Peers (kiosk, QR, web panels) call the async methods: `issue`, `checkin`, `rejoin`, `call_next`, `recall`,
`no_show`, `transfer`, `done`, `pause`, `rate`, `page`, `view`, `stats`. Queue state lives in
the store (edge.pager.queue); pages go through one transmit worker, one at a time, because the
cheap transmitters have no over-the-air acknowledgement and must not be talked over.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any, ClassVar

from edge.errors import CommandError, ConfigError, DeviceError
from edge.pager import cards
from edge.pager import config as pager_config
from edge.pager import setup
from edge.pager.commands import HANDLERS, SPEC
from edge.pager.driver import PagerDriver, make_transmitter, open_transport
from edge.pager.protocol import FrameError
from edge.pager.queue import QueueEngine, QueueError
from edge.service import Service, check_command

TICK_S = 15.0
REPAGE_CHECK_S = 1.0
RECONNECT_FIRST_S = 0.1
PAGE_WAIT_S = 30.0
KEEPALIVE = 0  # "card" of a keep-alive in the page queue (card 0 is never a real page)
KEEPALIVE_CHECK_S = 0.5


class PagerService(Service):
    name: ClassVar[str] = "pager"
    critical: ClassVar[bool] = True
    commands: ClassVar[dict[str, dict[str, Any]]] = SPEC  # edge/pager/commands.py

    def __init__(self, ctx):
        super().__init__(ctx)
        self.config: pager_config.PagerConfig = ctx.config
        self.engine: QueueEngine | None = None
        self.sim = None
        self.driver: PagerDriver | None = None
        self.online = False
        self.last_error = ""
        self.panels: list = []
        self._pages: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._card_ticket: dict[int, str] = {}  # for log lines: which ticket a card was paged for
        self._last_page: dict[tuple[str, str], float] = {}  # (counter, ticket) -> last page, for repage_s
        self.open_pi = None  # pigpio connector for `port = "pigpio:N"`; tests inject a fake
        self._connected: asyncio.Event | None = None
        self._lost: asyncio.Event | None = None
        self._keepalive_queued = False
        self.keepalives_sent = 0

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pages = asyncio.Queue()
        self._connected, self._lost = asyncio.Event(), asyncio.Event()
        self.engine = QueueEngine(self.ctx.store, self.config, clock=self.ctx.clock,
                                  extra_state=lambda: {"transmitter": self._transmitter_state()})
        if self.config.port == "sim":
            self._start_sim()
        if self._connect():
            self._connected.set()
        else:
            self._alarm_offline()
        self._start_panels()
        self.engine.tick()
        self._update_leds()
        self.publish_state()

    async def run(self) -> None:
        worker = asyncio.create_task(self._transmit_worker(), name="pager-transmit")
        reconnector = asyncio.create_task(self._reconnect_loop(), name="pager-reconnect")
        helpers = [worker, reconnector]
        if self.config.keepalive_s:
            helpers.append(asyncio.create_task(self._keepalive_loop(), name="pager-keepalive"))
        last_tick = self.ctx.clock()
        try:
            while True:
                await asyncio.sleep(REPAGE_CHECK_S if self.config.repage_s else TICK_S)
                await self._repage_due()
                if self.ctx.clock() - last_tick >= TICK_S or not self.config.repage_s:
                    last_tick = self.ctx.clock()
                    await asyncio.to_thread(self.engine.tick)
                    self._check_port()
                for task in helpers:
                    if task.done():
                        task.result()  # a crashed helper is a crashed service: the supervisor restarts us
        finally:
            for task in helpers:
                task.cancel()

    async def stop(self) -> None:
        for panel in self.panels:
            panel.close()
        self.panels = []
        if self.driver:
            self.driver.close()
            self.driver = None
        if self.sim:
            self.sim.stop()
            self.sim = None

    def health(self) -> str:
        return "ok" if self.online else "degraded"

    def snapshot(self) -> dict:
        view = self.engine.view() if self.engine else {}
        return {**view, "transmitter": self._transmitter_state()}

    def publish_state(self, tx=None) -> None:
        if tx is not None:
            self.engine.publish(tx)
            return
        with self.ctx.store.transaction() as own:
            self.engine.publish(own)

    def _transmitter_state(self) -> dict:
        return {"driver": self.config.driver, "online": self.online}

    # -- the async peer API -----------------------------------------------------------------
    async def issue(self, service: str, priority: str | None = None, source: str = "desk") -> dict:
        return await asyncio.to_thread(self.engine.issue, service, priority, source)

    async def checkin(self, appointment_code: str) -> dict:
        return await asyncio.to_thread(self.engine.checkin, appointment_code)

    async def rejoin(self, ticket: str) -> dict:
        return await asyncio.to_thread(self.engine.rejoin, ticket)

    async def return_card(self, card: int) -> dict:
        return await asyncio.to_thread(self.engine.return_card, card)

    async def call_next(self, counter: str, ticket: str | None = None) -> dict | None:
        result = await asyncio.to_thread(self.engine.call_next, counter, ticket)
        if result:
            self._queue_page(result["card"], result["ticket"])
        self._update_leds()
        return result

    async def recall(self, counter: str) -> dict:
        result = await asyncio.to_thread(self.engine.recall, counter)
        self._last_page[(counter, result["ticket"])] = self.ctx.clock()
        self._queue_page(result["card"], result["ticket"])
        return result

    async def _repage_due(self) -> None:
        """Cheap cards have no acknowledgement: page a called citizen again every repage_s."""
        if not self.config.repage_s:
            return
        now = self.ctx.clock()
        for counter, state in self.engine.view()["counters"].items():
            if state["ticket"] is None:
                continue
            last = max(state["called_at"] or 0, self._last_page.get((counter, state["ticket"]), 0))
            if now - last >= self.config.repage_s:
                try:
                    await self.recall(counter)
                except QueueError:
                    self._last_page[(counter, state["ticket"])] = now  # limit reached: staff decide
        self._last_page = {k: v for k, v in self._last_page.items() if now - v < 3600}

    async def no_show(self, counter: str) -> dict:
        result = await asyncio.to_thread(self.engine.no_show, counter)
        self._update_leds()
        return result

    async def transfer(self, counter: str, to_service: str | None = None, to_counter: str | None = None) -> dict:
        result = await asyncio.to_thread(self.engine.transfer, counter, to_service, to_counter)
        self._update_leds()
        return result

    async def done(self, counter: str) -> dict:
        result = await asyncio.to_thread(self.engine.done, counter)
        self._update_leds()
        return result

    async def pause(self, counter: str, paused: bool = True) -> dict:
        result = await asyncio.to_thread(self.engine.pause, counter, paused)
        self._update_leds()
        return result

    async def resume(self, counter: str) -> dict:
        return await self.pause(counter, False)

    async def book(self, code: str, service: str, slot: float) -> dict:
        """Register an appointment (from the booking system) so its code can be checked in."""
        await asyncio.to_thread(self.engine.add_appointment, code, service, slot)
        return {"code": code, "service": service, "slot": slot}

    async def rate(self, counter: str, score: int) -> dict:
        return await asyncio.to_thread(self.engine.rate, counter, score)

    async def page(self, card: int) -> dict:
        """A technician's test page to one card; waits until the transmitter took it."""
        if isinstance(card, bool) or not isinstance(card, int) or not 1 <= card <= self.config.cards:
            raise QueueError(f"card must be 1..{self.config.cards}, found {card!r}")
        done = self._queue_page(card, None)
        try:
            attempts = await asyncio.wait_for(asyncio.shield(done), PAGE_WAIT_S)
        except asyncio.TimeoutError as err:
            raise CommandError(f"transmitter offline: page to card {card} still queued ({self.last_error})") from err
        return {"card": card, "attempts": attempts}

    def view(self) -> dict:
        """Now-serving per counter, queue lengths and estimated waits (wall display, counter panel)."""
        view = self.engine.view()
        # cards_low: the same rule as central's alarm (edge.pager.cards), so reception warns at the same point
        return {**view, "cards_low": cards.is_low(view["cards_free"], view["cards_out"]),
                "transmitter": self._transmitter_state()}

    def stats(self, day: str | None = None) -> dict:
        return self.engine.stats(day)

    def counters(self) -> list[str]:
        """The counters of this office, as configured ([pager] counters)."""
        return list(self.config.counters)

    def priorities(self) -> list[str]:
        """The priority classes a desk may give a ticket ([pager] priority_classes)."""
        return list(self.config.priority_classes)

    # -- one route for every action (MQTT, the counter screen, a GPIO panel) -------------------
    async def action(self, name: str, args: Any) -> dict:
        """Run action `name` with `args` checked against `commands` exactly as an MQTT command is
        (edge.service.check_command): a screen or a panel can ask nothing MQTT could not."""
        return await self.handle_command(name, check_command(self, name, args))

    async def handle_command(self, type: str, args: dict, cmd_id: str | None = None) -> dict:
        """Run a validated action (the MQTT dispatcher validates first; others call `action`)."""
        handler = HANDLERS.get(type)
        if handler is None:
            raise CommandError(f"pager has no command {type!r}")
        return await handler(self, args)

    # -- transmitter ------------------------------------------------------------------------
    def _start_sim(self) -> None:
        from edge.pager.sim import TransmitterSim

        settings = setup.sim_settings(setup.settings_from_config(self.config))
        self.sim = TransmitterSim(self.config.driver, link_dir=self.ctx.data_dir, ook_protocol=self.config.ook_protocol,
                                  on_page=self._on_sim_page, **settings)
        self.sim.start()
        self.log.info("pager: transmitter simulator (%s) on %s", self.config.driver, self.sim.path)

    def _on_sim_page(self, card: int) -> None:
        self.log.info("pager: card %d vibrated for %s", card, self._card_ticket.get(card, "?"))

    def _port(self) -> str:
        return self.sim.path if self.sim else self.config.port

    def _connect(self) -> bool:
        """Open the port and build the driver; True when the transmitter is usable."""
        cfg = self.config
        if cfg.port.startswith("pigpio:"):
            return self._connect_pigpio()
        try:
            codec = make_transmitter(cfg.driver, **setup.settings_from_config(cfg))
        except FrameError as err:
            raise ConfigError(f"pager: transmitter settings refused: {err}") from err
        try:
            transport = open_transport(self._port(), baud=cfg.baud or codec.baud, rtscts=cfg.cts_flow,
                                       timeout_s=cfg.ack_timeout_s)
        except DeviceError as err:
            self.last_error = str(err)
            return False
        self.driver = PagerDriver(transport, codec, retries=cfg.retries, ack_timeout_s=cfg.ack_timeout_s,
                                  cts_flow=cfg.cts_flow)
        self.online = True
        return True

    def _connect_pigpio(self) -> bool:
        from edge.pager import ook_pigpio

        try:
            gpio = ook_pigpio.parse_port(self.config.port)
            pi, pulse = (self.open_pi or ook_pigpio.open_pi)()
        except DeviceError as err:
            self.last_error = str(err)
            return False
        self.driver = ook_pigpio.PigpioOokTransmitter(pi, gpio, protocol=self.config.ook_protocol,
                                                      system=self.config.system_id, pulse=pulse)
        self.online = True
        return True

    def _queue_page(self, card: int, ticket: str | None) -> asyncio.Future:
        """Queue a page; `ticket` None is a technician's test page (always sent)."""
        done = self._loop.create_future()
        self._card_ticket[card] = ticket or "test page"
        self._pages.put_nowait((card, ticket, done))
        return done

    async def _keepalive_loop(self) -> None:
        """LRS anti-theft: a keep-alive every keepalive_s while online, through the page queue so it
        never interleaves with a page; at most one waits in the queue (a backlog of keep-alives is useless)."""
        last = self.ctx.clock()
        while True:
            await asyncio.sleep(KEEPALIVE_CHECK_S)
            if self.ctx.clock() - last < self.config.keepalive_s:
                continue
            last = self.ctx.clock()
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
            self.log.warning("pager: keep-alive refused: %s", err)
        except DeviceError as err:
            self._go_offline(str(err))

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

    async def _reconnect_loop(self) -> None:
        """Reopen a lost transmitter with a doubling, jittered, capped backoff (pages or not)."""
        delay = RECONNECT_FIRST_S
        while True:
            if self.driver is not None:
                await self._lost.wait()
                self._lost.clear()
                delay = RECONNECT_FIRST_S
                continue
            if await asyncio.to_thread(self._connect):
                self._alarm_online()
                self._connected.set()
                continue
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.config.reconnect_max_s)

    async def _transmit(self, card: int, ticket: str | None) -> int | Exception:
        """Send one page, waiting through an outage (the call stays queued until the box returns)."""
        while True:
            await self._connected.wait()
            driver = self.driver
            try:
                result = await asyncio.to_thread(self._page_if_still_called, driver, card, ticket)
                if result is None:
                    self.log.info("pager: page to card %d dropped: %s is no longer called", card, ticket)
                    return 0
                return result.attempts
            except FrameError as err:
                self.log.warning("pager: page to card %d for %s refused: %s", card, ticket, err)
                return QueueError(f"page to card {card} refused: {err}")
            except DeviceError as err:
                self._go_offline(str(err))

    def _page_if_still_called(self, driver: PagerDriver, card: int, ticket: str | None):
        """In the transmit thread: check, then page (one hop off the loop, not two: the tail latency
        of a press on a busy Pi is mostly thread hand-offs)."""
        if ticket is not None and not self.engine.still_called(ticket, card):
            return None
        return driver.page(card)

    def _go_offline(self, error: str) -> None:
        self.last_error = error
        self._connected.clear()
        if self.driver:
            self.driver.close()
            self.driver = None
        self._lost.set()
        if self.online:
            self.online = False
            self._alarm_offline()

    def _check_port(self) -> None:
        # A USB transmitter that was unplugged vanishes from /dev: notice it before the next page.
        port = self._port()
        if self.online and port.startswith("/") and not os.path.exists(port):
            self._go_offline(f"{port} disappeared")

    def _alarm_offline(self) -> None:
        self.log.warning("pager: transmitter %s on %s offline: %s", self.config.driver, self._port(), self.last_error)
        with self.ctx.store.transaction() as tx:
            tx.emit(self.name, "transmitter_offline", alarm=True, driver=self.config.driver, port=self._port(),
                    error=self.last_error)
            self.publish_state(tx)

    def _alarm_online(self) -> None:
        self.log.info("pager: transmitter %s on %s back online", self.config.driver, self._port())
        with self.ctx.store.transaction() as tx:
            tx.emit(self.name, "transmitter_online", driver=self.config.driver, port=self._port())
            self.publish_state(tx)

    # -- counter panels ---------------------------------------------------------------------
    def _start_panels(self) -> None:
        from edge.pager.panel import CounterPanel

        for name, counter in self.config.counters.items():
            if counter.panel is None:
                continue
            self.panels.append(CounterPanel(name, counter.panel, on_action=self._panel_action,
                                            pin_factory=self.ctx.pin_factory, bounce_s=self.config.bounce_s,
                                            long_press_s=self.config.long_press_s))

    def _panel_action(self, counter: str, action: str, value: Any = None) -> None:
        """Called from gpiozero's thread: run the action on the service's loop."""
        asyncio.run_coroutine_threadsafe(self._do_panel_action(counter, action, value), self._loop)

    async def _do_panel_action(self, counter: str, action: str, value: Any) -> None:
        args: dict[str, Any] = {"counter": counter}
        if action == "pause_toggle":
            action, args["paused"] = "pause", not self.engine.view()["counters"][counter]["paused"]
        elif action == "rate":
            args["score"] = value
        try:
            await self.action(action, args)
        except CommandError as err:  # a queue refusal (QueueError) or bad input
            self.log.info("pager: counter %s %s: %s", counter, action, err)

    def _update_leds(self) -> None:
        if not self.panels:
            return
        counters = self.engine.view()["counters"]
        for panel in self.panels:
            state = counters[panel.counter]
            panel.show_serving(state["ticket"] is not None)
            panel.show_ticket(None if state["paused"] else state["ticket"])  # paused: no number to walk to

    # -- demo -------------------------------------------------------------------------------
    async def demo(self) -> None:
        """An office day on the simulator: a morning rush the counters clear (edge.pager.rush)."""
        from edge.pager.rush import MorningRush

        await MorningRush(self).run()
