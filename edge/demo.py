"""`edge demo`: every service on simulators, a local mosquitto, and a live view of the MQTT traffic."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from importlib import resources

from edge import config as config_module
from edge.errors import DeviceNotReady
from edge.localbroker import MosquittoBroker
from edge.monitor import watch
from edge.supervisor import Supervisor

log = logging.getLogger("edge.demo")
CENTRAL_START_S = 60.0


def demo_config(broker_url: str, data_dir: str) -> config_module.Config:
    data = tomllib.loads(resources.files("edge").joinpath("demo.toml").read_text(encoding="utf-8"))
    data["data_dir"] = data_dir
    data.setdefault("broker", {})["url"] = broker_url
    return config_module.from_dict(data)


async def _run(supervisor: Supervisor, seconds: float | None) -> None:
    task = asyncio.create_task(supervisor.run())
    if seconds is not None:
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if not done:
            supervisor.request_stop()
    await task


def main(args) -> int:
    broker = None
    url = args.broker
    if url is None:
        try:
            broker = MosquittoBroker().start()
        except DeviceNotReady as err:
            print(f"edge demo: cannot start a local broker: {err}", file=sys.stderr)
            return 2
        url = broker.url
    print(f"edge demo: broker {url}; stop with Ctrl-C" + (f" or after {args.seconds:g} s" if args.seconds else ""),
          flush=True)
    stop_monitor = threading.Event()
    data_dir = tempfile.mkdtemp(prefix="edge-demo-")
    try:
        config = demo_config(url, data_dir)
        print(f"edge demo: site {config.site}, device {config.device}, services: "
              f"{', '.join(config.enabled_services()) or 'none'}; store {config.store_path}", flush=True)
        # Events, status and command results; the retained state snapshots are too long to read here.
        monitor = threading.Thread(target=watch, args=(url, config.site, lambda line: print(f"mqtt> {line}", flush=True),
                                                       stop_monitor), kwargs={"show_state": False}, daemon=True)
        monitor.start()
        central = _start_central(url, args.central) if getattr(args, "central", None) else None
        supervisor = Supervisor(config, demo=True, pin_factory=_mock_pins())
        try:
            asyncio.run(_run(supervisor, args.seconds))
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        if central is not None:
            central.terminate()
            try:
                central.wait(20)
            except subprocess.TimeoutExpired:
                central.kill()
        stop_monitor.set()
        if broker is not None:
            broker.close()
        print("edge demo: stopped", flush=True)


def _start_central(broker_url: str, listen: str) -> subprocess.Popen | None:
    """The office dashboard beside the demo device: `edge central run --db temp` (a throwaway
    PostgreSQL). Without PostgreSQL the demo goes on without it and says why."""
    host, _, port = listen.rpartition(":")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "central", "run", "--broker", broker_url, "--db", "temp",
                             "--listen", listen, "--group", ""], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + CENTRAL_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            reason = (proc.stderr.read() or b"").decode(errors="replace").strip().splitlines()[-1:] or ["?"]
            print(f"edge demo: the central service did not start: {reason[0]}", flush=True)
            return None
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=0.5).close()
            print(f"edge demo: office dashboard (central) at http://{listen}/", flush=True)
            return proc
        except OSError:
            time.sleep(0.2)
    print(f"edge demo: the central service did not answer on {listen} within {CENTRAL_START_S:g} s", flush=True)
    proc.kill()
    return None


def _mock_pins():
    """The demo has no GPIO: gpiozero's MockFactory stands in, said out loud."""
    from gpiozero.pins.mock import MockFactory

    log.info("GPIO: using gpiozero MockFactory (simulated pins)")
    return MockFactory()
