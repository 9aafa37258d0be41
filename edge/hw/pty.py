"""A raw pseudo-terminal for the board simulators, optionally behind a stable symlink.

The driver opens the symlink like a USB serial adapter's udev name; "unplugging" closes the
pty and "replugging" opens a new one (a new /dev/pts number) behind the same link.
"""

from __future__ import annotations

import os
import tty
from dataclasses import dataclass
from pathlib import Path


@dataclass
class RawPty:
    master: int
    slave: int
    tty_path: str

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass  # already closed by an unplug


def open_raw_pty(link: str | Path | None = None, *, nonblocking_master: bool = False) -> RawPty:
    """Open a pty in raw mode (no echo, no CR/LF translation: the board sees bytes, not a
    terminal) and point `link` at it atomically, if given."""
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    if nonblocking_master:
        os.set_blocking(master, False)
    tty_path = os.ttyname(slave)
    if link is not None:
        link = Path(link)
        tmp = link.with_name(f"{link.name}.{os.getpid()}.new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(tty_path)
        tmp.replace(link)
    return RawPty(master, slave, tty_path)
