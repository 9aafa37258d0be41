"""Alarm notifications: webhook (JSON POST) and e-mail (SMTP), retried with backoff.

`Dispatcher.submit(alarms)` only queues (never blocks ingestion); one worker thread delivers
each alarm to each notifier independently, retrying a failing one with capped, jittered
exponential backoff, and gives up (logged) after `max_attempts`.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import smtplib
import threading
import time
import urllib.request
from email.message import EmailMessage

from edge import alarm_kinds

log = logging.getLogger(__name__)

# Alarm names as the e-mail and webhook text says them: edge/alarm_kinds.py, as on the dashboard.
KIND_VI = {kind: alarm_kinds.name(kind) for kind in [*alarm_kinds.ALARM_KINDS, *alarm_kinds.OLD_NAMES]}


def describe(alarm: dict) -> str:
    """One line, Vietnamese first with the English kind: what, where."""
    kind = alarm.get("kind", "alarm")
    where = f"{alarm.get('site')}/{alarm.get('device')}" + (f" {alarm['subject']}" if alarm.get("subject") else "")
    return f"{KIND_VI.get(kind, 'Cảnh báo')} ({kind}): {where}"


class WebhookNotifier:
    name = "webhook"

    def __init__(self, url: str, *, timeout_s: float = 5.0):
        self.url, self.timeout_s = url, timeout_s

    def send(self, alarm: dict) -> None:
        body = json.dumps({"text": describe(alarm), "alarm": alarm}, ensure_ascii=False, default=str).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            if response.status >= 300:
                raise OSError(f"webhook answered HTTP {response.status}")


class SmtpNotifier:
    name = "smtp"

    def __init__(self, host: str, port: int, sender: str, recipients: list[str], *, starttls: bool = False,
                 username: str | None = None, password: str | None = None, timeout_s: float = 10.0):
        self.host, self.port, self.sender, self.recipients = host, port, sender, recipients
        self.starttls, self.username, self.password, self.timeout_s = starttls, username, password, timeout_s

    def send(self, alarm: dict) -> None:
        msg = EmailMessage()
        msg["Subject"] = f"[edge] {describe(alarm)}"
        msg["From"], msg["To"] = self.sender, ", ".join(self.recipients)
        msg.set_content(describe(alarm) + "\n\n" + json.dumps(alarm, ensure_ascii=False, indent=2, default=str))
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(msg)


class Dispatcher:
    """Queue alarms for every notifier; deliver on one worker thread with retry and backoff."""

    def __init__(self, notifiers: list, *, base_delay_s: float = 1.0, max_delay_s: float = 300.0, max_attempts: int = 8):
        self.notifiers = notifiers
        self.base_delay_s, self.max_delay_s, self.max_attempts = base_delay_s, max_delay_s, max_attempts
        self.sent = 0
        self.failed = 0
        self._heap: list = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> "Dispatcher":
        if self.notifiers:
            self._thread = threading.Thread(target=self._run, name="central-notify", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout=5)

    def submit(self, alarms: list[dict]) -> None:
        if not self.notifiers:
            return
        now = time.monotonic()
        with self._cond:
            for alarm in alarms:
                for notifier in self.notifiers:
                    heapq.heappush(self._heap, (now, next(self._order), 1, notifier, alarm))
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(None if not self._heap else max(0.0, self._heap[0][0] - time.monotonic()))
                if self._stop:
                    return
                _, _, attempt, notifier, alarm = heapq.heappop(self._heap)
            self._deliver(attempt, notifier, alarm)

    def _deliver(self, attempt: int, notifier, alarm: dict) -> None:
        try:
            notifier.send(alarm)
        except Exception as err:  # any failure of a notifier is retried, never raised into ingestion
            if attempt >= self.max_attempts:
                self.failed += 1
                log.error("central: %s notification gave up after %d attempts: %s (%s)", notifier.name, attempt, describe(alarm), err)
                return
            delay = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)) * (0.75 + random.random() / 2)
            if attempt == 1:
                log.warning("central: %s notification failed (%s); retrying with backoff", notifier.name, err)
            with self._cond:
                heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), attempt + 1, notifier, alarm))
                self._cond.notify_all()
            return
        self.sent += 1
        if attempt > 1:
            log.info("central: %s notification delivered after %d attempts", notifier.name, attempt)
