"""edge.service is Type=notify with WatchdogSec: the supervisor must send READY=1 once started,
WATCHDOG=1 only while every critical service makes progress, and STOPPING=1 on the way out.
Checked the way systemd sees it: datagrams on a unix socket named by NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from edge.config import from_dict
from edge.service import Service
from edge.supervisor import Supervisor

WATCHDOG_USEC = 100_000  # systemd asks for a ping every 0.05 s (half of WatchdogSec)
QUIET_WINDOW_S = 0.5     # ten ping intervals without WATCHDOG=1 while wedged
DEADLINE_S = 15.0


@dataclasses.dataclass(frozen=True)
class Section:
    enabled: bool = True


class Pager(Service):
    """A critical service whose loop can be made to hang (a serial read that never returns)."""

    name = "pager"
    critical = True
    wedged_after_s = 0.3
    stuck = threading.Event()

    async def run(self):
        while True:
            if not Pager.stuck.is_set():
                self.heartbeat()
            await asyncio.sleep(0.02)


class NotifySocket:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="edge-notify-")  # short: AF_UNIX paths are limited to 108 bytes
        self.path = str(Path(self.dir) / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def next(self, timeout_s: float) -> str | None:
        self.sock.settimeout(timeout_s)
        try:
            return self.sock.recv(4096).decode()
        except socket.timeout:
            return None

    def wait_for(self, message: str, timeout_s: float = DEADLINE_S) -> list[str]:
        seen = []
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            got = self.next(remaining)
            if got == message:
                return seen
            if got is not None:
                seen.append(got)
        raise AssertionError(f"no {message!r} within {timeout_s} s; got {seen}")

    def drain(self) -> list[str]:
        self.sock.setblocking(False)
        out = []
        try:
            while True:
                out.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            return out

    def collect(self, window_s: float) -> list[str]:
        out, end = [], time.monotonic() + window_s
        while (remaining := end - time.monotonic()) > 0:
            got = self.next(remaining)
            if got is not None:
                out.append(got)
        return out

    def close(self):
        self.sock.close()
        Path(self.path).unlink(missing_ok=True)
        Path(self.dir).rmdir()


@pytest.fixture
def notify(monkeypatch):
    sock = NotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", sock.path)
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    yield sock
    sock.close()


def test_ready_then_watchdog_only_while_the_critical_service_progresses(tmp_path, mosquitto, notify):
    config = from_dict({"site": "hn", "device": "desk-01", "role": "desk", "data_dir": str(tmp_path / "data"),
                        "broker": {"url": mosquitto.url}})
    config = dataclasses.replace(config, services={"pager": Section()})
    supervisor = Supervisor(config, service_classes={"pager": Pager})
    Pager.stuck.clear()

    async def scenario():
        task = asyncio.create_task(supervisor.run())
        try:
            before_ready = await asyncio.to_thread(notify.wait_for, "READY=1")
            assert "WATCHDOG=1" not in before_ready  # never pinged before it said it was ready
            await asyncio.to_thread(notify.wait_for, "WATCHDOG=1")
            await asyncio.to_thread(notify.wait_for, "WATCHDOG=1")

            Pager.stuck.set()  # the pager's loop hangs
            deadline = time.monotonic() + DEADLINE_S
            while supervisor.critical_ok():
                assert time.monotonic() < deadline, "the supervisor never noticed the wedged pager"
                await asyncio.sleep(0.02)
            # critical_ok() and the ping run on this same event loop, so every ping sent while the
            # pager was still healthy is already in the socket: drain it, then listen.
            notify.drain()
            while_wedged = await asyncio.to_thread(notify.collect, QUIET_WINDOW_S)
            assert "WATCHDOG=1" not in while_wedged, while_wedged

            Pager.stuck.clear()  # it recovers before systemd's WatchdogSec ran out: pings resume
            await asyncio.to_thread(notify.wait_for, "WATCHDOG=1")
        finally:
            supervisor.request_stop()
            await task
        return await asyncio.to_thread(notify.wait_for, "STOPPING=1")

    asyncio.run(scenario())


def test_sd_notify_is_silent_outside_systemd(monkeypatch):
    from edge.supervisor import sd_notify
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False
