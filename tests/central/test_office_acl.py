"""Central through the office broker's real password file and ACL (deploy/mosquitto/acl)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge.central.ingest import IngestConfig
from edge.central.service import CentralConfig

from .conftest import ANSWER_TIMEOUT_S, CentralThread, SimDevice, start_acl_broker, wait_until

ACL = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "acl"
USERS = {"central": "central-secret", "kiosk-1": "kiosk-secret"}


@pytest.fixture
def office_broker():
    broker, workdir = start_acl_broker(USERS, ACL.read_text())
    try:
        yield broker
    finally:
        broker.close()
        shutil.rmtree(workdir, ignore_errors=True)


def test_central_user_ingests_through_the_office_acl(office_broker, pg, tmp_path):
    pw = tmp_path / "broker.password"
    pw.write_text(USERS["central"] + "\n")
    c = CentralThread(CentralConfig(ingest=IngestConfig(
        broker=office_broker.url, dsn=pg.dsn, instance="central-acl", batch_ms=10, periodic_s=0.3,
        username="central", password=USERS["central"]), host="127.0.0.1", port=0))
    device = SimDevice(office_broker.port, "hn-test", "kiosk-1", username="kiosk-1", password=USERS["kiosk-1"])
    try:
        wait_until(lambda: c.app.consumer.broker_ok, what="central subscribed as user central")
        wait_until(lambda: device.acked, what="device online")
        sent = [device.event("locker", "door_opened", compartment=n) for n in range(1, 6)]
        wait_until(lambda: len(c.get("/api/events?site=hn-test&device=kiosk-1")) == 5, what="events stored")
        assert [e["id"] for e in c.get("/api/events?site=hn-test&device=kiosk-1")] == [e["id"] for e in reversed(sent)]
        assert c.get("/api/devices")[0]["state"] == "online"
    finally:
        device.close()
        c.stop()


def test_signed_command_as_user_central_through_the_acl(office_broker, tmp_path):
    from edge.central import cmd as central_cmd
    from edge.config import BrokerConfig
    from edge.security import new_key

    from .test_cmd import DEVICE, SITE, Device

    key = bytes.fromhex(new_key())
    device_pw = tmp_path / "kiosk.password"
    device_pw.write_text(USERS["kiosk-1"])
    device = Device(tmp_path, office_broker.url, key, broker=BrokerConfig(
        url=office_broker.url, username="kiosk-1", password_file=str(device_pw)))
    try:
        _, result = central_cmd.send(office_broker.url, key, SITE, DEVICE, "locker", "open", {"compartment": 4},
                                     username="central", password=USERS["central"], timeout_s=ANSWER_TIMEOUT_S)
        assert result["ok"] is True and device.locker.opened == [4]
    finally:
        device.close()


def test_a_wrong_broker_password_is_reported_not_hidden(office_broker, pg, caplog):
    c = CentralThread(CentralConfig(ingest=IngestConfig(
        broker=office_broker.url, dsn=pg.dsn, instance="central-bad", username="central", password="nope"),
        host="127.0.0.1", port=0))
    try:
        wait_until(lambda: "refused the connection" in caplog.text, what="refusal logged")
        health = c.get("/api/health")
        assert health["ok"] is False and health["broker"] is False and health["db"] is True
    finally:
        c.stop()


def test_gap_recovery_through_the_acl(office_broker, pg, tmp_path):
    """Only user `central` may publish the resend; the device answers and resends as itself."""
    from edge.central import db
    from edge.central.recovery import RecoverySettings

    from .test_recovery import DeviceThread

    pw = tmp_path / "kiosk.password"
    pw.write_text(USERS["kiosk-1"])
    c = CentralThread(CentralConfig(ingest=IngestConfig(
        broker=office_broker.url, dsn=pg.dsn, instance="central-acl", batch_ms=10, periodic_s=0.3,
        username="central", password=USERS["central"],
        resend=RecoverySettings(every_s=0.2, retry_s=60, min_age_s=0.3)), host="127.0.0.1", port=0))
    device = DeviceThread(office_broker.url, tmp_path / "device", device="kiosk-1",
                          broker={"username": "kiosk-1", "password_file": str(pw)})
    try:
        wait_until(lambda: c.app.consumer.broker_ok, what="central subscribed as user central")
        with db.connect(pg.dsn) as conn:
            sent = device.emit(4)
            wait_until(lambda: conn.execute("SELECT count(*) FROM events").fetchone()[0] == 4, what="stored")
            with conn.transaction():   # as if seq 2 and 3 never reached central
                conn.execute("DELETE FROM events WHERE seq IN (2, 3)")
                conn.execute("UPDATE device_seq SET seq_stored = seq_stored - 2")
            wait_until(lambda: conn.execute("SELECT count(*) FROM events").fetchone()[0] == 4, what="gap refilled")
            # The device queues the resent events before its answer: the answer can reach
            # PostgreSQL in a later batch than the events.
            wait_until(lambda: conn.execute("SELECT count(*) FROM commands WHERE type = 'resend' "
                                            "AND result IS NOT NULL").fetchone()[0], what="the device's answer recorded")
            ids = [r[0] for r in conn.execute("SELECT id FROM events ORDER BY seq")]
            (result,) = conn.execute("SELECT result FROM commands WHERE type = 'resend'").fetchone()
        assert ids == [e["id"] for e in sent]
        assert result["ok"] is True and result["resent"] == 2
        assert c.get("/api/gaps?site=hn&device=kiosk-1") == []
    finally:
        device.stop()
        c.stop()
