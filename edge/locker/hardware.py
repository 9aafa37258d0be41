"""The locker's hardware link: config -> driver (edge.locker.setup), the serial port, reconnecting.

Part of LockerService (edge/locker/service.py), as a mixin: it sets `driver` and `sim` and keeps
`_port_lost`; the door poll (doors.py) calls `_maybe_reconnect` before each round.
"""

from __future__ import annotations

import logging
from typing import Any

from edge.errors import DeviceNotReady
from edge.locker import setup, timing
from edge.locker.config import LockerConfig
from edge.locker.driver import SerialLockerDriver
from edge.service import ServiceContext

log = logging.getLogger("edge.locker.service")  # the service's one logger, as before the split

RECONNECT_MAX_S = 30.0


class Hardware:
    """Builds the driver (and the simulator behind `port = "sim"`), reopens a lost serial port with backoff."""

    ctx: ServiceContext
    config: LockerConfig
    clock: Any
    driver: Any
    sim: Any
    _by_board: dict[int, dict[int, int]]
    _port_lost: bool
    _reconnect_at: float
    _reconnect_delay: float

    def _build_driver(self) -> None:
        cfg = self.config  # the wiring is edge.locker.setup's, shared with `edge locker`
        if cfg.driver == "gpio":
            self.driver, self.sim = setup.gpio_driver(simulated=cfg.port == "sim", polarity=cfg.polarity,
                                                      pin_factory=self.ctx.pin_factory, relay_pins=cfg.gpio.relay_pins,
                                                      sensor_pins=cfg.gpio.sensor_pins,
                                                      sleep=timing.blocking_sleep(self.clock))
            return
        protocol = setup.serial_protocol(cfg.driver, cfg.polarity)
        if cfg.port == "sim":
            self.sim = setup.bus_sim(cfg.driver, self._by_board, polarity=cfg.polarity,
                                     auto_close_s=cfg.sim.auto_close_s)
        # The coil window between two opens is timed on the clock's time (timing.py: real and
        # monotonic on a device, virtual under a test's clock).
        self.driver = SerialLockerDriver(protocol, transport=None, reply_timeout_s=cfg.reply_timeout_s,
                                         retries=cfg.retries, clock=timing.interval_clock(self.clock),
                                         sleep=timing.blocking_sleep(self.clock))
        self._connect()

    def _port_name(self) -> str:
        return self.sim.path if self.sim is not None and hasattr(self.sim, "path") else self.config.port

    def _connect(self) -> bool:
        cfg = self.config
        try:
            transport = setup.open_bus(self._port_name(), self.driver.protocol, baud=cfg.baud,
                                       timeout_s=cfg.reply_timeout_s)
        except DeviceNotReady as err:
            if not self._port_lost:
                log.warning("locker: cannot open %s: %s (retrying)", self._port_name(), err)
            self._port_lost = True
            return False
        self.driver.attach(transport)
        if self._port_lost:
            log.info("locker: port %s is back", self._port_name())
        self._port_lost, self._reconnect_delay = False, 0.5
        return True

    def _maybe_reconnect(self) -> None:
        if self.config.driver == "gpio" or self.driver.transport is not None:
            return
        now = self.clock()
        if now < self._reconnect_at:
            return
        if not self._connect():
            self._reconnect_delay = min(self._reconnect_delay * 2, RECONNECT_MAX_S)
            self._reconnect_at = now + self._reconnect_delay
