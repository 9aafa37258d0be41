"""The one place that opens serial ports (pager transmitters, locker boards; their services and CLIs).

pyserial's `serial_for_url`, so a device path (`/dev/ttyUSB0`, a udev symlink, a simulator's pty)
and a URL (`socket://…`, `spy://…`, `loop://`) all work. A path is opened `exclusive=True` (an
advisory lock): a second process on the same RS485 bus, e.g. `edge locker open` while the
service runs, is refused with a clear error instead of interleaving its bytes with the service's.
"""

from __future__ import annotations

from typing import Any

from edge.errors import DeviceNotReady


def open_serial(url: str, *, baud: int, timeout_s: float, what: str = "serial port",
                write_timeout_s: float | None = None, rtscts: bool = False) -> Any:
    """Open `url` at `baud` 8N1; DeviceNotReady naming `what` and the port when it cannot be opened."""
    import serial  # pyserial; imported here so `edge --help` stays fast

    exclusive = {"exclusive": True} if url.startswith("/") else {}  # URLs (socket://, loop://) take no lock
    try:
        return serial.serial_for_url(url, baudrate=baud, timeout=timeout_s, write_timeout=write_timeout_s,
                                     rtscts=rtscts, **exclusive)
    except (serial.SerialException, OSError, ValueError) as err:
        raise DeviceNotReady(f"{what} {url}: {err}") from err
