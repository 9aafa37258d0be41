"""Soak (slow, not in `make test`): many camera verifications while the worker is frozen now and
then; every call answers (accept, or retry while the worker restarts with its backoff), nothing
hangs, and after each freeze the service comes back to accepting by itself."""

import asyncio
import os
import signal
import time

import pytest

from edge.service import ServiceContext
from edge.vision.config import VisionConfig
from tests.vision.conftest import FACES, load_rgb

pytestmark = pytest.mark.slow
ROUNDS = int(os.environ.get("EDGE_VISION_SOAK_ROUNDS", "200"))


def test_verify_soak_with_frozen_workers(tmp_path, store, model_dir):
    from edge.vision.service import VisionService

    # the replay camera shows a still photo: no head turn to make, so the challenge is explicitly
    # off (the soak is about worker freezes; liveness has its own tests in test_liveness.py)
    config = VisionConfig(camera=f"replay:{FACES / 'obama.jpg'}", model_dir=str(model_dir), threads=1,
                          heartbeat_timeout_s=1.5, fps=10.0, liveness_motion="off")
    ctx = ServiceContext(name="vision", site="t", device="k", store=store, config=config, data_dir=tmp_path)

    async def scenario():
        service = VisionService(ctx)
        await service.start()
        runner = asyncio.create_task(service.run())  # the loop that watches the heartbeat
        decisions = {}
        freezes = 0

        async def verify() -> str:
            started = time.monotonic()
            result = await asyncio.wait_for(service.verify("HS-S", timeout_s=5.0), 30)
            assert time.monotonic() - started < 30
            assert result["decision"] in ("accept", "retry"), result
            decisions[result["decision"]] = decisions.get(result["decision"], 0) + 1
            return result["decision"]

        try:
            assert (await service.enrol("HS-S", [load_rgb("obama2.jpg")] * 3,
                                        {"actor": "clerk", "purpose": "result_collection"}))["ok"]
            for cycle in range(ROUNDS // 50):
                os.kill(service.worker.pid, signal.SIGSTOP)  # killed and replaced by the proxy
                freezes += 1
                # Every call answers (retry while the worker is replaced, with its restart backoff),
                # and the service comes back by itself.
                deadline = time.monotonic() + 120
                while await verify() != "accept":
                    assert time.monotonic() < deadline, f"no accept within 120 s of freeze {freezes}"
                    await asyncio.sleep(0.1)
                for _ in range(49):  # a healthy worker: every verification of the right face accepts
                    assert await verify() == "accept"
        finally:
            runner.cancel()
            await service.stop()
        return decisions, service.worker.restarts, freezes

    decisions, restarts, freezes = asyncio.run(scenario())
    assert decisions["accept"] >= freezes * 50
    assert restarts == freezes
