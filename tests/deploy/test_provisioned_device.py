"""The whole provisioning chain: the office broker's own tools make the CA and the device's
password, the technician's edge.toml carries them on the boot partition, edge-firstboot turns it
into /etc/edge, and a supervisor started from exactly that config logs in over TLS, comes online
on the office broker, and opens a door only for a command signed with the provisioned key."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from edge import config as edge_config, security
from edge.service import Service
from edge.supervisor import Supervisor

REPO = Path(__file__).resolve().parents[2]
FIRSTBOOT = REPO / "images" / "files" / "edge-firstboot"
KEY_HEX = "c3" * 32


@dataclasses.dataclass(frozen=True)
class Section:
    enabled: bool = True


class Doors(Service):
    name = "locker"
    commands = {"open": {"compartment": int}}
    signed_commands = frozenset({"open"})
    opened: list[int] = []

    async def handle_command(self, type, args, cmd_id=None):
        Doors.opened.append(args["compartment"])
        return {"compartment": args["compartment"]}


def test_firstboot_output_brings_the_device_online_and_signed_opens_work(tmp_path, office_broker, peers):
    root, boot = tmp_path / "root", tmp_path / "boot"
    (root / "etc").mkdir(parents=True)
    # `edge` is this test's own user, so the supervisor can read the 0600 secrets first boot writes.
    (root / "etc/passwd").write_text(f"edge:x:{os.getuid()}:{os.getgid()}::/:/bin/false\n")
    zone = root / "usr/share/zoneinfo/Asia/Ho_Chi_Minh"
    zone.parent.mkdir(parents=True)
    zone.write_bytes(b"TZif")
    boot.mkdir()
    ca_pem = Path(office_broker.ca_file).read_text()
    (boot / "edge.toml").write_text(
        'site = "hn-test"\ndevice = "kiosk-a"\nrole = "kiosk"\n'
        f'data_dir = "{tmp_path / "data"}"\n'
        f'[broker]\nurl = "mqtts://localhost:{office_broker.tls_port}"\n'
        f'[provision]\nbroker_password = "{office_broker.passwords["kiosk-a"]}"\n'
        f'command_key = "{KEY_HEX}"\nca_cert = """{ca_pem}"""\n')
    result = subprocess.run([sys.executable, str(FIRSTBOOT), "--boot", str(boot), "--root", str(root),
                             "--edge", str(Path(sys.executable).parent / "edge")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

    # The config points at /etc/edge/...; here that folder lives under the scratch root.
    text = (root / "etc/edge/edge.toml").read_text().replace('"/etc/edge/', f'"{root}/etc/edge/')
    config = edge_config.from_dict(tomllib.loads(text))
    assert config.broker.username == "kiosk-a"
    config = dataclasses.replace(config, services={"locker": Section()})
    supervisor = Supervisor(config, service_classes={"locker": Doors})
    Doors.opened = []

    central = peers("central")
    assert central.connect() == 0
    prefix = "motcua/v1/hn-test/kiosk-a"
    central.subscribe(f"{prefix}/status")
    central.subscribe(f"{prefix}/locker/cmd/result")

    def next_json(predicate, timeout_s=20.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            topic, body = central.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            payload = json.loads(body)
            if predicate(topic, payload):
                return payload
        raise AssertionError("expected message did not arrive")

    async def scenario():
        task = asyncio.create_task(supervisor.run())
        try:
            await asyncio.to_thread(next_json, lambda t, p: t.endswith("/status") and p["state"] == "online")
            cmd = security.sign_command(bytes.fromhex(KEY_HEX), "hn-test", "kiosk-a", "locker",
                                        {"id": "p1", "type": "open", "args": {"compartment": 2}, "ts": time.time()})
            central.publish(f"{prefix}/locker/cmd", json.dumps(cmd))
            return await asyncio.to_thread(next_json, lambda t, p: t.endswith("/cmd/result") and p.get("id") == "p1")
        finally:
            supervisor.request_stop()
            await task

    reply = asyncio.run(scenario())
    assert reply["ok"] is True and Doors.opened == [2]
