"""`kill -9` mid-pickup, then a board that does not answer at the restart.

The pickup is not decided on the door row from before the restart (the door may be open): it stays
`opening`, so no second pickup can pulse that door, the board's `board_offline` alarm names it, and
once the board answers the pickup is recovered as at a normal boot. The simulator lives in this
process on a pty behind a symlink (two boards); the service runs in a child process that is
SIGKILLed the instant its open frame reaches the board, as in test_locker_durability.py.
"""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from .lockerkit import DOOR_S, STAFF_PIN, config, events, polled, replace, running, service, until

from edge.locker.config import CompartmentConfig
from edge.locker.flows import LockerRefused
from edge.locker.sim import BusSim, PtySim
from edge.store import Store

RECEIPT = "H29-261207-0001"
# The child's open must land before its kill (a plain pty port, as on a device): a generous reply
# timeout, ended by the reply (test_locker_durability.py). The restart polls a silent board each
# round, so it waits less: a late reply there only delays a reading, never decides on a stale one.
CHILD_REPLY_S = 2.0
RESTART_REPLY_S = 1.0
ROOT = Path(__file__).parent.parent.parent

CHILD = """
import asyncio, sys
from tests.locker.test_locker_recovery import two_boards  # run with -c from the repository root
from tests.locker.lockerkit import service
from edge.store import Store

async def main():
    svc = service(__import__("pathlib").Path({tmp!r}), two_boards({port!r}, {reply_s!r}), store=Store({db!r}))
    svc.clock.advance(0.6)  # past the rate limit of the loading's open
    await svc.start()
    await svc.pickup({receipt!r}, {{"method": "face", "ref": "sess-9"}}, actor="kiosk")
    print("the open returned: the kill came too late", flush=True)

sys.stdin.readline()  # go: the parent's kill-at-the-pulse is in place
asyncio.run(main())
"""


def two_boards(port: str, reply_timeout_s: float):
    """The kit's six compartments on board 0, and compartment 7 on board 1."""
    cfg = config(port=port, reply_timeout_s=reply_timeout_s)
    return replace(cfg, compartments={**cfg.compartments, "7": CompartmentConfig(board=1, lock=1, size="S")})


def status(store: Store) -> str:
    return store.query("SELECT status FROM locker_assignments WHERE receipt = ?", (RECEIPT,))[0]["status"]


async def refused_as_busy(svc) -> None:
    """A second pickup of the same result is refused before anything is pulsed."""
    with pytest.raises(LockerRefused) as refused:
        await svc.pickup(RECEIPT, {"method": "face", "ref": "sess-10"}, actor="kiosk")
    assert refused.value.reason == "busy"


def killed_mid_pickup(tmp_path: Path, bus: BusSim, pty: PtySim, db: Path) -> int:
    """A result loaded (its door closed again), then a pickup whose process dies at the pulse: the
    door is open, the store says `opening` with the open `started`. Returns the compartment."""
    cfg = two_boards(pty.path, CHILD_REPLY_S)

    async def load() -> int:
        async with running(service(tmp_path, cfg, store=Store(db))) as svc:
            compartment = (await svc.load(STAFF_PIN, RECEIPT, "M"))["compartment"]
            assert await svc.wait_door(compartment, "open", DOOR_S)  # seen open before it is closed
            bus.close_door(0, compartment)
            assert await svc.wait_door(compartment, "closed", DOOR_S)
            return compartment

    compartment = asyncio.run(load())
    assert cfg.where(compartment).board == 0
    code = textwrap.dedent(CHILD.format(tmp=str(tmp_path), port=pty.path, db=str(db), reply_s=CHILD_REPLY_S,
                                        receipt=RECEIPT))
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    bus.on_pulse = lambda pulse: os.kill(child.pid, signal.SIGKILL)
    out, err = child.communicate("go\n", timeout=60)  # it opens only once the kill is armed
    bus.on_pulse = None
    assert child.returncode == -signal.SIGKILL, (out, err)
    assert bus.door(0, compartment).open  # the pulse landed: the citizen may be taking the papers
    return compartment


@pytest.mark.parametrize("door_when_back", ["open", "closed"])
def test_pickup_on_a_board_silent_at_restart_waits_for_that_board(tmp_path, door_when_back):
    bus = BusSim("kerong", boards=[0, 1])
    pty = PtySim(bus, link=tmp_path / "ttyLOCKER").start()
    db = tmp_path / "edge.db"
    try:
        target = killed_mid_pickup(tmp_path, bus, pty, db)
        pulses = list(bus.pulses)  # the loading's open and the killed pickup's
        bus.offline.add(0)  # the board of the interrupted pickup does not answer at the restart

        async def restart():
            store = Store(db)
            async with running(service(tmp_path, two_boards(pty.path, RESTART_REPLY_S), store=store)) as svc:
                assert [e["compartment"] for e in events(store, "open_interrupted")] == [target]
                # Its door row says closed (read before the kill): not taken for the door of now.
                assert status(store) == "opening"
                assert not events(store, "pickup_interrupted")
                await refused_as_busy(svc)
                assert ("board_offline", "board:0") in {(a["kind"], a["target"]) for a in svc.flows.alarms()}
                assert await until(lambda: svc.health() == "degraded")  # board 1 answers (a late reply: next round)
                await polled(svc, 1)  # a round with the board still silent decides nothing either
                assert status(store) == "opening"

                if door_when_back == "closed":  # shut while the board was silent
                    bus.close_door(0, target)
                bus.offline.discard(0)
                assert await until(lambda: svc.health() == "ok")  # the board answers: alarm cleared
                await polled(svc, 1)  # the round that read it has recovered the pickup
                if door_when_back == "open":  # as at a normal boot: the close will mark it collected
                    assert svc.flows.doors()[target]["door"] == "open"
                    assert not events(store, "forced_open")  # explained by the interrupted open
                    assert status(store) == "opening"
                    await refused_as_busy(svc)
                    bus.close_door(0, target)
                    assert await svc.wait_door(target, "closed", DOOR_S)
                    assert await until(lambda: status(store) == "collected")
                else:  # as at a normal boot: the door never showed open, the result waits again
                    assert status(store) == "waiting"
                    assert [e["compartment"] for e in events(store, "pickup_interrupted")] == [target]
                await polled(svc)  # the doors and timers have had their say
            assert bus.pulses == pulses  # nothing was opened again, and no other door

        asyncio.run(asyncio.wait_for(restart(), 60))
    finally:
        pty.stop()
