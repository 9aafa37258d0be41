"""`edge demo`'s quiet terminal: at most one line per kind of event every few seconds.

A demo office makes hundreds of log lines and MQTT events a minute; printed as they come they
scroll the screen URLs away. `Quiet` lets the first line of each kind through, holds back the
same kind for `period_s`, and says how many it held back on the next line of that kind. It serves
both the MQTT monitor (kind = service + event type) and the log (kind = logger + message template).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Callable

PERIOD_S = 10.0
_EVENT = re.compile(r"^\S+ (?P<service>[\w-]+): #\d+ (?P<type>\w+)")  # "site/device pager: #11 ticket_called …"


class Quiet:
    """A per-kind rate limit for printed lines (thread-safe: the MQTT monitor has its own thread)."""

    def __init__(self, out: Callable[[str], None] = print, period_s: float = PERIOD_S, clock=time.monotonic):
        self.out, self.period_s, self.clock = out, period_s, clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._held_ever = 0
        self._lock = threading.Lock()

    def allow(self, kind: str) -> tuple[bool, int]:
        """(print it now?, how many of this kind were held back since the last one printed)."""
        now = self.clock()
        with self._lock:
            if now - self._last.get(kind, float("-inf")) < self.period_s:
                self._held[kind] = self._held.get(kind, 0) + 1
                self._held_ever += 1
                return False, 0
            self._last[kind] = now
            return True, self._held.pop(kind, 0)

    def line(self, kind: str, text: str) -> None:
        ok, held = self.allow(kind)
        if ok:
            self.out(text + (f"  (+{held} more)" if held else ""))

    def held_total(self) -> int:
        """Lines held back since the start."""
        with self._lock:
            return self._held_ever


def mqtt_kind(line: str) -> str:
    """The kind of an MQTT monitor line: 'pager.ticket_called', or 'status' for the online lines."""
    match = _EVENT.match(line)
    if match:
        return f"mqtt.{match['service']}.{match['type']}"
    return "mqtt." + " ".join(line.split()[1:3])


class QuietLogFilter(logging.Filter):
    """A logging filter: one record per logger per period (the MQTT lines already show each event);
    warnings are limited per message template, errors always pass."""

    def __init__(self, quiet: Quiet):
        super().__init__()
        self.quiet = quiet

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        kind = f"log.{record.name}" + (f".{_template(record.msg)}" if record.levelno >= logging.WARNING else "")
        ok, held = self.quiet.allow(kind)
        if ok and held:
            record.msg, record.args = f"{record.getMessage()}  (+{held} more)", None
        return ok


def _template(msg) -> str:
    """A message with its numbers and ids blanked, so f-string messages of one kind group together."""
    return re.sub(r"\b[0-9a-f]{6,}\b|\d+", "#", str(msg))[:80]
