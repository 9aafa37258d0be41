"""Central's SMS: a real gammu-smsd (dummy phone) on the test PostgreSQL, and an HTTP brandname
gateway played by a local aiohttp server. Texts, parts, retries, alarms, PIN erasure."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import psycopg
import pytest
from aiohttp import web

from edge.central import sms, smstext
from edge.central.sms import Notify, SmsConfig, SmsService

from .conftest import DEADLINE_S, stop_network, wait_until
from .smskit import GammuSmsd, have_gammu, sentitems

pytestmark = pytest.mark.skipif(not have_gammu(), reason="gammu-smsd is not installed (make setup installs it)")

RECEIPT = "000.00.01.H29-261207-0001"
PHONE = "+84912345678"
PIN = "480913"


def note(kind="result_ready", *, receipt=RECEIPT, pin=PIN, deadline=None, phone=PHONE) -> Notify:
    return Notify("hn", "kiosk-01", uuid.uuid4().hex, kind, phone, receipt, 4, pin if kind == "result_ready" else None,
                  deadline or time.time() + 3 * 86400)


def service(pg, **config) -> SmsService:
    svc = SmsService(SmsConfig(**config), dsn=pg.dsn, broker="mqtt://127.0.0.1:1", instance="t-sms")
    svc._connect_db()
    return svc


def pump(svc: SmsService, until, what: str, timeout: float = DEADLINE_S):
    """Run the worker's rounds (no thread, no broker) until `until()` holds (gammu-smsd works in
    rounds of a second and more on a loaded machine: the suite's generous deadline, early exit)."""
    def step():
        svc.work_once()
        return until()
    return wait_until(step, timeout=timeout, what=what, interval=0.2)


def message(pg, receipt=RECEIPT, kind="result_ready") -> dict:
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        cur = conn.execute("SELECT * FROM sms_messages WHERE receipt = %s AND kind = %s ORDER BY id DESC LIMIT 1",
                           (receipt, kind))
        row = cur.fetchone()
        return dict(zip([d.name for d in cur.description], row)) if row else {}


@pytest.fixture
def smsd(pg, tmp_path):
    daemon = GammuSmsd(pg.port, tmp_path / "gammu", database=pg.name).start(pg.dsn)
    try:
        yield daemon
    finally:
        daemon.kill()


def test_central_creates_gammu_smsd_schema_once(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        assert sms.ensure_gammu_schema(conn) is True
        assert sms.ensure_gammu_schema(conn) is False
        assert conn.execute('SELECT "Version" FROM gammu').fetchone()[0] == sms.GAMMU_SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"outbox", "outbox_multipart", "sentitems", "inbox", "phones"} <= tables


def test_result_ready_goes_out_through_gammu_smsd_and_the_pin_leaves_central(pg, smsd):
    svc = service(pg)
    with svc._conn.transaction():
        svc.record(svc._conn, note())
    pump(svc, lambda: message(pg)["status"] == "sent", "the text sent by gammu-smsd")
    parts = [s for s in sentitems(pg.dsn) if s["number"] == PHONE]
    assert {(p["id"], p["creator"]) for p in parts} == {(parts[0]["id"], "edge")}
    assert all(p["status"].startswith("SendingOK") for p in parts)
    text = "".join(p["text"] for p in parts)
    assert PIN in text and RECEIPT in text and "ngăn 4" in text
    row = message(pg)
    assert row["body"] is None and row["sent_at"] is not None  # central's copy of the PIN is gone
    # the result expires: gammu's own copy is rewritten without the PIN
    with svc._conn.transaction():
        svc.record(svc._conn, note("expired"))
    pump(svc, lambda: message(pg)["scrubbed"], "gammu's copy scrubbed")
    texts = [s["text"] for s in sentitems(pg.dsn)]
    assert not any(PIN in t for t in texts) and any("******" in t for t in texts)
    pump(svc, lambda: message(pg, kind="expired")["status"] == "sent", "the expiry notice sent")


def test_long_vietnamese_text_is_sent_as_concatenated_parts(pg, smsd):
    svc = service(pg)
    with svc._conn.transaction():
        svc.record(svc._conn, note())
    pump(svc, lambda: message(pg)["status"] == "sent", "the text sent")
    parts = [s for s in sentitems(pg.dsn) if s["number"] == PHONE]
    assert len(parts) == message(pg)["parts"] > 1
    assert [p["part"] for p in parts] == list(range(1, len(parts) + 1))
    assert all(p["udh"][:6] == "050003" and p["udh"][-2:] == f"{n:02X}" for n, p in enumerate(parts, 1))
    assert all(len(p["text"]) <= smstext.UCS2_PART for p in parts)


def test_without_diacritics_a_text_is_one_gsm7_part(pg, smsd):
    svc = service(pg, texts=smstext.Texts(ascii=True))
    with svc._conn.transaction():
        svc.record(svc._conn, note())
    pump(svc, lambda: message(pg)["status"] == "sent", "the text sent")
    (item,) = [s for s in sentitems(pg.dsn) if s["number"] == PHONE]
    assert len(item["text"]) <= 160 and smstext.is_gsm7(item["text"])
    assert item["text"].startswith("Bo phan mot cua: ket qua ho so") and PIN in item["text"]


def test_a_text_stuck_in_gammus_outbox_raises_an_alarm(pg):
    alarms = []
    svc = SmsService(SmsConfig(stuck_after_s=0.5), dsn=pg.dsn, broker="mqtt://127.0.0.1:1", instance="t-sms",
                     on_alarms=alarms.extend)
    svc._connect_db()                       # no gammu-smsd running: the modem is unplugged
    with svc._conn.transaction():
        svc.record(svc._conn, note())
    pump(svc, lambda: alarms, "an sms_stuck alarm")
    assert alarms[0]["kind"] == "sms_stuck" and alarms[0]["subject"] == RECEIPT
    assert message(pg)["status"] == "submitted"
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM alarms WHERE kind = 'sms_stuck' AND cleared_at IS NULL").fetchone()[0] == 1


def test_an_incoming_dg_text_from_the_right_phone_is_a_rating_with_a_reply(pg, smsd):
    svc = service(pg)
    with svc._conn.transaction():
        svc.record(svc._conn, note())
    pump(svc, lambda: message(pg)["status"] == "sent", "the result-ready text sent")
    # Four texts reach the modem together (gammu-smsd reads and sends once a second: one round
    # trip for all four, not four); each gets its own answer.
    smsd.receive(PHONE, f"  đg   {RECEIPT.lower()}    4 ")
    smsd.receive("+84987654321", f"DG {RECEIPT} 1")                 # someone else's phone
    smsd.receive(PHONE, "DG HS-KHONG-CO 5")                         # unknown dossier
    smsd.receive(PHONE, "DG " + RECEIPT + " 9")                     # malformed
    pump(svc, lambda: message(pg, kind="rating_ok").get("status") == "sent", "the thank-you reply sent")
    pump(svc, lambda: message(pg, kind="rating_wrong_phone").get("status") == "sent", "the polite refusal")
    pump(svc, lambda: message(pg, receipt="HS-KHONG-CO", kind="rating_unknown").get("status") == "sent",
         "the unknown-dossier answer")
    pump(svc, lambda: message(pg, receipt="", kind="rating_syntax").get("status") == "sent", "the syntax help")
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT site, receipt, score, channel FROM ratings").fetchall() == [("hn", RECEIPT, 4, "sms")]
        assert conn.execute("SELECT score FROM ratings").fetchall() == [(4,)]   # none of those counted
        assert conn.execute('SELECT count(*) FROM inbox WHERE NOT "Processed"').fetchone()[0] == 0
    replies = {s["number"]: s["text"] for s in sentitems(pg.dsn) if "ảm ơn" in s["text"] or "không" in s["text"]}
    assert "+84987654321" in replies


# -- the HTTP brandname gateway -----------------------------------------------------------------

class Gateway:
    """A provider's API on a free port: answers with the queued statuses, records each request."""

    def __init__(self, statuses: list[int]):
        self.statuses, self.requests = list(statuses), []
        self.port = 0          # the kernel's choice at bind time, read back: no port to race for
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        assert self.ready.wait(30), "the gateway did not start listening"

    def _serve(self):
        async def send(request: web.Request) -> web.Response:
            self.requests.append({"headers": dict(request.headers), "body": await request.text()})
            status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            return web.json_response({"status": "success" if status < 300 else "error"}, status=status)

        async def main():
            app = web.Application()
            app.router.add_post("/api/sms", send)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.port = runner.addresses[0][1]
            self.ready.set()

        self.loop.run_until_complete(main())
        self.loop.run_forever()


def http_config(tmp_path, port: int, **over) -> SmsConfig:
    path = tmp_path / "gateway.toml"
    path.write_text(f'url = "http://127.0.0.1:{port}/api/sms"\n'
                    'body = \'{"to": "$phone_national", "brandname": "MOTCUA", "message": "$text", "id": "$ref"}\'\n'
                    'ok_contains = \'"success"\'\n'
                    "[headers]\nAuthorization = \"Bearer s3cret\"\nContent-Type = \"application/json\"\n")
    return SmsConfig(sender="http", http=sms.HttpTemplate.load(str(path)), **over)


def test_http_gateway_gets_the_templated_request(pg, tmp_path):
    gw = Gateway([200])
    svc = SmsService(http_config(tmp_path, gw.port), dsn=pg.dsn, broker="mqtt://127.0.0.1:1", instance="t")
    svc._connect_db()
    with svc._conn.transaction():
        svc.record(svc._conn, note())
    pump(svc, lambda: message(pg)["status"] == "sent", "accepted by the gateway")
    (req,) = gw.requests
    body = json.loads(req["body"])
    assert req["headers"]["Authorization"] == "Bearer s3cret"
    assert body["to"] == "0912345678" and body["brandname"] == "MOTCUA" and PIN in body["message"]
    assert "ngăn 4" in body["message"] and message(pg)["body"] is None


def test_http_gateway_errors_are_retried_then_alarmed_and_the_pin_erased(pg, tmp_path):
    gw = Gateway([500, 503, 200])
    svc = SmsService(http_config(tmp_path, gw.port, retry_base_s=0.05), dsn=pg.dsn, broker="mqtt://127.0.0.1:1",
                     instance="t")
    svc._connect_db()
    with svc._conn.transaction():
        svc.record(svc._conn, note())
    pump(svc, lambda: message(pg)["status"] == "sent", "sent on the third try")
    assert message(pg)["attempts"] == 3 and len(gw.requests) == 3

    alarms = []
    down = Gateway([500])
    svc = SmsService(http_config(tmp_path, down.port, retry_base_s=0.05, max_attempts=3), dsn=pg.dsn,
                     broker="mqtt://127.0.0.1:1", instance="t", on_alarms=alarms.extend)
    svc._connect_db()
    with svc._conn.transaction():
        svc.record(svc._conn, note(receipt="HS-2"))
    pump(svc, lambda: message(pg, "HS-2")["status"] == "failed", "given up")
    row = message(pg, "HS-2")
    assert row["attempts"] == 3 and "HTTP 500" in row["error"] and row["body"] is None
    assert [a["kind"] for a in alarms] == ["sms_failed"] and alarms[0]["subject"] == "HS-2"


@pytest.mark.parametrize("payload, why", [
    ({"kind": "result_ready", "phone": "0212345678", "receipt": "A", "pin": "123456"}, "mobile prefix"),
    ({"kind": "result_ready", "phone": PHONE, "receipt": "A"}, "needs its 'pin'"),
    ({"kind": "hello", "phone": PHONE, "receipt": "A"}, "kind"),
    ({"kind": "reminder", "phone": PHONE, "receipt": "", "pin": None}, "receipt"),
    ({"kind": "result_ready", "phone": PHONE, "receipt": "A", "pin": "12ab56"}, "4-8 digits"),
])
def test_bad_notify_messages_are_refused_by_name(payload, why):
    body = {"id": "n-1", "ts": time.time(), "compartment": 1, "deadline": time.time() + 86400, **payload}
    with pytest.raises(ValueError) as err:
        sms.parse_notify("motcua/v1/hn/kiosk-01/locker/notify", json.dumps(body).encode())
    assert why in str(err.value) and "912345678" not in str(err.value)


def test_a_notify_arriving_while_postgresql_is_down_is_sent_once_it_is_back(mosquitto, pg, tmp_path):
    """Over a real mosquitto: the message is held (not acknowledged, not dropped) until it is stored."""
    import paho.mqtt.client as mqtt

    gw = Gateway([200])
    svc = SmsService(http_config(tmp_path, gw.port, poll_s=0.2), dsn=pg.dsn, broker=mosquitto.url,
                     instance="t-sms", group="").start()
    try:
        wait_until(lambda: svc.broker_ok, what="subscribed")
        pg.stop()
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        body = {"id": "n-outage", "ts": time.time(), "kind": "result_ready", "phone": PHONE, "receipt": RECEIPT,
                "compartment": 4, "pin": PIN, "deadline": time.time() + 86400}
        pub.publish("motcua/v1/hn/kiosk-01/locker/notify", json.dumps(body), qos=1).wait_for_publish(5)
        stop_network(pub)
        wait_until(lambda: svc.last_error, what="PostgreSQL seen down")
        assert not gw.requests
        pg.start()
        wait_until(lambda: gw.requests, what="the text sent after PostgreSQL came back")
        assert PIN in json.loads(gw.requests[0]["body"])["message"] and len(gw.requests) == 1
    finally:
        svc.stop()


def test_the_sms_service_reads_notify_through_the_office_acl_and_other_devices_cannot(pg, tmp_path):
    """deploy/mosquitto/acl: a device writes its own locker/notify, only `central` reads it."""
    import shutil
    from pathlib import Path

    import paho.mqtt.client as mqtt

    from .conftest import start_acl_broker

    users = {"central": "c-secret", "kiosk-1": "k1-secret", "kiosk-2": "k2-secret"}
    acl = (Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "acl").read_text()
    broker, workdir = start_acl_broker(users, acl)
    gw = Gateway([200])
    svc = SmsService(http_config(tmp_path, gw.port, poll_s=0.2), dsn=pg.dsn, broker=broker.url,
                     instance="central-acl", username="central", password=users["central"]).start()
    clients, snooped = [], []
    try:
        def connect(user: str) -> mqtt.Client:
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user)
            c.username_pw_set(user, users[user])
            c.connect("127.0.0.1", broker.port)
            c.loop_start()
            clients.append(c)
            return c

        other = connect("kiosk-2")                 # another device tries to read every notify
        other.on_message = lambda c, u, msg: snooped.append(msg.payload)
        other.subscribe("motcua/v1/+/+/locker/notify", qos=1)
        wait_until(lambda: svc.broker_ok, what="the SMS service subscribed as central")
        kiosk = connect("kiosk-1")
        body = {"id": "n-acl", "ts": time.time(), "kind": "result_ready", "phone": PHONE, "receipt": RECEIPT,
                "compartment": 1, "pin": PIN, "deadline": time.time() + 86400}
        kiosk.publish("motcua/v1/hn/kiosk-1/locker/notify", json.dumps(body), qos=1).wait_for_publish(5)
        wait_until(lambda: gw.requests, what="the text sent")
        assert PIN in json.loads(gw.requests[0]["body"])["message"]
        # kiosk-1 cannot pass itself off as another device either
        kiosk.publish("motcua/v1/hn/kiosk-9/locker/notify", json.dumps({**body, "id": "n-forged"}),
                      qos=1).wait_for_publish(5)
        kiosk.publish("motcua/v1/hn/kiosk-1/locker/notify", json.dumps({**body, "id": "n-last"}),
                      qos=1).wait_for_publish(5)
        wait_until(lambda: len(gw.requests) == 2, what="the second real notify sent")
        # in order: the forged one (published before n-last) never arrived; nobody else read any
        assert [json.loads(r["body"])["id"] for r in gw.requests] == ["n-acl", "n-last"] and not snooped
    finally:
        for c in clients:
            stop_network(c)
        svc.stop()
        broker.close()
        shutil.rmtree(workdir, ignore_errors=True)
