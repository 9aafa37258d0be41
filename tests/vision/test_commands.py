"""The MQTT `delete` command through the device's real command dispatcher (no worker needed)."""

import asyncio
import json

import numpy as np

from edge.mqtt import CommandDispatcher
from edge.service import ServiceContext
from edge.vision.config import VisionConfig
from edge.vision.service import VisionService


def command(id, type, args, ts):
    return json.dumps({"id": id, "type": type, "args": args, "ts": ts}).encode()


def test_delete_on_request_over_mqtt(tmp_path, store):
    ctx = ServiceContext(name="vision", site="s1", device="kiosk-01", store=store,
                         config=VisionConfig(camera="none"), data_dir=tmp_path)
    vision = VisionService(ctx)
    templates = vision._open_templates()
    with store.transaction() as tx:
        templates.put(tx, "HS-77", np.random.default_rng(0).normal(size=(2, 128)), actor="clerk", purpose="result_collection",
                      now=store.clock())
    dispatcher = CommandDispatcher(store, {"vision": vision}, site="s1", device="kiosk-01", clock=store.clock)
    now = store.clock()

    async def scenario():
        first = await dispatcher.dispatch("vision", command("c1", "delete", {"dossier": "HS-77"}, now))
        again = await dispatcher.dispatch("vision", command("c1", "delete", {"dossier": "HS-77"}, now))
        bad = await dispatcher.dispatch("vision", command("c2", "delete", {"dossier": "../x"}, now))
        missing = await dispatcher.dispatch("vision", command("c3", "delete", {}, now))
        return first, again, bad, missing

    first, again, bad, missing = asyncio.run(scenario())
    assert first["ok"] and first["deleted"] is True
    assert again["ok"] and again["deleted"] is True  # answered again, not executed twice
    assert not templates.exists("HS-77")
    assert not bad["ok"] and "dossier" in bad["error"]
    assert not missing["ok"] and "dossier" in missing["error"]
    deletes = store.query("SELECT detail FROM audit WHERE action = 'vision.delete'")
    assert len(deletes) == 1 and "request" in deletes[0]["detail"]
