"""The office broker as shipped in deploy/mosquitto (TLS, passwd, ACL) against a real mosquitto:
devices cannot impersonate each other or send commands, strangers cannot connect at all."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

SITE = "hn-test"
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


def topic(device: str, suffix: str) -> str:
    return f"motcua/v1/{SITE}/{device}/{suffix}"


def connected(peers, user, **kwargs):
    peer = peers(user, **kwargs)
    assert peer.connect() == 0, f"{user} was refused"
    return peer


def test_anonymous_client_is_refused(peers):
    peer = peers(None)
    reason = peer.connect()
    assert reason != 0 and reason.is_failure


def test_wrong_password_is_refused(peers):
    peer = peers("kiosk-a", "not-the-password")
    reason = peer.connect()
    assert reason != 0 and reason.is_failure


def test_unknown_user_is_refused(peers):
    peer = peers("kiosk-zz", "whatever")
    assert peer.connect().is_failure


def test_plain_loopback_listener_also_needs_credentials(peers):
    peer = peers(None, tls=False)
    assert peer.connect().is_failure


def test_client_that_does_not_trust_the_office_ca_cannot_connect(peers, tmp_path):
    other = tmp_path / "other-ca"
    subprocess.run([sys.executable, str(DEPLOY / "make-certs.py"), "--out", str(other), "--host", "localhost"],
                   check=True, capture_output=True, timeout=60)
    peer = peers("kiosk-a", ca_file=str(other / "ca.crt"))
    with pytest.raises(ssl.SSLCertVerificationError):
        peer.connect()


def test_device_event_reaches_central(peers):
    central = connected(peers, "central")
    central.subscribe("motcua/v1/#")
    device = connected(peers, "kiosk-a")
    device.publish(topic("kiosk-a", "locker/event"), "hello")
    central.wait_for("hello")


def test_device_cannot_publish_as_another_device(peers):
    central = connected(peers, "central")
    central.subscribe("motcua/v1/#")
    a = connected(peers, "kiosk-a")
    for suffix in ("status", "locker/event", "locker/state", "locker/cmd/result"):
        a.publish(topic("kiosk-b", suffix), f"forged {suffix}")
    # Messages of one client arrive in order: once A's own sentinel is in, the forged ones would
    # have been delivered before it if the broker had let them through.
    a.publish(topic("kiosk-a", "locker/event"), "sentinel")
    before = central.wait_for("sentinel")
    assert not [m for m in before if m[1].startswith(b"forged")], before


def test_device_cannot_send_commands_to_another_device_or_itself(peers):
    b = connected(peers, "kiosk-b")
    b.subscribe(topic("kiosk-b", "+/cmd"))
    a = connected(peers, "kiosk-a")
    a.publish(topic("kiosk-b", "locker/cmd"), "forged open")
    b.publish(topic("kiosk-b", "locker/cmd"), "self open")
    central = connected(peers, "central")
    central.publish(topic("kiosk-b", "locker/cmd"), "real command")
    before = b.wait_for("real command")
    assert before == [], before


def test_device_cannot_read_another_devices_commands_or_events(peers):
    a = connected(peers, "kiosk-a")
    a.subscribe(topic("kiosk-b", "+/cmd"))
    a.subscribe(topic("kiosk-b", "+/event"))
    a.subscribe(topic("kiosk-a", "+/cmd"))
    b = connected(peers, "kiosk-b")
    b.subscribe(topic("kiosk-b", "+/cmd"))
    central = connected(peers, "central")
    central.publish(topic("kiosk-b", "locker/cmd"), "for b only")
    b.wait_for("for b only")
    b.publish(topic("kiosk-b", "locker/event"), "b event")
    central.publish(topic("kiosk-a", "locker/cmd"), "for a")
    before = a.wait_for("for a")
    assert before == [], before


def test_only_central_publishes_commands_and_the_device_gets_them(peers):
    a = connected(peers, "kiosk-a")
    a.subscribe(topic("kiosk-a", "+/cmd"))
    central = connected(peers, "central")
    central.publish(topic("kiosk-a", "locker/cmd"), '{"id":"c1","type":"open"}')
    a.wait_for('{"id":"c1","type":"open"}')


def test_mqtt5_device_is_told_its_forged_publish_is_not_authorized(peers):
    a = connected(peers, "kiosk-a", protocol=mqtt.MQTTv5)
    forged = a.publish(topic("kiosk-b", "locker/event"), "forged")
    own = a.publish(topic("kiosk-a", "locker/event"), "fine")
    assert not a.wait_published(own).is_failure  # accepted ('no matching subscribers' is fine)
    reason = a.wait_published(forged)
    assert reason.is_failure and "authori" in str(reason).lower(), reason


def test_central_shared_subscription_receives_device_events(peers):
    """`edge central run` consumes events through `$share/<group>/…` so instances split the load."""
    central = connected(peers, "central", protocol=mqtt.MQTTv5)
    granted = central.subscribe("$share/central/motcua/v1/+/+/+/event")
    assert not granted[0].is_failure, granted
    a = connected(peers, "kiosk-a")
    a.publish(topic("kiosk-a", "pager/event"), "shared hello")
    central.wait_for("shared hello")


POLICY = [r for r in json.loads((Path(__file__).parent / "acl_policy.json").read_text())["rules"] if r["user"]]


SENTINEL = {  # subscriber -> (its own extra subscription, who publishes the sentinel, where)
    "kiosk-a": ("motcua/v1/hn/kiosk-a/sentinel/cmd", "central"),
    "central": ("motcua/v1/hn/kiosk-a/status", "kiosk-a"),
}


@pytest.mark.parametrize("rule", POLICY, ids=lambda r: f"{r['user']}-{r['action']}-{r['topic']}")
def test_mosquitto_enforces_the_shared_policy_table(peers, rule):
    """The same table test_emqx_cluster.py evaluates for EMQX, measured on the live broker. A publish:
    MQTT 5 says in the PUBACK whether the ACL allowed it. A subscription: mosquitto grants every
    SUBSCRIBE and filters each message, so the rule's probe message must (or must not) arrive."""
    peer = connected(peers, rule["user"], protocol=mqtt.MQTTv5)
    if rule["action"] == "publish":
        reason = peer.wait_published(peer.publish(rule["topic"], "probe"))
        assert (not reason.is_failure) is rule["allowed"], reason
        return
    if "probe" not in rule:
        pytest.skip("no message can tell: mosquitto grants the filter and delivers only what the ACL allows")
    peer.subscribe(rule["topic"])
    sentinel_topic, sentinel_by = SENTINEL[rule["user"]]
    peer.subscribe(sentinel_topic)
    publisher = connected(peers, rule["probe"]["by"], protocol=mqtt.MQTTv5)
    assert not publisher.wait_published(publisher.publish(rule["probe"]["topic"], "probe")).is_failure
    if rule["allowed"]:
        peer.wait_for("probe")
        return
    # The probe was routed (or dropped) before its PUBACK; a sentinel sent after it queues behind it.
    other = publisher if rule["probe"]["by"] == sentinel_by else connected(peers, sentinel_by, protocol=mqtt.MQTTv5)
    other.publish(sentinel_topic, "sentinel")
    before = peer.wait_for("sentinel")
    assert not [m for m in before if m[1] == b"probe"], before
