"""`edge demo --central`: the office dashboard beside the demo device, on a throwaway PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

from edge.central.auth import DEMO_TOKEN
from edge.localbroker import free_port


def test_demo_with_central_shows_the_demo_device_on_the_dashboard(mosquitto):
    port = free_port()
    # No --seconds: the test ends the demo (terminate, below) once it has looked. A fixed run
    # could end first on a loaded machine, where starting PostgreSQL, central and the device
    # can take most of it.
    demo = subprocess.Popen([sys.executable, "-m", "edge", "demo", "--broker", mosquitto.url,
                             "--central", f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        devices, deadline = [], time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/api/devices",
                                                 headers={"Authorization": f"Bearer {DEMO_TOKEN}"})
                with urllib.request.urlopen(request, timeout=2) as reply:
                    devices = json.loads(reply.read())
                if devices and devices[0]["state"] == "online":
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert devices and devices[0]["device"] == "demo-01" and devices[0]["state"] == "online"
        # The dashboard can command the demo device (one shared demo key): a door-moving command
        # waits for its confirmation, a status comes back from the device's locker service.
        for cmd_type, expected in (("open", 202), ("status", 200)):
            body = json.dumps({"site": devices[0]["site"], "device": "demo-01", "service": "locker",
                               "type": cmd_type, "args": {"compartment": 1} if cmd_type == "open" else {}}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/cmd", data=body, headers={
                "Authorization": f"Bearer {DEMO_TOKEN}", "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as reply:
                answer = json.loads(reply.read())
                assert reply.status == expected, answer
        assert answer["result"]["ok"] is True and "compartments" in answer["result"]
    finally:
        demo.terminate()
        out, _ = demo.communicate(timeout=60)
    assert f"office dashboard (central) at http://127.0.0.1:{port}/" in out
    assert "vanhanh / PIN 246810 (operator)" in out and DEMO_TOKEN in out
