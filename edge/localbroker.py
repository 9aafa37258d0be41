"""A real mosquitto on a free loopback port, for `edge demo` and the test suite.

Once a `listener` line is in the config, mosquitto ignores `-p`, so the port is chosen here
(bind to port 0, read it back, release it) and written into a config file of our own.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from edge.errors import DeviceNotReady

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto")
START_TIMEOUT_S = 30.0  # ends as soon as mosquitto says it runs (tens of ms); a busy machine can be slow
PORT_ATTEMPTS = 5  # a first start whose free port was taken tries this many fresh ones (test servers too)


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if Path(p).exists()), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` holds a listening TCP socket on `port` (IPv4, from /proc; reading
    /proc/net/tcp can take tens of ms on a busy machine: for tests' checks, not for polling)."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    listening = {f"socket:[{row[9]}]" for row in rows
                 if row[3] == "0A" and row[1].rsplit(":", 1)[1] == f"{port:04X}"}  # 0A: LISTEN
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fds / fd) in listening for fd in os.listdir(fds))
    except FileNotFoundError:  # the process is gone
        return False


RUNNING = re.compile(r"mosquitto version \S+ running")


def wait_running(process: subprocess.Popen, log: Path, logged_before: int, *, what: str = "mosquitto",
                 timeout_s: float = START_TIMEOUT_S) -> bool:
    """Wait until a mosquitto started with `log_type information` logs that it runs, which it does
    once every listener is bound. Not a connect() to its port: between free_port() and the bind,
    another process (the other test worker) may have taken the port, and the connect would reach
    that one. False if mosquitto exited because a port was taken (pick another); DeviceNotReady
    if it exited for another reason or did not start in time. `logged_before`: where this start's
    lines begin in `log`."""
    deadline = time.monotonic() + timeout_s
    while True:
        exited = process.poll() is not None
        said = _read_from(log, logged_before)
        if RUNNING.search(said):
            return True
        if exited:
            if "Address already in use" in said:
                return False
            raise DeviceNotReady(f"{what} exited at start: {said[-500:]}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait(5)
            raise DeviceNotReady(f"{what} did not start within {timeout_s} s: {said[-500:]}")
        time.sleep(0.01)


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


class MosquittoBroker:
    """`MosquittoBroker().start()`; `.url`, `.port`; `.kill()` (crash), `.stop()`, `.start()` again."""

    def __init__(self, port: int | None = None, *, extra_config: str = "", workdir: str | Path | None = None,
                 persistence: bool = False):
        self.binary = find_mosquitto()
        self.persistence = persistence  # sessions survive a SIGTERM restart (not a SIGKILL)
        self._port_chosen = port is None  # ours to change if someone else binds it first
        self.port = port or free_port()
        self._started = False
        self.extra_config = extra_config
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="edge-mosquitto-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "MosquittoBroker":
        if self.binary is None:
            raise DeviceNotReady(
                "mosquitto is not installed: run `make setup` as root (apt package 'mosquitto'), "
                "or give an existing broker with --broker mqtt://HOST:PORT"
            )
        log = self.workdir / "mosquitto.log"
        for attempt in range(PORT_ATTEMPTS):
            self._write_config()
            logged_before = log.stat().st_size if log.exists() else 0
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.workdir / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                stderr=open(log, "ab"),
            )
            if self._wait_listening(log, logged_before):
                self._started = True
                return self
            # Another process took the port between free_port() and our bind (another test worker):
            # a fresh one, unless this is a restart, where clients expect the same port.
            if not self._port_chosen or self._started or attempt == PORT_ATTEMPTS - 1:
                raise DeviceNotReady(f"mosquitto could not bind 127.0.0.1:{self.port}: it is in use")
            self.port = free_port()
        raise AssertionError("unreachable")

    def _write_config(self) -> None:
        # Persistent: sessions and their queued messages (up to 100,000, not the default 1,000)
        # survive a SIGTERM restart.
        persistence = (f"persistence true\npersistence_location {self.workdir}/\nmax_queued_messages 100000\n"
                       if self.persistence else "persistence false\n")
        if self.persistence and os.geteuid() == 0:
            # As root, mosquitto drops to user 'mosquitto', who cannot write into our private
            # temporary directory: the saved sessions would silently be lost at the restart.
            persistence += "user root\n"
        (self.workdir / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{persistence}"
            f"log_dest stderr\nlog_type error\nlog_type warning\nlog_type information\n{self.extra_config}\n"
        )

    def _wait_listening(self, log: Path, logged_before: int) -> bool:
        """True once our mosquitto runs; False if it exited because the port is taken."""
        return wait_running(self.process, log, logged_before, what=f"mosquitto on 127.0.0.1:{self.port}")

    def kill(self) -> None:
        """SIGKILL: a broker crash (no wills are sent)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        """SIGTERM: a clean broker stop."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "MosquittoBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
