"""`kill -9` between the pulse and the door opening: after a restart nothing is lost, nothing opens twice.

The simulator lives in this process on a pty behind a symlink; the service runs in a child
process that is SIGKILLed the instant its open frame reaches the board (before the reply).
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from .lockerkit import DOOR_S, STAFF_PIN, config, events, polled, running, service

from edge.locker.sim import BusSim, PtySim
from edge.mqtt import CommandDispatcher
from edge.security import sign_command
from edge.store import Store

KEY = bytes(range(32))
# The boards always answer here (no fault is injected), on a plain pty port as on a device: a
# generous reply timeout, so that a reply the loaded machine delivers late is not taken for a lost
# one (the child's open then gave up before its pulse landed, and the kill came too late; a boot
# read timed out and the restart did not know the door was open). It ends with the reply.
REPLY_TIMEOUT_S = 2.0
HERE = Path(__file__).parent
ROOT = HERE.parent.parent

CHILD = """
import asyncio, json, sys, time
from tests.locker.lockerkit import config, service  # run with -c from the repository root
from edge.mqtt import CommandDispatcher
from edge.store import Store

async def main():
    svc = service(__import__("pathlib").Path({tmp!r}), config(port={port!r}, reply_timeout_s={reply_timeout_s!r}),
                  store=Store({db!r}))
    svc.clock.advance({later_s!r})  # this process starts that much later on the locker's clock
    await svc.start()
    if {action!r} == "pickup":
        await svc.pickup("H29-261207-0001", {{"method": "face", "ref": "sess-9"}}, actor="kiosk")
    else:
        dispatcher = CommandDispatcher(svc.ctx.store, {{"locker": svc}}, site="hn", device="kiosk-01",
                                       command_key=bytes(range(32)), max_age_s=600)
        await dispatcher.dispatch("locker", {payload!r}.encode())
    print("the open returned: the kill came too late", flush=True)

sys.stdin.readline()  # go: the parent's kill-at-the-pulse is in place
asyncio.run(main())
"""


def signed_open(compartment: int) -> str:
    cmd = {"id": "central-cmd-7", "type": "open", "args": {"compartment": compartment, "reason": "staff"},
           "ts": time.time()}
    return json.dumps(sign_command(KEY, "hn", "kiosk-01", "locker", cmd))


@pytest.mark.parametrize("action", ["pickup", "mqtt_open"])
def test_kill_between_pulse_and_door_open(tmp_path, action):
    bus = BusSim("kerong", boards=[0])
    pty = PtySim(bus, link=tmp_path / "ttyLOCKER").start()
    db = tmp_path / "edge.db"
    cfg = config(port=pty.path, reply_timeout_s=REPLY_TIMEOUT_S)
    try:
        if action == "pickup":  # a result waiting in compartment 2, door closed again
            async def load():
                async with running(service(tmp_path, cfg, store=Store(db))) as svc:
                    await svc.load(STAFF_PIN, "H29-261207-0001", "M")
                    # Seen open before it is closed: on this plain pty port a reply later than the
                    # reply timeout leaves the open uncertain, and a door closed before any poll read
                    # it open would be an open never detected.
                    assert await svc.wait_door(2, "open", DOOR_S)
                    bus.close_door(0, 2)
                    assert await svc.wait_door(2, "closed", DOOR_S)
            asyncio.run(load())
        later_s = 0.6 if action == "pickup" else 0.0  # past the rate limit of compartment 2's loading
        target = 2
        payload = signed_open(target)
        before = bus.pulses_for(0, target)
        code = textwrap.dedent(CHILD.format(tmp=str(tmp_path), port=pty.path, db=str(db), action=action,
                                            payload=payload, later_s=later_s, reply_timeout_s=REPLY_TIMEOUT_S))
        child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        bus.on_pulse = lambda pulse: os.kill(child.pid, signal.SIGKILL)
        # The child opens only once told to: its pulse can never come before the kill is armed
        # (order race: a stalled parent could have let it pulse before on_pulse was set).
        out, err = child.communicate("go\n", timeout=60)
        bus.on_pulse = None
        assert child.returncode == -signal.SIGKILL, (out, err)
        assert bus.pulses_for(0, target) == before + 1
        assert bus.door(0, target).open  # the pulse landed; the citizen can take the papers

        async def restart():
            store = Store(db)
            async with running(service(tmp_path, cfg, store=store)) as svc:
                interrupted = events(store, "open_interrupted")
                assert [e["compartment"] for e in interrupted] == [target]
                assert not events(store, "forced_open")  # an open we sent, not a break-in
                if action == "mqtt_open":  # the broker delivers the same command again
                    dispatcher = CommandDispatcher(store, {"locker": svc}, site="hn", device="kiosk-01",
                                                   command_key=KEY, max_age_s=600)
                    again = await dispatcher.dispatch("locker", payload.encode())
                    assert again["duplicate"] and not again["ok"]
                else:
                    assert (await svc.lookup("H29-261207-0001"))["status"] == "waiting"  # being collected, door open
                    with pytest.raises(Exception, match="busy"):
                        await svc.pickup("H29-261207-0001", {"method": "face", "ref": "sess-10"}, actor="kiosk")
                bus.close_door(0, target)
                assert await svc.wait_door(target, "closed", DOOR_S)
                if action == "pickup":
                    assert (await svc.lookup("H29-261207-0001"))["status"] == "collected"
                await polled(svc)  # the doors and timers have had their say
            assert bus.pulses_for(0, target) == before + 1  # nothing was opened again
            assert [(p.board, p.lock) for p in bus.pulses[before:]] == [(0, target)]  # and no other door
            audit = [r["action"] for r in store.query("SELECT action FROM audit")]
            assert "locker.open_interrupted" in audit

        asyncio.run(asyncio.wait_for(restart(), 30))
    finally:
        pty.stop()
