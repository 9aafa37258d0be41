"""`edge demo`: every service on simulators, a local mosquitto, and a live view of the MQTT traffic."""

from __future__ import annotations

import asyncio
import logging
import os
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
from edge.demo_quiet import Quiet, QuietLogFilter, mqtt_kind
from edge.localbroker import MosquittoBroker
from edge.monitor import watch
from edge.supervisor import Supervisor

log = logging.getLogger("edge.demo")
CENTRAL_START_S = 60.0


def demo_config(broker_url: str, data_dir: str) -> config_module.Config:
    data = tomllib.loads(resources.files("edge").joinpath("demo.toml").read_text(encoding="utf-8"))
    data["data_dir"] = data_dir
    data.setdefault("broker", {})["url"] = broker_url
    # The device and `--central` share one command key, so the dashboard's /commands works.
    data["broker"]["command_key_file"] = _demo_command_key(data_dir, data["site"], data["device"])
    return config_module.from_dict(data)


def _demo_command_key(data_dir: str, site: str, device: str) -> str:
    """A fresh HMAC key at DATA_DIR/keys/{site}/{device}.key (0600): the layout `--keys` reads."""
    from pathlib import Path

    from edge.security import new_key

    path = Path(data_dir, "keys", site, f"{device}.key")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(new_key())
    return str(path)


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
    log_filter = QuietLogFilter(Quiet())  # replaced below once the terminal's Quiet exists
    data_dir = tempfile.mkdtemp(prefix="edge-demo-")
    try:
        config = demo_config(url, data_dir)
        print(f"edge demo: site {config.site}, device {config.device}, services: "
              f"{', '.join(config.enabled_services()) or 'none'}; store {config.store_path}", flush=True)
        # A quiet terminal: one line per kind of event or log message every few seconds.
        quiet = Quiet(lambda line: print(line, flush=True))
        log_filter.quiet = quiet
        for handler in logging.getLogger().handlers:
            handler.addFilter(log_filter)
        # Events, status and command results; the retained state snapshots are too long to read here.
        monitor = threading.Thread(target=watch, args=(url, config.site, lambda line: quiet.line(mqtt_kind(line), f"mqtt> {line}"),
                                                       stop_monitor), kwargs={"show_state": False}, daemon=True)
        monitor.start()
        central = (_start_central(url, args.central, keys=f"{data_dir}/keys") if getattr(args, "central", None)
                   else None)
        _print_credentials(config)
        supervisor = Supervisor(config, demo=True, pin_factory=_mock_pins())
        try:
            asyncio.run(_run(supervisor, args.seconds))
        except KeyboardInterrupt:
            pass
        _print_screens_again(supervisor, args.central if central is not None else None, quiet)
        return 0
    finally:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(log_filter)
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


def _print_credentials(config) -> None:
    """What a visitor needs to try the device's screens, said once at the start (the dashboard's
    logins are printed when it starts). Only results a person can collect are listed."""
    from edge.kiosk.demo_results import collectable_lines
    from edge.locker.service import DEMO_STAFF_PIN

    qr = config.services.get("qr")
    qr_demo = getattr(qr, "camera", None) == "sim"
    print("edge demo: to try the screens (demo credentials, never on a real device):\n"
          f"  locker loading (/loading): staff PIN {DEMO_STAFF_PIN}\n"
          "  results to collect at /kiosk (in the locker about 30 s after the start):\n"
          + "\n".join(collectable_lines(config.site, qr_demo=qr_demo)) + "\n"
          "  desk screens (/reception, /counter?c=N, /status): no staff login on 127.0.0.1", flush=True)


def _print_screens_again(supervisor: Supervisor, dashboard: str | None, quiet: Quiet) -> None:
    """The screen URLs scrolled away long ago: say them again at the end."""
    kiosk = supervisor.peers.get("kiosk")
    urls = kiosk.screen_urls() if kiosk is not None and getattr(kiosk, "url", None) else {}
    if dashboard:
        urls["dashboard"] = f"http://{dashboard}/"
    held = quiet.held_total()
    lines = [f"edge demo: {held} repeated lines were held back to keep this terminal readable"] if held else []
    if urls:
        lines += ["edge demo: the screens were:"] + [f"  {name:<12} {url}" for name, url in urls.items()]
    if lines:
        print("\n".join(lines), flush=True)


def _start_central(broker_url: str, listen: str, *, keys: str | None = None) -> subprocess.Popen | None:
    """The office dashboard beside the demo device: `edge central run --db temp` (a throwaway
    PostgreSQL). Without PostgreSQL the demo goes on without it and says why."""
    from edge.central.auth import DEMO_LOGINS, DEMO_TOKEN, demo_staff_text

    host, _, port = listen.rpartition(":")
    staff = tempfile.mkdtemp(prefix="edge-demo-central-") + "/staff.txt"   # the dashboard logins
    with open(staff, "w", encoding="utf-8") as out:
        out.write(demo_staff_text())
    proc = subprocess.Popen([sys.executable, "-m", "edge", "central", "run", "--broker", broker_url, "--db", "temp",
                             "--listen", listen, "--group", "", "--staff", staff, *(["--keys", keys] if keys else [])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + CENTRAL_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            reason = (proc.stderr.read() or b"").decode(errors="replace").strip().splitlines()[-1:] or ["?"]
            print(f"edge demo: the central service did not start: {reason[0]}", flush=True)
            return None
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=0.5).close()
            print(f"edge demo: office dashboard (central) at http://{listen}/", flush=True)
            logins = ", ".join(f"{sid} / PIN {pin} ({role})" for sid, pin, role, _ in DEMO_LOGINS)
            print(f"edge demo: dashboard logins (demo only): {logins}; API token {DEMO_TOKEN}", flush=True)
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
