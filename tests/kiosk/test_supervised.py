"""The kiosk as `edge run` starts it: the real supervisor, a real mosquitto, the locker on its pty
simulator; the screens are served, see their peers, and a PIN pickup opens the right door."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

from edge.config import from_dict
from edge.supervisor import Supervisor
from kiosk_harness import LoopThread
from edge.testing import wait_until

CODE = "000.00.01.H29-240115-0001"


def http(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def wait_for(predicate, timeout_s=30.0, what="condition"):
    """edge.testing.wait_until over HTTP: a server not listening yet is 'not yet', not an error."""
    def answered():
        try:
            return bool(predicate())
        except (urllib.error.URLError, ConnectionError, OSError):
            return False
    wait_until(answered, timeout_s, what)


def test_supervised_kiosk_serves_its_screens_and_opens_the_loaded_compartment(mosquitto, tmp_path):
    from edge.locker.pins import hash_pin

    config = from_dict({
        "site": "test", "device": "kiosk-01", "role": "kiosk", "data_dir": str(tmp_path / "data"),
        "broker": {"url": mosquitto.url},
        "locker": {"driver": "kerong", "port": "sim", "rate_limit_s": 0.5, "poll_interval_s": 0.1,
                   "staff_pins": {"staff-1": hash_pin("2580")}, "sim": {"auto_close_s": 0.6},
                   "compartments": {"1": {"board": 0, "lock": 1, "size": "S"},
                                    "2": {"board": 0, "lock": 2, "size": "M"}}},
        # port 0: the system picks it as the kiosk binds (a port from free_port() could be taken by
        # the other xdist worker before the supervisor got to the kiosk)
        "kiosk": {"port": 0, "face_pause_s": 0.1},
    })
    supervisor = Supervisor(config)
    loop = LoopThread()
    run = asyncio.run_coroutine_threadsafe(supervisor.run(), loop.loop)
    try:
        wait_until(lambda: getattr(supervisor.peers.get("kiosk"), "url", None) is not None, 60, "the kiosk serving")
        base = supervisor.peers["kiosk"].url
        wait_for(lambda: http(base + "/api/status")["services"].get("locker") == "ok", what="the locker ok on /status")
        status = http(base + "/api/status")
        # the supervisor's built-in "device" service (resend) is listed beside the configured ones
        assert status["site"] == "test" and set(status["services"]) == {"locker", "kiosk", "device"}
        loaded = http(base + "/api/loading", {"staff_pin": "2580", "receipt": CODE, "size": "M", "pin": "4321"})
        assert loaded["ok"] and loaded["compartment"] == 2
        locker = supervisor.peers["locker"]
        # the simulated staff member closes the door after auto_close_s (past the rate limit too)
        wait_for(lambda: locker.flows.doors()[2]["door"] == "closed" and locker.flows.doors()[2]["last_pulse"] < time.time() - 0.6,
                 what="door 2 closed after loading, past the rate limit")
        view = http(base + "/api/kiosk/start", {})
        view = http(base + "/api/kiosk/code", {"session": view["session"], "code": CODE})
        assert view["step"] == "pin"  # no vision service on this device: code + PIN
        view = http(base + "/api/kiosk/pin", {"session": view["session"], "pin": "4321"})
        assert view["step"] == "open" and view["compartment"] == 2
        bus = locker.sim.bus
        assert bus.pulses_for(0, 2) == 2 and bus.pulses_for(0, 1) == 0  # loading + pickup, never door 1
        wait_for(lambda: http(base + "/api/kiosk")["step"] in ("thanks", "start"), 15, "the door closed after the pickup")
        # the supervisor's real MQTT link: it connects on paho's thread, whenever the broker answers
        # (nothing above waited for it), so its "connected" is waited for, not read once
        wait_for(lambda: http(base + "/api/status")["broker"]["connected"] is True, what="the broker link up on /status")
        assert http(base + "/api/status")["broker"]["pending"] >= 0
    finally:
        loop.loop.call_soon_threadsafe(supervisor.request_stop)
        run.result(30)
        loop.close()
