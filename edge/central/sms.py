"""Citizen SMS at central: `…/locker/notify` -> `sms_messages` -> gammu-smsd (or an HTTP gateway).

`edge central run --sms gammu` sends through gammu-smsd, the SMS daemon offices run with a USB GSM
modem, sharing central's PostgreSQL database: central creates gammu's own schema (the `pgsql.sql`
shipped with Debian's `gammu-smsd`) if it is missing, inserts each text into gammu's `outbox`
(`DestinationNumber` +84…, `TextDecoded`, `CreatorID` 'edge'; long UCS-2 texts as concatenated
parts in `outbox_multipart`), follows `sentitems` (`SendingOK`, `SendingError`, `DeliveryOK`, …),
retries with backoff and raises an alarm when a text fails or is stuck, and reads `inbox` for the
citizens' `DG <dossier> <1-5>` ratings (edge.central.ratings). `--sms http` posts each text to an
SMS-brandname provider from a configurable template instead (no inbox: ratings come from the web).

Privacy: central keeps the text (which holds the PIN) only until it is sent or given up; gammu's
own `sentitems` copy is rewritten without the PIN once the result is collected or expired; a
phone number is kept `keep_days` (for the ratings from that phone), then erased.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import queue
import random
import re
import string
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge import phone as phones
from edge.central import db, smstext
from edge.central.topics import ID_RE, NAME_RE, PREFIX, TS_MAX, TS_MIN
from edge.errors import ConfigError, EdgeError
from edge.mqtt import parse_broker_url
from edge.safejson import UnsafeJson, loads_object

log = logging.getLogger(__name__)

SENDERS = ("gammu", "http")
NOTIFY_KINDS = ("result_ready", "reminder", "expired")
CREATOR_ID = "edge"
GAMMU_SCHEMA_VERSION = 17            # what gammu-smsd 1.42 (Debian 12) expects in table `gammu`
GAMMU_SQL_PATHS = ("/usr/share/doc/gammu-smsd/examples/pgsql.sql", "/usr/share/doc/gammu-smsd/examples/pgsql.sql.gz")
SCHEMA_LOCK = 0x6D6F7473             # advisory lock id ("mots"): one instance creates the tables
SENT = ("SendingOK", "SendingOKNoReport", "DeliveryPending", "DeliveryUnknown")
DELIVERED = ("DeliveryOK",)
FAILED = ("SendingError", "DeliveryFailed", "Error")

MIGRATIONS = [
    # v1: one row per text to a citizen: result-ready/reminder/expired (from the devices), the
    # one-time codes of the web rating and the answers to rating SMS.
    """
    CREATE TABLE sms_messages (
        id bigserial PRIMARY KEY,
        ref text NOT NULL UNIQUE,            -- the device's notify id, or otp:/reply: + our own id
        site text NOT NULL DEFAULT '', device text NOT NULL DEFAULT '', receipt text NOT NULL DEFAULT '',
        kind text NOT NULL,
        phone text,                          -- +84…; erased after keep_days
        body text,                           -- the text; erased once sent or given up (it may hold a PIN)
        has_pin boolean NOT NULL DEFAULT false,
        compartment text, deadline timestamptz,
        created timestamptz NOT NULL DEFAULT now(),
        status text NOT NULL DEFAULT 'queued'
            CHECK (status IN ('queued', 'submitted', 'sent', 'delivered', 'failed', 'cancelled')),
        attempts int NOT NULL DEFAULT 0, next_try timestamptz NOT NULL DEFAULT now(),
        gateway_id text, parts int, submitted_at timestamptz, sent_at timestamptz, delivered_at timestamptz,
        error text, scrubbed boolean NOT NULL DEFAULT false, stuck_alarm boolean NOT NULL DEFAULT false
    );
    CREATE INDEX sms_pending ON sms_messages (next_try) WHERE status IN ('queued', 'submitted');
    CREATE INDEX sms_by_receipt ON sms_messages (receipt, site);
    """,
]


def migrate_component(conn: psycopg.Connection, component: str, migrations: list[str]) -> int:
    """Own versioned tables beside central's (`citizen_schema`), under an advisory lock."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS citizen_schema (component text PRIMARY KEY, version int NOT NULL)")
        row = conn.execute("SELECT version FROM citizen_schema WHERE component = %s", (component,)).fetchone()
        current = row[0] if row else 0
        for version, sql in enumerate(migrations[current:], start=current + 1):
            conn.execute(sql)
            conn.execute("INSERT INTO citizen_schema VALUES (%s, %s) ON CONFLICT (component) DO UPDATE "
                         "SET version = EXCLUDED.version", (component, version))
    return len(migrations)


def migrate(conn: psycopg.Connection) -> None:
    from edge.central import ratings

    migrate_component(conn, "sms", MIGRATIONS)
    migrate_component(conn, "ratings", ratings.MIGRATIONS)


# -- configuration ------------------------------------------------------------------------------

@dataclass(frozen=True)
class HttpTemplate:
    """An SMS-brandname HTTP API: `$phone` (+84…), `$phone_national` (0…), `$text`, `$ref` in the URL
    and body (JSON-escaped for a JSON body, URL-encoded otherwise); 2xx means accepted."""

    url: str
    method: str = "POST"
    headers: dict = field(default_factory=dict)
    body: str = '{"to": "$phone", "text": "$text", "ref": "$ref"}'
    ok_contains: str = ""               # e.g. '"status":"success"': a 2xx body must contain it
    timeout_s: float = 10.0

    @classmethod
    def load(cls, path: str) -> "HttpTemplate":
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ConfigError(f"--sms-http {path}: {err}") from err
        known = {"url", "method", "headers", "body", "ok_contains", "timeout_s"}
        problems = [f"--sms-http {path}: unknown key {k!r}; expected {sorted(known)}" for k in data if k not in known]
        url = data.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.append(f"--sms-http {path}: url must be http(s)://…, found {url!r}")
        if not isinstance(data.get("headers", {}), dict):
            problems.append(f"--sms-http {path}: [headers] must be a table")
        if problems:
            raise ConfigError(problems)
        return cls(**{k: v for k, v in data.items() if k in known})

    def request(self, phone: str, text: str, ref: str) -> urllib.request.Request:
        is_json = "json" in {k.lower(): v for k, v in self.headers.items()}.get("content-type", "json").lower()
        def values(escape: Callable[[str], str]) -> dict:
            return {"phone": escape(phone), "phone_national": escape(phones.national(phone)),
                    "text": escape(text), "ref": escape(ref)}
        url = string.Template(self.url).safe_substitute(values(urllib.parse.quote))
        body = string.Template(self.body).safe_substitute(
            values((lambda s: json.dumps(s, ensure_ascii=False)[1:-1]) if is_json else urllib.parse.quote_plus))
        headers = {"Content-Type": "application/json; charset=utf-8", **self.headers}
        return urllib.request.Request(url, data=body.encode("utf-8") if self.method != "GET" else None,
                                      method=self.method, headers=headers)


@dataclass(frozen=True)
class SmsConfig:
    sender: str = "gammu"                 # gammu | http
    texts: smstext.Texts = field(default_factory=smstext.Texts)
    http: HttpTemplate | None = None
    gammu_sql: str | None = None          # gammu's pgsql.sql (default: the Debian package's copy)
    max_attempts: int = 4
    retry_base_s: float = 60.0
    stuck_after_s: float = 600.0          # still in gammu's outbox after this: alarm (daemon or modem down)
    poll_s: float = 2.0
    keep_days: int = 90                   # phone numbers kept this long (ratings by SMS), then erased

    def problems(self) -> list[str]:
        out = []
        if self.sender not in SENDERS:
            out.append(f"--sms {self.sender!r}: expected one of {', '.join(SENDERS)}")
        if self.sender == "http" and self.http is None:
            out.append("--sms http needs --sms-http FILE (url, headers, body template)")
        return out


def config_from_args(args) -> SmsConfig | None:
    """The `--sms …` options of `edge central run` (None without --sms); ConfigError names a bad one."""
    if not getattr(args, "sms", None):
        return None
    texts = smstext.Texts.load(args.sms_templates, office=args.sms_office, ascii=args.sms_ascii, tz=args.tz)
    config = SmsConfig(sender=args.sms, texts=texts, gammu_sql=args.gammu_sql,
                       http=HttpTemplate.load(args.sms_http) if args.sms_http else None)
    if config.problems():
        raise ConfigError(config.problems())
    if config.sender == "gammu":
        gammu_sql(config.gammu_sql)     # a missing schema file is named now, not at the first text
    return config


class SendFailed(EdgeError):
    """Error raised when a gateway refuses a text or cannot be reached (retried with backoff)."""


# -- senders ------------------------------------------------------------------------------------

def gammu_sql(path: str | None = None) -> str:
    """gammu-smsd's PostgreSQL schema, as shipped (Debian: /usr/share/doc/gammu-smsd/examples/)."""
    for candidate in ([path] if path else GAMMU_SQL_PATHS):
        p = Path(candidate)
        if p.exists():
            raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
            # PostgreSQL >= 9 has plpgsql built in: CREATE LANGUAGE would fail on it.
            return re.sub(r"(?im)^\s*CREATE LANGUAGE plpgsql;\s*$", "", raw.decode("utf-8"))
    raise ConfigError(f"gammu-smsd's pgsql.sql not found (looked in {', '.join([path] if path else GAMMU_SQL_PATHS)}): "
                      "install the gammu-smsd package or pass --gammu-sql FILE")


def ensure_gammu_schema(conn: psycopg.Connection, path: str | None = None) -> bool:
    """Create gammu-smsd's tables in this database if missing; True if created now."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        if conn.execute("SELECT to_regclass('gammu')").fetchone()[0] is None:
            conn.execute(gammu_sql(path))
            log.info("central: created gammu-smsd's tables (schema v%d)", GAMMU_SCHEMA_VERSION)
            return True
    version = conn.execute('SELECT max("Version") FROM gammu').fetchone()[0]
    if version != GAMMU_SCHEMA_VERSION:
        log.warning("central: gammu schema is v%s, this edge was tested with v%d", version, GAMMU_SCHEMA_VERSION)
    return False


class GammuSender:
    """Texts go through gammu-smsd's tables in the same database."""

    name = "gammu"
    tracks = True     # delivery is followed in `sentitems`, answers come into `inbox`

    def submit(self, conn: psycopg.Connection, phone: str, text: str, ref: str = "") -> tuple[str, int]:
        """Queue `text` in gammu's outbox; returns (gammu's ID, parts). `ref` is ours, unused here."""
        parts = smstext.split_parts(text)
        coding = "Default_No_Compression" if smstext.is_gsm7(text) else "Unicode_No_Compression"
        if len(parts) == 1:
            row = conn.execute(
                'INSERT INTO outbox ("DestinationNumber", "TextDecoded", "CreatorID", "Coding") '
                'VALUES (%s, %s, %s, %s) RETURNING "ID"', (phone, text, CREATOR_ID, coding)).fetchone()
            return str(row[0]), 1
        # Concatenated SMS, as gammu-smsd-inject stores it: part 1 in outbox, the rest in
        # outbox_multipart, each with the 8-bit-reference UDH 05 00 03 REF TOTAL SEQ.
        ref = random.randrange(256)
        udh = [f"050003{ref:02X}{len(parts):02X}{n:02X}" for n in range(1, len(parts) + 1)]
        row = conn.execute(
            'INSERT INTO outbox ("DestinationNumber", "TextDecoded", "CreatorID", "Coding", "MultiPart", "UDH") '
            'VALUES (%s, %s, %s, %s, true, %s) RETURNING "ID"', (phone, parts[0], CREATOR_ID, coding, udh[0])).fetchone()
        for n, part in enumerate(parts[1:], start=2):
            conn.execute('INSERT INTO outbox_multipart ("ID", "SequencePosition", "TextDecoded", "Coding", "UDH") '
                         'VALUES (%s, %s, %s, %s, %s)', (row[0], n, part, coding, udh[n - 1]))
        return str(row[0]), len(parts)

    def status(self, conn: psycopg.Connection, gateway_id: str) -> tuple[str, str]:
        """('pending'|'sent'|'delivered'|'failed'|'lost', gammu's statuses) for one submitted text."""
        if conn.execute('SELECT 1 FROM outbox WHERE "ID" = %s', (int(gateway_id),)).fetchone():
            return "pending", ""
        rows = [r[0] for r in conn.execute('SELECT "Status" FROM sentitems WHERE "ID" = %s AND "CreatorID" = %s',
                                           (int(gateway_id), CREATOR_ID))]
        if not rows:
            return "lost", "neither in outbox nor in sentitems"
        summary = ",".join(rows)
        if any(s in FAILED for s in rows):
            return "failed", summary
        if all(s in DELIVERED for s in rows):
            return "delivered", summary
        return "sent", summary

    def scrub(self, conn: psycopg.Connection, gateway_id: str, text: str) -> None:
        """Rewrite gammu's copy of a sent text (it held the PIN) with `text`."""
        conn.execute('UPDATE sentitems SET "TextDecoded" = %s, "Text" = \'\' WHERE "ID" = %s AND "CreatorID" = %s',
                     (text, int(gateway_id), CREATOR_ID))

    def next_incoming(self, conn: psycopg.Connection) -> tuple[int, str, str] | None:
        """The oldest unprocessed text, locked for this transaction (two central instances never
        answer the same text twice)."""
        row = conn.execute('SELECT "ID", "SenderNumber", "TextDecoded" FROM inbox WHERE NOT "Processed" '
                           'ORDER BY "ID" LIMIT 1 FOR UPDATE SKIP LOCKED').fetchone()
        return tuple(row) if row else None

    def done(self, conn: psycopg.Connection, inbox_id: int) -> None:
        conn.execute('UPDATE inbox SET "Processed" = true WHERE "ID" = %s', (inbox_id,))


class HttpSender:
    """Texts posted to an SMS-brandname provider; accepted (2xx) counts as sent."""

    name = "http"
    tracks = False

    def __init__(self, template: HttpTemplate):
        self.template = template

    def submit(self, conn, phone: str, text: str, ref: str = "") -> tuple[str, int]:
        request = self.template.request(phone, text, ref)
        try:
            with urllib.request.urlopen(request, timeout=self.template.timeout_s) as response:
                body = response.read(4096).decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            raise SendFailed(f"provider answered HTTP {err.code}") from err
        except (OSError, ValueError) as err:
            raise SendFailed(f"provider unreachable: {err}") from err
        if self.template.ok_contains and self.template.ok_contains not in body:
            raise SendFailed(f"provider did not accept it: {body[:120]!r}")
        return ref, len(smstext.split_parts(text))


# -- the notify message --------------------------------------------------------------------------

@dataclass(frozen=True)
class Notify:
    site: str
    device: str
    id: str
    kind: str
    phone: str
    receipt: str
    compartment: int | None
    pin: str | None
    deadline: float | None


def parse_notify(topic: str, payload: bytes) -> Notify:
    """Check one `…/{site}/{device}/locker/notify` message; raises ValueError naming what is wrong
    (without echoing the phone number or the PIN)."""
    parts = topic[len(PREFIX):].split("/") if topic.startswith(PREFIX) else []
    if len(parts) != 4 or parts[2:] != ["locker", "notify"] or not all(NAME_RE.match(p) for p in parts[:2]):
        raise ValueError(f"topic {topic!r} is not {PREFIX}{{site}}/{{device}}/locker/notify")
    try:   # safejson: deep nesting (RecursionError) and NUL (refused by PostgreSQL) would hold it forever
        data = loads_object(payload)
    except UnsafeJson as err:
        if err.reason == "not_object":
            raise ValueError(f"{topic}: payload must be an object") from err
        raise ValueError(f"{topic}: not UTF-8 JSON ({err})") from err
    if not isinstance(data.get("id"), str) or not ID_RE.match(data["id"]):
        raise ValueError(f"{topic}: 'id' missing or not a short string")
    if data.get("kind") not in NOTIFY_KINDS:
        raise ValueError(f"{topic}: kind {data.get('kind')!r:.40}, expected one of {NOTIFY_KINDS}")
    phone = phones.normalise(data.get("phone"))          # BadPhone is a ValueError
    receipt = data.get("receipt")
    if not isinstance(receipt, str) or not 1 <= len(receipt) <= 64:
        raise ValueError(f"{topic}: 'receipt' must be 1-64 characters")
    pin = data.get("pin")
    if pin is not None and (not isinstance(pin, str) or not pin.isdigit() or not 4 <= len(pin) <= 8):
        raise ValueError(f"{topic}: 'pin' must be 4-8 digits or null")
    if data["kind"] == "result_ready" and pin is None:
        raise ValueError(f"{topic}: a result_ready message needs its 'pin'")
    compartment = data.get("compartment")
    if compartment is not None and (isinstance(compartment, bool) or not isinstance(compartment, int)):
        raise ValueError(f"{topic}: 'compartment' must be an integer")
    deadline = data.get("deadline")
    if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
                                 or not math.isfinite(deadline) or not TS_MIN <= deadline <= TS_MAX):
        raise ValueError(f"{topic}: 'deadline' must be epoch seconds")
    return Notify(parts[0], parts[1], data["id"], data["kind"], phone, receipt.strip().upper(), compartment, pin,
                  None if deadline is None else float(deadline))


def queue_text(conn: psycopg.Connection, *, ref: str, kind: str, phone: str, body: str, site: str = "",
               device: str = "", receipt: str = "", has_pin: bool = False, compartment=None,
               deadline: float | None = None) -> bool:
    """Queue one text (idempotent per `ref`); True if it is new."""
    row = conn.execute(
        "INSERT INTO sms_messages (ref, site, device, receipt, kind, phone, body, has_pin, compartment, deadline) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, to_timestamp(%s)) ON CONFLICT (ref) DO NOTHING RETURNING id",
        (ref, site, device, receipt, kind, phone, body, has_pin, None if compartment is None else str(compartment),
         deadline)).fetchone()
    return row is not None


def _masked_text(texts: smstext.Texts, kind: str, receipt: str, compartment, deadline) -> str:
    return texts.render(kind, receipt=receipt, compartment=compartment, pin="******",
                        deadline=None if deadline is None else deadline.timestamp())


# -- the service --------------------------------------------------------------------------------

class SmsService:
    """One thread: notify messages in, texts out through the sender, delivery followed, answers read."""

    def __init__(self, config: SmsConfig, *, dsn: str, broker: str, instance: str, group: str = "central",
                 username: str | None = None, password: str | None = None, ca_file: str | None = None,
                 on_alarms: Callable[[list], None] = lambda alarms: None):
        problems = config.problems()
        if problems:
            raise ConfigError(problems)
        self.config, self.dsn, self.on_alarms = config, dsn, on_alarms
        self.broker, self.instance, self.group = broker, instance, group
        self.sender = GammuSender() if config.sender == "gammu" else HttpSender(config.http)
        self.counts = {"received": 0, "rejected": 0, "submitted": 0, "sent": 0, "failed": 0, "incoming": 0}
        self._queue: "queue.Queue[tuple[int, int, str, bytes]]" = queue.Queue()
        self._held: tuple[int, int, str, bytes] | None = None   # taken from the queue, not stored yet
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._conn: psycopg.Connection | None = None
        self._thread: threading.Thread | None = None
        self._generation = 0
        self.broker_ok = False
        self.last_error = ""
        self._client = self._make_client(username, password, ca_file)

    # -- MQTT (paho's thread: only queue) -------------------------------------------------------
    def _make_client(self, username, password, ca_file) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{self.instance}-sms",
                             protocol=mqtt.MQTTv5, manual_ack=True)
        if username:
            client.username_pw_set(username, password)
        self._ca_file = ca_file
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = lambda c, u, f, rc, p: setattr(self, "broker_ok", False)
        client.on_message = lambda c, u, msg: (self._queue.put((self._generation, msg.mid, msg.topic, msg.payload)),
                                               self._wake.set())
        client.reconnect_delay_set(0.5, 30)
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("central sms: broker refused the connection: %s", reason_code)
            return
        self._generation += 1
        topic = f"{PREFIX}+/+/locker/notify"
        client.subscribe(f"$share/{self.group}/{topic}" if self.group else topic, qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("central sms: broker refused the subscription to locker/notify: %s",
                      ", ".join(str(rc) for rc in reason_codes))
            return
        # Connected *and* subscribed, as the ingest consumer counts it: a notify published before
        # the broker took the subscription (a fresh shared one) would never reach us.
        self.broker_ok = True

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "SmsService":
        try:
            self._connect_db()
        except (psycopg.OperationalError, psycopg.InterfaceError) as err:   # the worker keeps retrying
            self.last_error = f"{type(err).__name__}: {str(err).strip()}"
            log.warning("central sms: PostgreSQL unavailable at start (%s); retrying", str(err).strip())
        address = parse_broker_url(self.broker)
        host, port, tls = address.host, address.port, address.tls
        if tls:
            self._client.tls_set(ca_certs=self._ca_file)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 24 * 3600    # notify messages wait for us at the broker
        self._client.connect_async(host, port, keepalive=30, clean_start=False, properties=props)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, name=f"{self.instance}-sms", daemon=True)
        self._thread.start()
        log.info("central: SMS through %s", self.sender.name)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)
        self._client.disconnect()
        self._client.loop_stop()
        if self._conn is not None:
            self._conn.close()

    def wake(self) -> None:
        """A text was queued elsewhere (a web rating code): send it now, not at the next poll."""
        self._wake.set()

    def stats(self) -> dict:
        return {"sender": self.sender.name, "broker": self.broker_ok, **self.counts, "last_error": self.last_error}

    def _connect_db(self) -> None:
        conn = db.connect(self.dsn)
        try:
            db.migrate(conn)       # alarms, locker_results: central's own tables come first
            migrate(conn)
            if isinstance(self.sender, GammuSender):
                ensure_gammu_schema(conn, self.config.gammu_sql)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    # -- the worker -----------------------------------------------------------------------------
    def _run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                if self._conn is None or self._conn.closed:
                    self._connect_db()
                self.work_once()
                self.last_error, delay = "", 0.2
                self._wake.wait(self.config.poll_s)
                self._wake.clear()
            except (psycopg.OperationalError, psycopg.InterfaceError) as err:
                if not self.last_error:
                    log.warning("central sms: PostgreSQL unavailable (%s); retrying", str(err).strip())
                self.last_error = f"{type(err).__name__}: {str(err).strip()}"
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
            except Exception:  # a bug must not stop the SMS loop: log it and go on
                log.exception("central sms: worker error")
                self._stop.wait(1.0)

    def work_once(self) -> None:
        """One round (also called directly by tests): inbound notify, sends, delivery, answers, purge."""
        conn = self._conn
        self._take_notifies(conn)
        self._send_due(conn)
        if self.sender.tracks:
            self._track(conn)
            self._read_inbox(conn)
        self._close_finished(conn)

    def _take_notifies(self, conn: psycopg.Connection) -> None:
        while True:
            if self._held is None:
                try:
                    self._held = self._queue.get_nowait()
                except queue.Empty:
                    return
            generation, mid, topic, payload = self._held
            try:
                note = parse_notify(topic, payload)
            except ValueError as err:
                self.counts["rejected"] += 1
                log.warning("central sms: refused a notify message: %s", err)
            else:
                with conn.transaction():    # PostgreSQL away: raised, and this message is held for the retry
                    self.record(conn, note)
            self._held = None
            self.counts["received"] += 1
            if generation == self._generation:   # acknowledged only once stored (redelivered otherwise)
                self._client.ack(mid, 1)

    def record(self, conn: psycopg.Connection, note: Notify) -> None:
        texts = self.config.texts
        body = texts.render(note.kind, receipt=note.receipt, compartment=note.compartment, pin=note.pin,
                            deadline=note.deadline)
        queue_text(conn, ref=note.id, kind=note.kind, phone=note.phone, body=body, site=note.site,
                   device=note.device, receipt=note.receipt, has_pin=note.pin is not None,
                   compartment=note.compartment, deadline=note.deadline)
        if note.kind == "expired":  # a PIN not sent yet is useless now: never send it
            conn.execute("UPDATE sms_messages SET status = 'cancelled', body = NULL, error = 'result expired' "
                         "WHERE site = %s AND receipt = %s AND has_pin AND status = 'queued'",
                         (note.site, note.receipt))
        log.info("central sms: %s for %s/%s %s to %s queued", note.kind, note.site, note.device, note.receipt,
                 phones.mask(note.phone))

    def _send_due(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            rows = conn.execute(
                "SELECT id, ref, phone, body, attempts, site, device, receipt, kind FROM sms_messages "
                "WHERE status = 'queued' AND next_try <= now() ORDER BY id LIMIT 50 FOR UPDATE SKIP LOCKED").fetchall()
            for msg_id, ref, phone, body, attempts, site, device, receipt, kind in rows:
                if not phone or not body:
                    conn.execute("UPDATE sms_messages SET status = 'cancelled', error = 'nothing to send' "
                                 "WHERE id = %s", (msg_id,))
                    continue
                try:
                    with conn.transaction():   # a gateway refusal rolls back only this text's insert
                        gateway_id, parts = self.sender.submit(conn, phone, body, ref)
                except SendFailed as err:
                    self._attempt_failed(conn, msg_id, attempts + 1, str(err), site, device, receipt, kind)
                    continue
                self.counts["submitted"] += 1
                if self.sender.tracks:
                    conn.execute("UPDATE sms_messages SET status = 'submitted', gateway_id = %s, parts = %s, "
                                 "attempts = attempts + 1, submitted_at = now() WHERE id = %s",
                                 (gateway_id, parts, msg_id))
                else:
                    self._sent(conn, msg_id, gateway_id, parts)

    def _sent(self, conn: psycopg.Connection, msg_id: int, gateway_id: str, parts: int | None,
              delivered: bool = False) -> None:
        # The text held the PIN: our copy goes as soon as the gateway has it.
        conn.execute("UPDATE sms_messages SET status = %s, body = NULL, gateway_id = %s, "
                     "parts = COALESCE(%s, parts), attempts = CASE WHEN status = 'queued' THEN attempts + 1 "
                     "ELSE attempts END, sent_at = COALESCE(sent_at, now()), "
                     "delivered_at = CASE WHEN %s THEN now() ELSE delivered_at END, error = NULL WHERE id = %s",
                     ("delivered" if delivered else "sent", gateway_id, parts, delivered, msg_id))
        self.counts["sent"] += 1

    def _attempt_failed(self, conn, msg_id: int, attempts: int, error: str, site: str, device: str,
                        receipt: str, kind: str) -> None:
        if attempts >= self.config.max_attempts:
            conn.execute("UPDATE sms_messages SET status = 'failed', body = NULL, attempts = %s, error = %s "
                         "WHERE id = %s", (attempts, error[:300], msg_id))
            self.counts["failed"] += 1
            log.error("central sms: %s for %s %s gave up after %d attempts: %s", kind, site, receipt, attempts, error)
            self._alarm(conn, site, device, "sms_failed", receipt, {"kind": kind, "error": error[:200],
                                                                    "attempts": attempts})
            return
        delay = self.config.retry_base_s * 2 ** (attempts - 1) * (0.75 + random.random() / 2)
        conn.execute("UPDATE sms_messages SET status = 'queued', attempts = %s, error = %s, "
                     "next_try = now() + make_interval(secs => %s) WHERE id = %s",
                     (attempts, error[:300], delay, msg_id))
        if attempts == 1:
            log.warning("central sms: %s for %s %s failed (%s); retrying with backoff", kind, site, receipt, error)

    def _track(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            rows = conn.execute(
                "SELECT id, gateway_id, attempts, site, device, receipt, kind, parts, stuck_alarm, "
                "extract(epoch FROM now() - submitted_at) FROM sms_messages WHERE status = 'submitted' "
                "ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED").fetchall()
            for msg_id, gateway_id, attempts, site, device, receipt, kind, parts, stuck, age_s in rows:
                state, detail = self.sender.status(conn, gateway_id)
                if state in ("sent", "delivered"):
                    self._sent(conn, msg_id, gateway_id, None, delivered=state == "delivered")
                    if stuck:
                        self._clear_alarm(conn, site, device, "sms_stuck", receipt)
                elif state == "failed" or (state == "lost" and age_s > 60):
                    self._attempt_failed(conn, msg_id, attempts, f"gammu: {detail}", site, device, receipt, kind)
                elif age_s > self.config.stuck_after_s and not stuck:
                    conn.execute("UPDATE sms_messages SET stuck_alarm = true WHERE id = %s", (msg_id,))
                    log.error("central sms: %s for %s %s still in gammu's outbox after %.0f s: is gammu-smsd "
                              "running and the modem connected?", kind, site, receipt, age_s)
                    self._alarm(conn, site, device, "sms_stuck", receipt, {"kind": kind, "waiting_s": round(age_s)})
            # a delivery report may come after SendingOK: follow sent texts for a day
            for msg_id, gateway_id in conn.execute(
                    "SELECT id, gateway_id FROM sms_messages WHERE status = 'sent' AND gateway_id IS NOT NULL "
                    "AND sent_at > now() - interval '1 day' LIMIT 200").fetchall():
                if self.sender.status(conn, gateway_id)[0] == "delivered":
                    conn.execute("UPDATE sms_messages SET status = 'delivered', delivered_at = now() WHERE id = %s",
                                 (msg_id,))

    def _read_inbox(self, conn: psycopg.Connection) -> None:
        from edge.central import ratings

        for _ in range(100):
            with conn.transaction():
                row = self.sender.next_incoming(conn)
                if row is None:
                    return
                inbox_id, sender, text = row
                self.counts["incoming"] += 1
                answer = ratings.handle_sms(conn, sender, text or "")
                if answer is not None and ratings.may_reply(conn, answer[4]):
                    kind, body, site, receipt, to = answer
                    queue_text(conn, ref=f"reply:{inbox_id}", kind=kind, phone=to, body=self.config.texts.render(
                        kind, **body), site=site, receipt=receipt)
                self.sender.done(conn, inbox_id)
            self._wake.set()

    def _close_finished(self, conn: psycopg.Connection) -> None:
        """Erase what is no longer needed: gammu's copy of a PIN once its result is over, old numbers."""
        with conn.transaction():
            rows = conn.execute(
                "SELECT m.id, m.gateway_id, m.kind, m.receipt, m.compartment, m.deadline FROM sms_messages m "
                "WHERE m.has_pin AND NOT m.scrubbed AND m.status IN ('sent', 'delivered', 'failed', 'cancelled') "
                "AND (m.deadline < now() OR EXISTS (SELECT 1 FROM sms_messages e WHERE e.site = m.site "
                "AND e.receipt = m.receipt AND e.kind = 'expired') OR EXISTS (SELECT 1 FROM locker_results r "
                "WHERE r.site = m.site AND r.receipt = m.receipt AND r.closed_at IS NOT NULL "
                "AND r.closed_at > m.created)) LIMIT 200").fetchall()
            for msg_id, gateway_id, kind, receipt, compartment, deadline in rows:
                if gateway_id and isinstance(self.sender, GammuSender):
                    self.sender.scrub(conn, gateway_id, _masked_text(self.config.texts, kind, receipt, compartment,
                                                                     deadline))
                conn.execute("UPDATE sms_messages SET scrubbed = true, body = NULL WHERE id = %s", (msg_id,))
            conn.execute("UPDATE sms_messages SET phone = NULL WHERE phone IS NOT NULL "
                         "AND created < now() - make_interval(days => %s)", (self.config.keep_days,))

    # -- alarms ---------------------------------------------------------------------------------
    def _alarm(self, conn, site: str, device: str, kind: str, subject: str, detail: dict) -> None:
        row = conn.execute(
            "INSERT INTO alarms (site, device, service, kind, subject, opened_at, detail) "
            "VALUES (%s, %s, 'sms', %s, %s, now(), %s) ON CONFLICT DO NOTHING RETURNING id",
            (site, device, kind, subject, json.dumps(detail))).fetchone()
        if row:
            self.on_alarms([{"site": site, "device": device, "service": "sms", "kind": kind, "subject": subject,
                             "ts": time.time(), "detail": detail}])

    def _clear_alarm(self, conn, site: str, device: str, kind: str, subject: str) -> None:
        conn.execute("UPDATE alarms SET cleared_at = now() WHERE site = %s AND device = %s AND service = 'sms' "
                     "AND kind = %s AND subject = %s AND cleared_at IS NULL", (site, device, kind, subject))


def delivery(conn: psycopg.Connection, site: str | None = None, limit: int = 200) -> list[dict]:
    """Per result and text: what was sent when, and how far it got (no phone, no text)."""
    rows = conn.execute(
        "SELECT site, device, receipt, kind, status, attempts, parts, extract(epoch FROM created)::float8, "
        "extract(epoch FROM sent_at)::float8, extract(epoch FROM delivered_at)::float8, error "
        "FROM sms_messages WHERE kind IN ('result_ready', 'reminder', 'expired') "
        "AND (%s::text IS NULL OR site = %s) ORDER BY id DESC LIMIT %s", (site, site, limit)).fetchall()
    keys = ("site", "device", "receipt", "kind", "status", "attempts", "parts", "created", "sent_at",
            "delivered_at", "error")
    return [dict(zip(keys, r[:11])) for r in rows]
