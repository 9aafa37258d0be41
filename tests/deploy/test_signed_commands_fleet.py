"""A door-opening command through the office broker exactly as deployed (TLS, per-device
passwords, deploy/mosquitto/acl) to a running supervisor: only a fresh command signed with the
device's key opens; an unsigned, forged, stale or replayed one is refused (never executed twice)
and written to the audit log; another device cannot even deliver one."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time

import pytest

from edge import audit, security
from edge.config import from_dict
from edge.service import Service
from edge.store import Store
from edge.supervisor import Supervisor

SITE, DEVICE = "hn-test", "kiosk-a"
KEY = bytes.fromhex("5a" * 32)
PREFIX = f"motcua/v1/{SITE}/{DEVICE}"


@dataclasses.dataclass(frozen=True)
class Section:
    enabled: bool = True


class Doors(Service):
    name = "locker"
    commands = {"open": {"compartment": int}, "status": {}}
    signed_commands = frozenset({"open"})
    opened: list[int] = []

    async def handle_command(self, type, args, cmd_id=None):
        if type == "open":
            Doors.opened.append(args["compartment"])
            return {"compartment": args["compartment"]}
        return {"doors": {}}


def device_config(tmp_path, broker):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "broker.password").write_text(broker.passwords[DEVICE])
    key_file = secrets / "command.key"
    key_file.write_text(KEY.hex())
    os.chmod(key_file, 0o600)
    config = from_dict({
        "site": SITE, "device": DEVICE, "role": "kiosk", "data_dir": str(tmp_path / "data"),
        "broker": {"url": f"mqtts://localhost:{broker.tls_port}", "username": DEVICE,
                   "password_file": str(secrets / "broker.password"), "ca_file": broker.ca_file,
                   "command_key_file": str(key_file), "command_max_age_s": 60},
    })
    return dataclasses.replace(config, services={"locker": Section()})


def sign(cmd, key=KEY):
    return json.dumps(security.sign_command(key, SITE, DEVICE, "locker", cmd))


def test_only_fresh_signed_opens_run_and_refusals_are_audited(tmp_path, office_broker, peers):
    Doors.opened = []
    config = device_config(tmp_path, office_broker)
    supervisor = Supervisor(config, service_classes={"locker": Doors})

    central = peers("central")
    assert central.connect() == 0
    central.subscribe(f"{PREFIX}/status")
    central.subscribe(f"{PREFIX}/locker/cmd/result")
    intruder = peers("kiosk-b")
    assert intruder.connect() == 0

    def result_of(cmd_id: str) -> dict:
        """The device's answer to `cmd_id` (results arrive in the order the commands were sent)."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            topic, body = central.messages.get(timeout=deadline - time.monotonic())
            payload = json.loads(body)
            if topic.endswith("/cmd/result") and payload.get("id") == cmd_id:
                return payload
            assert payload.get("id") != "forged-by-b", payload
        raise AssertionError(f"no result for {cmd_id}")

    def exchange(payload: str, cmd_id: str) -> dict:
        central.publish(f"{PREFIX}/locker/cmd", payload)
        return result_of(cmd_id)

    async def scenario():
        task = asyncio.create_task(supervisor.run())
        try:
            # Online means connected, subscribed to its commands, and allowed by the ACL to say so.
            def wait_online():
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    topic, body = central.messages.get(timeout=deadline - time.monotonic())
                    if topic.endswith("/status") and json.loads(body)["state"] == "online":
                        return
                raise AssertionError("device never came online through the office broker")
            await asyncio.to_thread(wait_online)

            now = time.time()
            results = {}
            good = sign({"id": "c1", "type": "open", "args": {"compartment": 3}, "ts": now})
            results["signed"] = await asyncio.to_thread(exchange, good, "c1")
            results["replayed"] = await asyncio.to_thread(exchange, good, "c1")
            unsigned = json.dumps({"id": "c2", "type": "open", "args": {"compartment": 4}, "ts": now})
            results["unsigned"] = await asyncio.to_thread(exchange, unsigned, "c2")
            forged = sign({"id": "c3", "type": "open", "args": {"compartment": 4}, "ts": now}, key=b"x" * 32)
            results["forged"] = await asyncio.to_thread(exchange, forged, "c3")
            stale = sign({"id": "c4", "type": "open", "args": {"compartment": 4}, "ts": now - 3600})
            results["stale"] = await asyncio.to_thread(exchange, stale, "c4")
            tampered = json.loads(sign({"id": "c5", "type": "open", "args": {"compartment": 4}, "ts": now}))
            tampered["args"]["compartment"] = 5  # changed in flight
            results["tampered"] = await asyncio.to_thread(exchange, json.dumps(tampered), "c5")
            # Another device holding a valid signature still cannot deliver it: the ACL drops it.
            intruder.publish(f"{PREFIX}/locker/cmd",
                             sign({"id": "forged-by-b", "type": "open", "args": {"compartment": 6}, "ts": now}))
            status = json.dumps({"id": "c6", "type": "status", "args": {}, "ts": now})
            results["after"] = await asyncio.to_thread(exchange, status, "c6")
            return results
        finally:
            supervisor.request_stop()
            await task

    results = asyncio.run(scenario())

    assert results["signed"]["ok"] is True and results["signed"]["compartment"] == 3
    assert results["replayed"].get("duplicate") is True
    for name in ("unsigned", "forged", "stale", "tampered"):
        assert results[name]["ok"] is False, (name, results[name])
    assert "sign" in results["unsigned"]["error"]
    assert "bad signature" in results["forged"]["error"] and "bad signature" in results["tampered"]["error"]
    assert "stale" in results["stale"]["error"]
    assert results["after"]["ok"] is True
    assert Doors.opened == [3]  # one door, once

    store = Store(config.store_path)
    try:
        rows = store.query("SELECT action, detail FROM audit ORDER BY id")
    finally:
        store.close()
    actions = [(r["action"], json.loads(r["detail"]).get("id")) for r in rows]
    assert ("command_received", "c1") in actions
    assert ("command_repeated", "c1") in actions
    for cmd_id in ("c2", "c3", "c4", "c5"):
        assert ("command_refused", cmd_id) in actions, cmd_id
    assert not [a for a in actions if a[1] == "forged-by-b"]
    assert audit.verify(config.store_path).ok
