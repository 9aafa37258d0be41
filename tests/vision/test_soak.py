"""Soak (slow, not in `make test`): many camera verifications while the worker is frozen now and
then; every call answers (accept, or retry while the worker restarts), nothing hangs."""

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

    config = VisionConfig(camera=f"replay:{FACES / 'obama.jpg'}", model_dir=str(model_dir), threads=1,
                          heartbeat_timeout_s=1.5, fps=10.0)
    ctx = ServiceContext(name="vision", site="t", device="k", store=store, config=config, data_dir=tmp_path)

    async def scenario():
        service = VisionService(ctx)
        await service.start()
        runner = asyncio.create_task(service.run())  # the loop that watches the heartbeat
        decisions = {}
        try:
            assert (await service.enrol("HS-S", [load_rgb("obama2.jpg")] * 3,
                                        {"actor": "clerk", "purpose": "result_collection"}))["ok"]
            for i in range(ROUNDS):
                if i % 50 == 25 and service.worker.pid:
                    os.kill(service.worker.pid, signal.SIGSTOP)  # killed and replaced by the proxy
                started = time.monotonic()
                result = await asyncio.wait_for(service.verify("HS-S", timeout_s=1.0), 30)
                assert time.monotonic() - started < 30
                decisions[result["decision"]] = decisions.get(result["decision"], 0) + 1
                assert result["decision"] in ("accept", "retry"), result
        finally:
            runner.cancel()
            await service.stop()
        return decisions, service.worker.restarts

    decisions, restarts = asyncio.run(scenario())
    assert decisions.get("accept", 0) >= ROUNDS * 0.8
    assert restarts >= ROUNDS // 50
