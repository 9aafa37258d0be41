"""`edge doctor`: what a technician checks first — config, serial ports, GPIO, camera, models, broker, clock, disk."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    name: str
    status: str
    detail: str


def check_config(path: str | None) -> tuple[Check, object | None]:
    from edge.config import load
    from edge.errors import ConfigError

    if path is None:
        return Check("config", WARN, "no --config given: only machine checks"), None
    try:
        config = load(path)
    except ConfigError as err:
        return Check("config", FAIL, "; ".join(err.problems)), None
    return Check("config", OK, f"{path}: role {config.role}, services {', '.join(config.enabled_services()) or 'none'}"), config


def _section_ports(config) -> list[str]:
    ports = []
    for section in config.services.values():
        port = getattr(section, "port", None)
        if isinstance(port, str) and port.startswith("/dev/"):
            ports.append(port)
    return ports


def check_serial(config) -> list[Check]:
    if config is None:
        return []
    checks = []
    for port in _section_ports(config):
        if not Path(port).exists():
            checks.append(Check(f"serial {port}", FAIL, "missing: is the adapter plugged in (see dmesg)?"))
        elif not os.access(port, os.R_OK | os.W_OK):
            checks.append(Check(f"serial {port}", FAIL, "no permission: add the user to group dialout"))
        else:
            checks.append(Check(f"serial {port}", OK, "present and writable"))
    return checks


def check_simulators(config) -> list[Check]:
    if config is None:
        return []
    simulated = config.simulated()
    if not simulated:
        return [Check("simulators", OK, "none: every service drives real hardware")]
    return [Check("simulators", WARN, f"{', '.join(simulated)} = \"sim\": built-in simulator, not the real device")]


def check_warnings(config) -> list[Check]:
    """Valid but unsafe settings (e.g. face liveness off on a kiosk), one warning each."""
    if config is None:
        return []
    return [Check("settings", WARN, warning) for warning in config.warnings()]


def check_gpio() -> Check:
    chips = sorted(Path("/dev").glob("gpiochip*"))
    if not chips:
        return Check("gpio", WARN, "no /dev/gpiochip*: not a Pi (GPIO services need MockFactory here)")
    usable = [c for c in chips if os.access(c, os.R_OK | os.W_OK)]
    if not usable:
        return Check("gpio", FAIL, f"{chips[0]} not accessible: add the user to group gpio")
    return Check("gpio", OK, ", ".join(c.name for c in usable))


def check_camera() -> Check:
    devices = sorted(Path("/dev").glob("video*"))
    if not devices:
        return Check("camera", WARN, "no /dev/video*: camera services must use a file source")
    return Check("camera", OK, ", ".join(d.name for d in devices[:4]))


def check_models(config) -> Check:
    candidates = [Path("models"), Path("/var/lib/edge/models")]
    if config is not None:
        candidates.insert(0, Path(config.data_dir) / "models")
    found = [p for p in candidates if p.is_dir() and any(p.glob("*.onnx"))]
    if not found:
        return Check("models", WARN, "no ONNX models found (run `make setup` or `edge vision convert`)")
    names = sorted(f.name for f in found[0].glob("*.onnx"))
    return Check("models", OK, f"{found[0]}: {', '.join(names)}")


def check_broker(config) -> Check:
    from edge.mqtt import parse_broker_url

    if config is None:
        return Check("broker", WARN, "no config: broker not checked")
    address = parse_broker_url(config.broker.url)
    try:
        socket.create_connection((address.host, address.port), timeout=3).close()
    except OSError as err:
        return Check("broker", FAIL, f"{config.broker.url}: {err}")
    return Check("broker", OK, f"{config.broker.url} reachable")


def check_clock() -> Check:
    if time.time() < 1_700_000_000:
        return Check("clock", FAIL, "system clock is before 2023: no RTC and no NTP? TLS and expiry will fail")
    synced = Path("/run/systemd/timesync/synchronized").exists()
    return Check("clock", OK if synced else WARN, time.strftime("%Y-%m-%d %H:%M:%S %Z") +
                 ("" if synced else " (NTP synchronisation not confirmed)"))


def check_disk(config) -> Check:
    path = Path(config.data_dir) if config is not None else Path("/")
    while not path.exists():
        path = path.parent
    usage = shutil.disk_usage(path)
    free_mb = usage.free / 2**20
    status = FAIL if free_mb < 200 else WARN if free_mb < 1024 else OK
    return Check("disk", status, f"{path}: {free_mb:,.0f} MB free of {usage.total / 2**30:,.1f} GB")


def run_checks(config_path: str | None, *, offline: bool = False) -> list[Check]:
    first, config = check_config(config_path)
    broker = Check("broker", WARN, "skipped (--offline)") if offline else check_broker(config)
    return [first, *check_serial(config), *check_simulators(config), *check_warnings(config), check_gpio(), check_camera(), check_models(config),
            broker, check_clock(), check_disk(config)]


def main(args) -> int:
    checks = run_checks(args.config, offline=getattr(args, "offline", False))
    if args.json:
        print(json.dumps([asdict(c) for c in checks], ensure_ascii=False, indent=2))
    else:
        for check in checks:
            print(f"[{check.status:>4}] {check.name:<20} {check.detail}")
    return 1 if any(c.status == FAIL for c in checks) else 0
