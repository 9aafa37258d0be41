"""The supervisor: a crash restarts that service alone, the breaker trips, the status says so."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
import sys

from edge.config import SupervisorConfig, from_dict
from edge.service import Service
from edge.supervisor import ServiceRunner, Supervisor
from edge.testing import MqttRecorder, until


@dataclasses.dataclass(frozen=True)
class Section:
    enabled: bool = True


class Steady(Service):
    name = "pager"
    critical = True
    ticks = 0

    async def run(self):
        while True:
            Steady.ticks += 1
            await asyncio.sleep(0.01)


class Crashy(Service):
    name = "vision"
    starts = 0

    async def start(self):
        Crashy.starts += 1

    async def run(self):
        await asyncio.sleep(0.02)
        raise RuntimeError("model exploded")


FAST = SupervisorConfig(backoff_initial_s=0.01, backoff_max_s=0.05, breaker_failures=4,
                        breaker_window_s=60, breaker_cooldown_s=3600)


def make_config(tmp_path, broker_url, **supervisor):
    config = from_dict({"site": "hn", "device": "desk-01", "role": "desk", "data_dir": str(tmp_path / "data"),
                        "broker": {"url": broker_url}, "supervisor": supervisor})
    return dataclasses.replace(config, services={"pager": Section(), "vision": Section()})


def test_runner_restarts_with_backoff_then_opens_the_breaker():
    async def scenario():
        changes = []
        runner = ServiceRunner("vision", lambda: Crashy(None), FAST, on_change=lambda: changes.append(1))
        task = asyncio.create_task(runner.run_forever())
        await until(lambda: runner.breaker_open, what="the breaker open")
        health = runner.health()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return runner, health

    Crashy.starts = 0
    runner, health = asyncio.run(scenario())
    assert runner.breaker_open and health == "down"
    assert Crashy.starts == FAST.breaker_failures  # tried exactly up to the breaker, then stopped


def test_a_crashing_service_never_stops_the_others_and_status_shows_it(tmp_path, mosquitto):
    config = make_config(tmp_path, mosquitto.url, backoff_initial_s=0.01, backoff_max_s=0.05,
                         breaker_failures=3, breaker_cooldown_s=3600)
    supervisor = Supervisor(config, service_classes={"pager": Steady, "vision": Crashy})

    async def scenario():
        task = asyncio.create_task(supervisor.run())
        with MqttRecorder(mosquitto.url, "motcua/v1/hn/desk-01/status") as rec:
            await asyncio.to_thread(rec.wait_for, lambda t, p: p["services"].get("vision") == "down", 1, 60)
            ticks_before = Steady.ticks
            await until(lambda: Steady.ticks > ticks_before + 5, what="the pager ticking on")  # kept running
            assert supervisor.health() == {"pager": "ok", "vision": "down"}
            assert supervisor.critical_ok()  # vision is not critical: the watchdog is still fed
            supervisor.request_stop()
            await task
            return await asyncio.to_thread(rec.wait_for, lambda t, p: p["state"] == "offline")

    offline = asyncio.run(scenario())
    assert offline


def test_a_wedged_critical_service_stops_the_watchdog(tmp_path, mosquitto):
    class Wedged(Steady):
        wedged_after_s = 0.2
        healthy_after_beat: bool | None = None

        async def run(self):
            self.heartbeat()
            # The supervisor's view right after the beat, in the same step: asked later, a busy
            # machine's pause longer than wedged_after_s would make a healthy start look wedged.
            self.healthy_after_beat = supervisor.critical_ok()
            await asyncio.Event().wait()  # stuck on a read that never returns

    config = make_config(tmp_path, mosquitto.url)
    config = dataclasses.replace(config, services={"pager": Section()})
    supervisor = Supervisor(config, service_classes={"pager": Wedged})

    async def scenario():
        task = asyncio.create_task(supervisor.run())
        await until(lambda: "pager" in supervisor.runners and supervisor.runners["pager"].running,
                    what="the pager running")
        healthy_at_start = supervisor.runners["pager"].service.healthy_after_beat
        wedged = await until(lambda: not supervisor.critical_ok(), what="the wedged pager noticed")
        supervisor.request_stop()
        await task
        return healthy_at_start, wedged

    assert asyncio.run(scenario()) == (True, True)


def test_edge_demo_publishes_status_online_then_offline(mosquitto):
    with MqttRecorder(mosquitto.url) as rec:
        demo = subprocess.Popen([sys.executable, "-m", "edge", "demo", "--seconds", "60", "--broker", mosquitto.url],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            rec.wait_for(lambda t, p: t.endswith("/status") and p["state"] == "online", 1, 60)
            demo.send_signal(signal.SIGINT)  # Ctrl-C, as its start line says: a clean stop
            _, stderr = demo.communicate(timeout=120)
        finally:
            demo.kill()
        assert demo.returncode == 0, stderr[-2000:]
        rec.wait_for(lambda t, p: t.endswith("/status") and p["state"] == "offline")
        statuses = [p["state"] for t, p in rec.matching(lambda t, p: t.endswith("/status"))]
    assert statuses[0] == "online" and statuses[-1] == "offline"
