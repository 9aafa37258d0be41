"""Config → transport → driver for the locker, written once for the service and the CLI.

`LockerService` (edge/locker/service.py) and `edge locker open|status` (edge/locker/cli.py) both
build their driver here: the board protocol, the simulator behind `port = "sim"`, the serial bus
(opened only by edge.hw.serial), or the GPIO relay HAT with its pin factory.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from edge.hw.serial import open_serial

def gpio_driver(*, simulated: bool, polarity: str, pin_factory: Any = None,
                relay_pins: Iterable[int] | None = None, sensor_pins: Iterable[int] | None = None,
                sleep: Callable[[float], None] | None = None) -> tuple[Any, Any]:
    """(driver, simulator or None) for a GPIO relay HAT; simulated, its doors are wired to a MockFactory.
    `sleep` holds a relay for its pulse (time.sleep unless the service's clock is a test's)."""
    from edge.locker.gpio import GpioDoorSim, GpioLockerDriver

    pins = {k: v for k, v in (("relay_pins", relay_pins), ("sensor_pins", sensor_pins)) if v is not None}
    sim = None
    if simulated:
        if pin_factory is None:
            from gpiozero.pins.mock import MockFactory
            pin_factory = MockFactory()
        sim = GpioDoorSim(pin_factory, polarity=polarity, **pins)
    timed = {"sleep": sleep} if sleep is not None else {}
    return GpioLockerDriver(pin_factory=pin_factory, polarity=polarity, **pins, **timed), sim


def serial_protocol(driver: str, polarity: str) -> Any:
    """The board protocol of `driver` (kerong, 8a, modbus) with its lock-bit polarity."""
    from edge.locker.protocols import PROTOCOLS

    return PROTOCOLS[driver](polarity)


def bus_sim(driver: str, boards: Iterable[int], *, polarity: str, auto_close_s: float | None = None) -> Any:
    """Boards of `driver` on a pty (started): its `path` is the port to open."""
    from edge.locker.sim import BusSim, PtySim

    return PtySim(BusSim(driver, boards=list(boards), polarity=polarity, auto_close_s=auto_close_s)).start()


def open_bus(port: str, protocol: Any, *, baud: int | None, timeout_s: float) -> Any:
    """The RS485 bus at the board's baud unless one is configured; DeviceNotReady names the port."""
    return open_serial(port, baud=baud or protocol.baud, timeout_s=timeout_s, what="locker bus")
