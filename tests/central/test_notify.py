"""Alarm notifications: a local HTTP receiver and a local SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from edge.central import notify
from edge.central.testing import free_port

from .conftest import wait_until


class Receiver:
    """An HTTP endpoint that fails the first `fail_first` POSTs with 500, then records them."""

    def __init__(self, fail_first: int = 0):
        self.fail_first, self.calls, self.received = fail_first, 0, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.calls += 1
                if outer.calls <= outer.fail_first:
                    self.send_response(500)
                else:
                    outer.received.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        # Closed, not just no longer served: a late POST is refused at once instead of waiting in
        # the listen queue for the notifier's timeout (which central's stop would wait out).
        self.server.server_close()


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def receiver():
    r = Receiver(fail_first=2)
    yield r
    r.close()


@pytest.fixture
def mailbox():
    box = Mailbox()
    # ready_timeout: aiosmtpd's 5 s for its thread to listen and answer can run out on a loaded
    # machine (its own error says so); a generous deadline, it returns as soon as it answers.
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), ready_timeout=30)
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


ALARM = {"site": "hanoi-bd", "device": "kiosk-1", "service": "locker", "kind": "forced_open",
         "subject": "compartment 4", "ts": 1_790_000_000.0, "detail": {}}


def test_failing_webhook_is_retried_with_backoff_until_delivered(receiver):
    d = notify.Dispatcher([notify.WebhookNotifier(receiver.url)], base_delay_s=0.05).start()
    try:
        d.submit([ALARM])
        # The receiver records the POST before it answers, so the dispatcher counts it a moment
        # later: wait for the dispatcher's own count, not the receiver's.
        wait_until(lambda: d.sent == 1, what="webhook delivery counted")
        assert receiver.calls == 3 and len(receiver.received) == 1
        assert receiver.received[0]["alarm"]["kind"] == "forced_open"
        assert "Cửa ngăn bị mở không qua lệnh" in receiver.received[0]["text"]  # edge/alarm_kinds.py
    finally:
        d.stop()


def test_gives_up_after_max_attempts_and_logs(caplog):
    dead = f"http://127.0.0.1:{free_port()}/nothing-listens"
    d = notify.Dispatcher([notify.WebhookNotifier(dead, timeout_s=1)], base_delay_s=0.01, max_attempts=3).start()
    try:
        d.submit([ALARM])
        # The count and the log line come from the dispatcher's thread one after the other: wait
        # for both, whichever order they come in.
        wait_until(lambda: d.failed == 1 and "gave up after 3 attempts" in caplog.text, what="give-up counted and logged")
    finally:
        d.stop()


def test_email_through_smtp(mailbox):
    d = notify.Dispatcher([notify.SmtpNotifier("127.0.0.1", mailbox.port, "central@office.example",
                                               ["manager@office.example"])]).start()
    try:
        d.submit([ALARM])
        wait_until(lambda: mailbox.messages, what="mail delivered")
        mail = mailbox.messages[0]
        assert mail.rcpt_tos == ["manager@office.example"]
        assert "forced_open" in mail.content.decode("utf-8", "replace")
    finally:
        d.stop()


def test_new_alarm_from_a_device_reaches_webhook_and_mail_without_blocking_ingestion(central_app, devices, mailbox):
    slow = Receiver(fail_first=1000)          # a webhook that is down for the whole test
    try:
        c = central_app(webhooks=(slow.url,), smtp=f"127.0.0.1:{mailbox.port}", mail_to=("ops@office.example",))
        kiosk = devices("hanoi-bd", "kiosk-2")
        alarm_event = kiosk.event("locker", "forced_open", compartment=9)
        for i in range(300):
            kiosk.event("locker", "door_opened", compartment=i % 12 + 1)
        wait_until(lambda: c.app.consumer.stats()["stored"] == 301, what="ingestion unaffected by the failing webhook")
        # The mailbox holds the mail before the SMTP session ends; the dispatcher counts it after.
        wait_until(lambda: c.app.dispatcher.sent == 1, what="alarm e-mail counted")
        assert "forced_open" in mailbox.messages[0].content.decode()
        assert slow.calls >= 1
        # The same alarm event redelivered (QoS 1 at least once) is stored once, notified once.
        kiosk.raw(kiosk.topic("locker/event"), json.dumps(alarm_event).encode())
        wait_until(lambda: c.app.consumer.stats()["duplicates"] == 1, what="redelivery seen")
        time.sleep(0.3)
        assert len(mailbox.messages) == 1 and c.app.consumer.stats()["stored"] == 301
    finally:
        slow.close()
