"""The outbox against a real mosquitto: order, no loss and no duplicates across a broker outage."""

from __future__ import annotations

from edge.config import BrokerConfig
from edge.mqtt import Reporter
from edge.localbroker import MosquittoBroker
from edge.testing import MqttRecorder, wait_until


def is_event(topic, payload):
    return topic.endswith("/pager/event")


def test_events_made_during_an_outage_all_arrive_in_order_once(tmp_path, store):
    # A persistent broker and recorder session, so the recorder misses nothing whichever of the
    # two clients reconnects first after the outage.
    mosquitto = MosquittoBroker(workdir=tmp_path, persistence=True).start()
    # Reconnect attempts every 0.05-0.5 s instead of the device's 1-30 s: the same path, less waiting.
    reporter = Reporter(BrokerConfig(url=mosquitto.url), store, site="hn", device="desk-01", version="t",
                        reconnect_s=(0.05, 0.5))
    reporter.start()
    recorder = MqttRecorder(mosquitto.url, client_id="outage-recorder", persistent=True).start()
    try:
        wait_until(reporter.connected.is_set, what="reporter connected")
        mosquitto.stop()
        wait_until(lambda: not reporter.connected.is_set(), what="reporter noticing the outage")
        for i in range(1000):
            with store.transaction() as tx:
                tx.emit("pager", "ticket_issued", n=i)
        assert store.pending_count() == 1000
        mosquitto.start()
        recorder.resubscribed()
        events = recorder.wait_for(is_event, count=1000, timeout_s=120)
        wait_until(lambda: store.pending_count() == 0, what="outbox drained")
        # A status sent after the drain travels behind every event of it on the reporter's one
        # connection: once it has arrived, so would have any duplicate.
        reporter.set_services({"pager": "ok"})
        recorder.wait_for(lambda t, p: t.endswith("/status") and p["services"] == {"pager": "ok"})
        events = recorder.matching(is_event)
        assert [p["n"] for _, p in events] == list(range(1000))
        assert [p["seq"] for _, p in events] == list(range(1, 1001))
        assert len({p["id"] for _, p in events}) == 1000
    finally:
        recorder.stop()
        reporter.stop()
        mosquitto.close()


def test_status_is_retained_online_then_offline_on_clean_stop(mosquitto, store):
    reporter = Reporter(BrokerConfig(url=mosquitto.url), store, site="hn", device="kiosk-01", version="9.9")
    reporter.start()
    wait_until(reporter.connected.is_set, what="reporter connected")
    reporter.set_services({"locker": "ok"})
    reporter.stop()
    # A late subscriber sees the retained status: offline, with the version.
    with MqttRecorder(mosquitto.url, "motcua/v1/hn/kiosk-01/status") as late:
        (_, status), = late.wait_for(lambda t, p: True)
    assert status["state"] == "offline" and status["version"] == "9.9"


def test_will_marks_the_device_offline_when_the_process_dies(mosquitto, tmp_path):
    import subprocess
    import sys

    script = f"""
import time
from edge.config import BrokerConfig
from edge.mqtt import Reporter
from edge.store import Store
r = Reporter(BrokerConfig(url="{mosquitto.url}", keepalive_s=5), Store(r"{tmp_path / 'w.db'}"),
             site="hn", device="kiosk-02", version="1")
r.start()
while not r.connected.is_set(): time.sleep(0.02)
print("up", flush=True)
time.sleep(60)
"""
    with MqttRecorder(mosquitto.url, "motcua/v1/hn/kiosk-02/status") as rec:
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "up"
            rec.wait_for(lambda t, p: p["state"] == "online")
            proc.kill()  # no clean disconnect: the broker sends the will
            rec.wait_for(lambda t, p: p["state"] == "offline", timeout_s=20)
        finally:
            proc.kill()
            proc.wait()
