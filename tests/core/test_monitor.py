"""`edge monitor`: an operator sees a site's status and events as they happen."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

from edge.config import BrokerConfig
from edge.mqtt import Reporter
from edge.testing import wait_until


def test_monitor_prints_status_and_events_of_the_site(mosquitto, store):
    monitor = subprocess.Popen([sys.executable, "-m", "edge", "monitor", "--broker", mosquitto.url,
                                "--site", "hn", "--seconds", "60", "--json"], stdout=subprocess.PIPE, text=True)
    lines: list[dict] = []

    def read_lines():  # on a thread, so the test waits for a line with a deadline, not for the exit
        for line in monitor.stdout:
            lines.append(json.loads(line))

    reader = threading.Thread(target=read_lines, daemon=True)
    reader.start()
    reporter = Reporter(BrokerConfig(url=mosquitto.url), store, site="hn", device="desk-01", version="t")
    try:
        reporter.start()
        wait_until(reporter.connected.is_set, what="reporter connected")
        # The status is retained: the monitor prints it once it has subscribed, whenever that is.
        wait_until(lambda: any(line["topic"].endswith("/status") for line in lines), 30, "the monitor subscribed")
        with store.transaction() as tx:
            tx.emit("pager", "ticket_called", ticket="A012", card=7, counter="2")
        wait_until(lambda: store.pending_count() == 0, what="event published")
        wait_until(lambda: any(line["topic"].endswith("/pager/event") for line in lines), what="the event printed")
    finally:
        reporter.stop()
        monitor.kill()
        monitor.wait()
        reader.join(5)
    topics = [line["topic"] for line in lines]
    assert "motcua/v1/hn/desk-01/status" in topics
    called = [line["payload"] for line in lines if line["topic"].endswith("/pager/event")]
    assert called and called[0]["ticket"] == "A012" and called[0]["card"] == 7


def test_monitor_describes_messages_in_one_readable_line():
    from edge.monitor import describe

    line = describe("motcua/v1/hn/desk-01/pager/event",
                    {"id": "x", "seq": 5, "ts": 1.0, "type": "ticket_called", "ticket": "A012", "card": 7})
    assert line == "hn/desk-01 pager: #5 ticket_called ticket=A012 card=7"
    status = describe("motcua/v1/hn/desk-01/status", {"state": "offline", "version": "1.0", "services": {"pager": "ok"}})
    assert status == "hn/desk-01 is offline (v1.0) pager=ok"


def test_monitor_keeps_printing_after_a_hostile_message(mosquitto):
    """A deeply nested payload (RecursionError in json) or a status whose `services` is not an
    object killed the monitor's MQTT thread: `edge monitor` and the demo terminal went silent."""
    import threading

    import paho.mqtt.client as mqtt

    from edge.monitor import watch

    lines, stop = [], threading.Event()
    thread = threading.Thread(target=watch, args=(mosquitto.url, "hn", lines.append, stop), daemon=True)
    thread.start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    good = json.dumps({"id": "g", "seq": 1, "ts": 1.0, "type": "ticket_called", "ticket": "A012"})
    try:
        wait_until(lambda: pub.publish("motcua/v1/hn/desk-01/pager/event", good, qos=1).wait_for_publish(5)
                   or any("A012" in line for line in lines), what="the monitor subscribed")
        pub.publish("motcua/v1/hn/desk-01/pager/event", "[" * 50000 + "]" * 50000, qos=1).wait_for_publish(5)
        pub.publish("motcua/v1/hn/desk-01/status", json.dumps({"state": "online", "services": "x"}), qos=1)
        after = json.dumps({"id": "h", "seq": 2, "ts": 1.0, "type": "ticket_called", "ticket": "B034"})
        pub.publish("motcua/v1/hn/desk-01/pager/event", after, qos=1).wait_for_publish(5)
        wait_until(lambda: any("B034" in line for line in lines), what="the event after the hostile ones")
    finally:
        stop.set()
        pub.loop_stop()
    assert any("not JSON" in line or "refused" in line for line in lines)


def test_ctrl_c_ends_the_monitor_at_once_not_when_its_seconds_run_out(mosquitto, store):
    """An operator presses Ctrl-C: the monitor exits, it does not sit until --seconds is over."""
    reporter = Reporter(BrokerConfig(url=mosquitto.url), store, site="hn", device="desk-01", version="t")
    reporter.start()  # its retained status is the monitor's first line: then it is in its wait
    monitor = subprocess.Popen([sys.executable, "-m", "edge", "monitor", "--broker", mosquitto.url,
                                "--site", "hn", "--seconds", "600"], stdout=subprocess.PIPE, text=True)
    try:
        assert "desk-01" in monitor.stdout.readline()
        monitor.send_signal(signal.SIGINT)
        assert monitor.wait(timeout=60) == 0  # a non-daemon --seconds timer held it for 600 s
    finally:
        monitor.kill()
        reporter.stop()
