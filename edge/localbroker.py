"""A real mosquitto on a free loopback port, for `edge demo` and the test suite.

Once a `listener` line is in the config, mosquitto ignores `-p`, so the port is chosen here
(bind to port 0, read it back, release it) and written into a config file of our own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from edge.errors import DeviceNotReady

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto")
START_TIMEOUT_S = 10.0


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if Path(p).exists()), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MosquittoBroker:
    """`MosquittoBroker().start()`; `.url`, `.port`; `.kill()` (crash), `.stop()`, `.start()` again."""

    def __init__(self, port: int | None = None, *, extra_config: str = "", workdir: str | Path | None = None,
                 persistence: bool = False):
        self.binary = find_mosquitto()
        self.persistence = persistence  # sessions survive a SIGTERM restart (not a SIGKILL)
        self.port = port or free_port()
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
        conf = self.workdir / "mosquitto.conf"
        # Persistent: sessions and their queued messages (up to 100,000, not the default 1,000)
        # survive a SIGTERM restart.
        persistence = (f"persistence true\npersistence_location {self.workdir}/\nmax_queued_messages 100000\n"
                       if self.persistence else "persistence false\n")
        if self.persistence and os.geteuid() == 0:
            # As root, mosquitto drops to user 'mosquitto', who cannot write into our private
            # temporary directory: the saved sessions would silently be lost at the restart.
            persistence += "user root\n"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{persistence}"
            f"log_dest stderr\nlog_type error\nlog_type warning\n{self.extra_config}\n"
        )
        self.process = subprocess.Popen(
            [self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "mosquitto.log", "ab"),
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.workdir / "mosquitto.log").read_text(errors="replace")[-500:]
                raise DeviceNotReady(f"mosquitto exited at start on port {self.port}: {log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise DeviceNotReady(f"mosquitto did not listen on 127.0.0.1:{self.port} within {START_TIMEOUT_S} s")

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
