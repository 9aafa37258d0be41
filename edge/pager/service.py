"""PagerService: the queue engine, the transmitter link, the counter panels and the re-page timer.

Peers (kiosk, QR, web panels) call the async methods: `issue`, `checkin`, `rejoin`, `call_next`, `recall`,
`no_show`, `transfer`, `done`, `pause`, `rate`, `page`, `view`, `stats`; every route to an action
(MQTT, the counter screen, a GPIO panel) goes through `action`/`handle_command` and the table in
edge/pager/commands.py. Queue state lives in the store (edge/pager/queue.py); pages go through the
transmitter link (edge/pager/link.py: one transmit worker, one page at a time, because the cheap
transmitters have no over-the-air acknowledgement and must not be talked over; outages and
reconnection); the panels are edge/pager/panel.py's `CounterPanels`, the re-page timer
edge/pager/repage.py. This class wires them to the store and the supervisor.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from edge.errors import CommandError
from edge.pager import cards
from edge.pager import config as pager_config
from edge.pager.commands import HANDLERS, SPEC
from edge.pager.link import TransmitterLink
from edge.pager.panel import CounterPanels
from edge.pager.queue import QueueEngine, QueueError
from edge.pager.repage import Repager
from edge.service import Service, check_command

TICK_S = 15.0
REPAGE_CHECK_S = 1.0
PAGE_WAIT_S = 30.0


class PagerService(Service):
    name: ClassVar[str] = "pager"
    critical: ClassVar[bool] = True
    commands: ClassVar[dict[str, dict[str, Any]]] = SPEC  # edge/pager/commands.py

    def __init__(self, ctx):
        super().__init__(ctx)
        self.config: pager_config.PagerConfig = ctx.config
        self.engine: QueueEngine | None = None
        self.link = TransmitterLink(self.config, data_dir=ctx.data_dir, clock=ctx.clock, sleep=ctx.sleep,
                                    still_called=self._still_called, on_offline=self._alarm_offline,
                                    on_online=self._alarm_online)
        self.counter_panels = CounterPanels(self.config, pin_factory=ctx.pin_factory, action=self.action,
                                            view=lambda: self.engine.view())
        self.repager = Repager(self.config.repage_s, clock=ctx.clock, recall=self.recall)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self.engine = QueueEngine(self.ctx.store, self.config, clock=self.ctx.clock,
                                  extra_state=lambda: {"transmitter": self.link.state()})
        if not self.link.open():
            self._alarm_offline()
        self.counter_panels.open()
        self.engine.tick()
        self.counter_panels.show()
        self.publish_state()

    async def run(self) -> None:
        helpers = self.link.tasks()
        last_tick = self.ctx.clock()
        try:
            while True:
                await self.ctx.sleep(REPAGE_CHECK_S if self.config.repage_s else TICK_S)
                if self.config.repage_s:
                    await self.repager.repage_due(self.engine.view()["counters"])
                if self.ctx.clock() - last_tick >= TICK_S or not self.config.repage_s:
                    last_tick = self.ctx.clock()
                    await asyncio.to_thread(self.engine.tick)
                    self.link.check_port()
                for task in helpers:
                    if task.done():
                        task.result()  # a crashed helper is a crashed service: the supervisor restarts us
        finally:
            for task in helpers:
                task.cancel()

    async def stop(self) -> None:
        self.counter_panels.close()
        self.link.close()

    def health(self) -> str:
        return "ok" if self.online else "degraded"

    def snapshot(self) -> dict:
        view = self.engine.view() if self.engine else {}
        return {**view, "transmitter": self.link.state()}

    def publish_state(self, tx=None) -> None:
        if tx is not None:
            self.engine.publish(tx)
            return
        with self.ctx.store.transaction() as own:
            self.engine.publish(own)

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
            self.link.queue_page(result["card"], result["ticket"])
        self.counter_panels.show()
        return result

    async def recall(self, counter: str) -> dict:
        result = await asyncio.to_thread(self.engine.recall, counter)
        self.repager.paged(counter, result["ticket"])
        self.link.queue_page(result["card"], result["ticket"])
        return result

    async def no_show(self, counter: str) -> dict:
        result = await asyncio.to_thread(self.engine.no_show, counter)
        self.counter_panels.show()
        return result

    async def transfer(self, counter: str, to_service: str | None = None, to_counter: str | None = None) -> dict:
        result = await asyncio.to_thread(self.engine.transfer, counter, to_service, to_counter)
        self.counter_panels.show()
        return result

    async def done(self, counter: str) -> dict:
        result = await asyncio.to_thread(self.engine.done, counter)
        self.counter_panels.show()
        return result

    async def pause(self, counter: str, paused: bool = True) -> dict:
        result = await asyncio.to_thread(self.engine.pause, counter, paused)
        self.counter_panels.show()
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
        done = self.link.queue_page(card, None)
        try:
            attempts = await asyncio.wait_for(asyncio.shield(done), PAGE_WAIT_S)
        except asyncio.TimeoutError as err:
            raise CommandError(f"transmitter offline: page to card {card} still queued ({self.link.last_error})") from err
        return {"card": card, "attempts": attempts}

    def view(self) -> dict:
        """Now-serving per counter, queue lengths and estimated waits (wall display, counter panel)."""
        view = self.engine.view()
        # cards_low: the same rule as central's alarm (edge.pager.cards), so reception warns at the same point
        return {**view, "cards_low": cards.is_low(view["cards_free"], view["cards_out"]),
                "transmitter": self.link.state()}

    def stats(self, day: str | None = None) -> dict:
        return self.engine.stats(day)

    def counters(self) -> list[str]:
        """The counters of this office, as configured ([pager] counters)."""
        return list(self.config.counters)

    def priorities(self) -> list[str]:
        """The priority classes a desk may give a ticket ([pager] priority_classes)."""
        return list(self.config.priority_classes)

    def utc_offset_h(self) -> float:
        """The office's hours from UTC ([pager] utc_offset_h): the queue day and the screens' clock."""
        return float(self.config.utc_offset_h)

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

    # -- the parts, as screens and tests look at them ---------------------------------------
    @property
    def panels(self) -> list:
        """The counter panels (edge.pager.panel.CounterPanel) opened at start, [] after stop."""
        return self.counter_panels.panels

    @property
    def sim(self):
        """The built-in transmitter simulator (`port = "sim"`), else None."""
        return self.link.sim

    @property
    def online(self) -> bool:
        return self.link.online

    # -- what the transmitter link asks of the queue and the store (edge/pager/link.py) -------
    def _still_called(self, ticket: str, card: int) -> bool:
        return self.engine.still_called(ticket, card)

    def _alarm_offline(self) -> None:
        self.log.warning("pager: transmitter %s on %s offline: %s", self.config.driver, self.link.port,
                         self.link.last_error)
        with self.ctx.store.transaction() as tx:
            tx.emit(self.name, "transmitter_offline", alarm=True, driver=self.config.driver, port=self.link.port,
                    error=self.link.last_error)
            self.publish_state(tx)

    def _alarm_online(self) -> None:
        self.log.info("pager: transmitter %s on %s back online", self.config.driver, self.link.port)
        with self.ctx.store.transaction() as tx:
            tx.emit(self.name, "transmitter_online", driver=self.config.driver, port=self.link.port)
            self.publish_state(tx)

    # -- demo -------------------------------------------------------------------------------
    async def demo(self) -> None:
        """An office day on the simulator: a morning rush the counters clear (edge.pager.rush)."""
        from edge.pager.rush import MorningRush

        await MorningRush(self, sleep=self.ctx.sleep).run()
