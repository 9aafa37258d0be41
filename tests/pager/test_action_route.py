"""One route for one pager action: the counter screen's HTTP call, a GPIO panel and an MQTT command
all go through `PagerService.action`, checked by the same `commands` schema, so a bad argument is
refused over HTTP with the very words MQTT uses (real broker, real pager on its simulator, the
kiosk's real web app)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

from edge.config import from_dict
from edge.supervisor import Supervisor
from edge.testing import MqttRecorder

CMD = "motcua/v1/hn/desk-01/pager/cmd"
BAD = [("call_next", {"counter": "1", "colour": "red"}),   # an argument the pager does not take
       ("rate", {"counter": "1", "score": "five"}),         # the wrong type
       ("pause", {"paused": True})]                         # a missing argument


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as err:
        return json.loads(err.read())


def test_an_http_action_is_refused_with_the_words_mqtt_uses(mosquitto, tmp_path):
    config = from_dict({"site": "hn", "device": "desk-01", "role": "desk", "data_dir": str(tmp_path / "data"),
                        "broker": {"url": mosquitto.url},
                        "pager": {"port": "sim", "counters": {"1": {"services": ["general"]}}},
                        "kiosk": {"port": 0}})  # the kiosk binds a free port itself: none to lose meanwhile
    supervisor = Supervisor(config)

    async def scenario():
        task = asyncio.create_task(supervisor.run())
        try:
            with MqttRecorder(mosquitto.url) as rec:
                await asyncio.to_thread(rec.wait_for, lambda t, p: t.endswith("/status") and p["state"] == "online"
                                        and p["services"].get("kiosk") == "ok" and "pager" in p["services"], 1, 20)
                url = supervisor.peers["kiosk"].url
                http, mqtt = [], []
                for n, (action, args) in enumerate(BAD):
                    http.append(await asyncio.to_thread(post, f"{url}/api/pager/{action}", args))
                    rec.publish(CMD, {"id": f"bad-{n}", "type": action, "args": args, "ts": time.time()})
                    found = await asyncio.to_thread(rec.wait_for, lambda t, p, n=n: t == CMD + "/result"
                                                    and p["id"] == f"bad-{n}")
                    mqtt.append(found[0][1])
                good = await asyncio.to_thread(post, f"{url}/api/pager/call_next", {"counter": "1"})
            return http, mqtt, good
        finally:
            supervisor.request_stop()
            await task

    http, mqtt, good = asyncio.run(scenario())
    for (action, _), h, m in zip(BAD, http, mqtt):
        assert h["ok"] is False and m["ok"] is False, action
        assert h["error"] == m["error"], action
    assert "unknown argument(s) ['colour']" in http[0]["error"]
    assert http[1]["error"] == "argument 'score' must be int, found str"
    assert http[2]["error"] == "missing argument 'counter' (str)"
    assert good["ok"] is True and good["result"]["ticket"] is None  # the same answer as MQTT's: queue empty
