"""The office broker with the ACL deploy/mosquitto/make-acl.sh makes from the provisioning list:
a device account is bound to its site as well as its device id (real mosquitto, TLS, passwords).
With the static ACL (`pattern … motcua/v1/+/%u/…`), kiosk-a could publish under any site and
central would show a phantom office; here such a publish never arrives."""

from __future__ import annotations

import subprocess

import paho.mqtt.client as mqtt
import pytest

from .conftest import DEPLOY, _close_all, _peer_factory, start_office_broker, stop_broker

SITE, OTHER = "hn-test", "any-site"
DEVICES_FILE = f"# provisioned devices\n{SITE} kiosk-a\n{SITE} kiosk-b   # second kiosk\n"


def make_acl(tmp_path, text: str) -> subprocess.CompletedProcess:
    devices = tmp_path / "devices.txt"
    devices.write_text(text)
    return subprocess.run([str(DEPLOY / "make-acl.sh"), str(devices)], capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def site_broker(tmp_path_factory):
    work = tmp_path_factory.mktemp("site-acl")
    made = make_acl(work, DEVICES_FILE)
    assert made.returncode == 0, made.stderr
    broker = start_office_broker(work / "broker", ["central", "kiosk-a", "kiosk-b"], acl=made.stdout)
    try:
        yield broker
    finally:
        stop_broker(broker)


@pytest.fixture
def peers(site_broker):
    make, made = _peer_factory(site_broker)
    yield make
    _close_all(made)


def connected(peers, user, **kw):
    peer = peers(user, **kw)
    assert peer.connect() == 0, f"{user} was refused"
    return peer


def test_a_device_cannot_publish_under_another_site(peers):
    central = connected(peers, "central")
    central.subscribe("motcua/v1/#")
    a = connected(peers, "kiosk-a")
    for suffix in ("status", "locker/event", "locker/state", "locker/cmd/result"):
        a.publish(f"motcua/v1/{OTHER}/kiosk-a/{suffix}", f"phantom {suffix}")
    a.publish(f"motcua/v1/{SITE}/kiosk-a/locker/event", "sentinel")     # its own site: allowed
    before = central.wait_for("sentinel")
    assert not [m for m in before if m[1].startswith(b"phantom")], before


def test_mqtt5_device_is_told_a_publish_under_another_site_is_not_authorized(peers):
    a = connected(peers, "kiosk-a", protocol=mqtt.MQTTv5)
    phantom = a.publish(f"motcua/v1/{OTHER}/kiosk-a/pager/event", "phantom")
    own = a.publish(f"motcua/v1/{SITE}/kiosk-a/pager/event", "fine")
    assert not a.wait_published(own).is_failure
    reason = a.wait_published(phantom)
    assert reason.is_failure and "authori" in str(reason).lower(), reason


def test_a_device_reads_only_its_own_commands_at_its_own_site(peers):
    a = connected(peers, "kiosk-a")
    a.subscribe(f"motcua/v1/{OTHER}/kiosk-a/+/cmd")
    a.subscribe(f"motcua/v1/{SITE}/kiosk-b/+/cmd")
    a.subscribe(f"motcua/v1/{SITE}/kiosk-a/+/cmd")
    central = connected(peers, "central")
    central.publish(f"motcua/v1/{OTHER}/kiosk-a/locker/cmd", "elsewhere")
    central.publish(f"motcua/v1/{SITE}/kiosk-b/locker/cmd", "for b")
    central.publish(f"motcua/v1/{SITE}/kiosk-a/locker/cmd", "for a")
    before = a.wait_for("for a")
    assert before == [], before


def test_devices_still_cannot_command_or_impersonate(peers):
    central = connected(peers, "central")
    central.subscribe("motcua/v1/#")
    a = connected(peers, "kiosk-a")
    a.publish(f"motcua/v1/{SITE}/kiosk-b/locker/event", "forged")
    a.publish(f"motcua/v1/{SITE}/kiosk-b/locker/cmd", "forged open")
    a.publish(f"motcua/v1/{SITE}/kiosk-a/locker/event", "sentinel")
    before = central.wait_for("sentinel")
    assert not [m for m in before if m[1].startswith(b"forged")], before


@pytest.mark.parametrize("text, message", [
    ("hn kiosk-a\nhcm kiosk-a\n", "listed twice"),
    ("hn Kiosk-A\n", "bad name 'Kiosk-A'"),
    ("hn kiosk-a extra\n", "expected 'SITE DEVICE'"),
    ("hn central\n", "'central' is the central service's account"),
    ("# nothing yet\n\n", ""),                          # comments only: fine, no device
])
def test_make_acl_refuses_a_bad_provisioning_list(tmp_path, text, message):
    made = make_acl(tmp_path, text)
    if message:
        assert made.returncode == 1 and message in made.stderr, made.stderr
    else:
        assert made.returncode == 0 and "user central" in made.stdout and "user hn" not in made.stdout
