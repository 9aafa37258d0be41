"""`edge demo`: every service on simulators, a local mosquitto, and a live view of the MQTT traffic."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import tempfile
import threading
import tomllib
from importlib import resources

from edge import config as config_module
from edge.errors import DeviceNotReady
from edge.localbroker import MosquittoBroker
from edge.monitor import watch
from edge.supervisor import Supervisor

log = logging.getLogger("edge.demo")


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
        supervisor = Supervisor(config, demo=True, pin_factory=_mock_pins())
        try:
            asyncio.run(_run(supervisor, args.seconds))
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        stop_monitor.set()
        if broker is not None:
            broker.close()
        print("edge demo: stopped", flush=True)


def _mock_pins():
    """The demo has no GPIO: gpiozero's MockFactory stands in, said out loud."""
    from gpiozero.pins.mock import MockFactory

    log.info("GPIO: using gpiozero MockFactory (simulated pins)")
    return MockFactory()
