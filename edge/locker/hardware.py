"""The locker's hardware link: config -> driver (edge.locker.setup), the serial port, reconnecting.

`LockerHardware` is a collaborator of LockerService (edge/locker/service.py), which exposes its
`driver` and `sim`; the door poll (doors.py) calls `maybe_reconnect` before each round and
`note_failure` when a board does not answer.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from edge.errors import DeviceNotReady
from edge.locker import setup
from edge.locker.config import LockerConfig
from edge.locker.driver import SerialLockerDriver

log = logging.getLogger("edge.locker.service")  # the service's one logger, as before the split

RECONNECT_MAX_S = 30.0


class LockerHardware:
    """Builds the driver (and the simulator behind `port = "sim"`), reopens a lost serial port with backoff.

    It needs the config (driver, port, polarity, timeouts), gpiozero's pin factory, the clock (the
    reconnect backoff), the driver thread's sleep and monotonic clock (the coil window) and the
    wiring, board -> lock -> compartment (the bus simulator answers for those boards). Until
    `build()`, `driver` and `sim` are None.
    """

    def __init__(self, config: LockerConfig, *, pin_factory: Any, clock: Callable[[], float],
                 thread_sleep: Callable[[float], None], monotonic: Callable[[], float],
                 by_board: dict[int, dict[int, int]]):
        self.config = config
        self.pin_factory = pin_factory
        self.clock = clock
        self.thread_sleep, self.monotonic = thread_sleep, monotonic  # the driver's waits (ServiceContext)
        self.by_board = by_board
        self.driver: Any = None
        self.sim: Any = None  # PtySim or GpioDoorSim when port = "sim"
        self.port_lost = False
        self._reconnect_at = 0.0
        self._reconnect_delay = 0.5

    def build(self) -> None:
        """The driver of the config (and its simulator), the serial port opened (or retried later)."""
        cfg = self.config  # the wiring is edge.locker.setup's, shared with `edge locker`
        if cfg.driver == "gpio":
            self.driver, self.sim = setup.gpio_driver(simulated=cfg.port == "sim", polarity=cfg.polarity,
                                                      pin_factory=self.pin_factory, relay_pins=cfg.gpio.relay_pins,
                                                      sensor_pins=cfg.gpio.sensor_pins,
                                                      sleep=self.thread_sleep)
            return
        protocol = setup.serial_protocol(cfg.driver, cfg.polarity)
        if cfg.port == "sim":
            self.sim = setup.bus_sim(cfg.driver, self.by_board, polarity=cfg.polarity, auto_close_s=cfg.sim.auto_close_s)
        # The coil window between two opens: monotonic time and a real sleep on a device, the
        # test's clock under a test (ServiceContext.thread_sleep / monotonic).
        self.driver = SerialLockerDriver(protocol, transport=None, reply_timeout_s=cfg.reply_timeout_s,
                                         retries=cfg.retries, clock=self.monotonic, sleep=self.thread_sleep)
        self._connect()

    def port_name(self) -> str:
        return self.sim.path if self.sim is not None and hasattr(self.sim, "path") else self.config.port

    def down(self) -> bool:
        """No driver, or its serial port lost (a GPIO driver has no port to lose)."""
        return self.driver is None or (self.port_lost and self.config.driver != "gpio")

    def note_failure(self) -> None:
        """A board did not answer: if the serial port closed under us, it is lost (reopened later)."""
        if self.config.driver != "gpio" and self.driver.transport is None:
            self.port_lost = True

    def _connect(self) -> bool:
        cfg = self.config
        try:
            transport = setup.open_bus(self.port_name(), self.driver.protocol, baud=cfg.baud,
                                       timeout_s=cfg.reply_timeout_s)
        except DeviceNotReady as err:
            if not self.port_lost:
                log.warning("locker: cannot open %s: %s (retrying)", self.port_name(), err)
            self.port_lost = True
            return False
        if self.sim is not None:  # the simulator's pty, read in step with its boards (sim.PacedPort)
            transport = self.sim.paced(transport)
        self.driver.attach(transport)
        if self.port_lost:
            log.info("locker: port %s is back", self.port_name())
        self.port_lost, self._reconnect_delay = False, 0.5
        return True

    def maybe_reconnect(self) -> None:
        if self.config.driver == "gpio" or self.driver.transport is not None:
            return
        now = self.clock()
        if now < self._reconnect_at:
            return
        if not self._connect():
            self._reconnect_delay = min(self._reconnect_delay * 2, RECONNECT_MAX_S)
            self._reconnect_at = now + self._reconnect_delay
