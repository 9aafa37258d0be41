"""`edge central cmd` reads the device's answer on …/cmd/result: a deeply nested message there
before the real answer killed its MQTT thread (RecursionError), so the real answer was never read
and the command ended as a timeout (a door could have opened with no 'ok' on record)."""

from __future__ import annotations

import json

import paho.mqtt.client as mqtt

from edge.cli import main as edge_main
from edge.security import new_key

from .conftest import ANSWER_TIMEOUT_S, stop_network
from .test_cmd import write_key

SITE, DEVICE = "hanoi-bd", "kiosk-9"


def test_a_nested_message_before_the_answer_does_not_hide_the_answer(tmp_path, broker, capsys):
    base = f"motcua/v1/{SITE}/{DEVICE}/locker/cmd"
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)

    def answer(client, userdata, msg):
        cmd = json.loads(msg.payload)
        client.publish(base + "/result", "[" * 50000 + "]" * 50000, qos=1)
        client.publish(base + "/result", json.dumps({"id": cmd["id"], "ok": True, "doors": 6}), qos=1)

    subscribed = []
    device.on_message = answer
    device.on_subscribe = lambda *a: subscribed.append(True)
    device.connect("127.0.0.1", broker.port)
    device.subscribe(base, qos=1)
    device.loop_start()
    try:
        while not subscribed:
            device._thread.join(0.05)
        key = write_key(tmp_path / "k.key", new_key())
        rc = edge_main(["central", "cmd", "--broker", broker.url, "--site", SITE, "--device", DEVICE,
                        "--service", "locker", "--type", "status", "--key", str(key), "--timeout", str(ANSWER_TIMEOUT_S),
                        "--json"])
    finally:
        stop_network(device)
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["result"] == {"id": out["id"], "ok": True, "doors": 6}
