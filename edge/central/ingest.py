"""The consumer: MQTT (shared subscription, persistent session, manual ack) → PostgreSQL.

paho's network thread only queues each message; one writer thread parses, batches (up to
`batch_max` messages or `batch_ms` after the first, whichever comes first), writes the batch in one
transaction, and only then acknowledges each message to the broker. A crash before the commit
leaves the messages unacknowledged, so the broker redelivers them to this session when the
instance comes back; the event id key makes a redelivery a no-op.

A message that fails parsing or validation, or that the device registry refuses, is written to
the `quarantine` table in the same transaction and acknowledged with the batch (quarantine.py):
a poison message is never redelivered, never retried, and never holds up the ones after it.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.central import analytics, cards, db, quarantine, recovery, topics
from edge.errors import ConfigError
from edge.mqtt import parse_broker_url

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600   # the broker keeps our queue that long while we are away
DB_BACKOFF_MAX_S = 5.0
PERIODIC_S = 5.0
RETENTION_EVERY_S = 3600.0


@dataclass(frozen=True)
class IngestConfig:
    broker: str = "mqtt://127.0.0.1:1883"
    dsn: str = "postgresql://postgres@127.0.0.1/postgres"
    instance: str = "central-1"          # MQTT client id: fixed, so a restart resumes the session
    group: str = "central"               # shared-subscription group name
    batch_ms: float = 20.0
    batch_max: int = 500
    receive_max: int = 1000              # MQTT 5 Receive Maximum: unacked messages in flight to us
    tz: str = "Asia/Ho_Chi_Minh"
    offline_alarm_s: float = 300.0
    retention_months: int = 0            # 0 keeps every month
    periodic_s: float = PERIODIC_S       # offline alarms, roll-ups, retention
    username: str | None = None          # broker user (the deployment's ACL names it `central`)
    password: str | None = None
    ca_file: str | None = None           # CA of the broker's certificate, for mqtts://
    resend: recovery.RecoverySettings | None = recovery.RecoverySettings()   # gap recovery; None = off


def read_password(path: str | None) -> str | None:
    """The broker password from its file (first line), or None without a file."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().strip()
    except OSError as err:
        raise ConfigError(f"broker password file {path}: {err.strerror}") from err


@dataclass
class _Inbound:
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes


_WAKE = None          # put on the writer's queue by stop(): no message, just "look at the stop flag"


class Consumer:
    """Start with `.start()`, stop with `.stop()`; `.stats()` for health and the dashboard."""

    def __init__(self, config: IngestConfig, *, on_alarms: Callable[[list], None] = lambda alarms: None):
        self.config = config
        self.on_alarms = on_alarms
        self.counts: Counter = Counter()
        self.rejected: Counter = Counter()
        self.broker_ok = False
        self.db_ok = False
        self.last_error = ""
        self._queue: "queue.Queue[_Inbound]" = queue.Queue()
        self._stop = threading.Event()
        self._generation = 0
        self._next_retention = 0.0
        self._next_resend = 0.0
        self._conn = None
        self._writer: db.Writer | None = None
        self._thread: threading.Thread | None = None
        self._client = self._make_client()

    # -- MQTT side (paho's thread: never block here) -------------------------------------------
    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.config.instance,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        if self.config.username:
            client.username_pw_set(self.config.username, self.config.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(0.5, 30)
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("central: broker refused the connection: %s", reason_code)
            return
        self._generation += 1
        log.info("central: connected to broker (session present: %s)", flags.session_present)
        shared, plain = topics.subscriptions(self.config.group)
        client.subscribe([(t, 1) for t in shared + plain])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        failed = [str(rc) for rc in reason_codes if rc.is_failure]
        if failed:
            log.error("central: broker refused our subscriptions: %s", ", ".join(failed))
            return
        self.broker_ok = True     # connected *and* subscribed: events now reach us

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.broker_ok:
            log.warning("central: broker connection lost (%s); reconnecting", reason_code)
        self.broker_ok = False

    def _on_message(self, client, userdata, msg) -> None:
        self._queue.put(_Inbound(self._generation, msg.mid, msg.qos, msg.topic, msg.payload))

    def _ack(self, items: list[_Inbound]) -> None:
        for item in items:
            # A mid from an older connection may now name another message: skip it; the broker
            # redelivers the old one and the id key makes that a no-op.
            if item.qos > 0 and item.generation == self._generation:
                self._client.ack(item.mid, item.qos)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "Consumer":
        self._connect_db_once()
        address = parse_broker_url(self.config.broker)
        if address.tls:
            self._client.tls_set(ca_certs=self.config.ca_file)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = self.config.receive_max
        self._client.connect_async(address.host, address.port, keepalive=30, clean_start=False, properties=props)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, name=f"{self.config.instance}-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(_WAKE)          # the writer may be waiting for a message: stop it now
        if self._thread:
            self._thread.join(timeout=10)
        self._client.disconnect()
        self._client.loop_stop()
        if self._conn is not None:
            self._conn.close()

    def stats(self) -> dict:
        return {"instance": self.config.instance, "broker": self.broker_ok, "db": self.db_ok,
                "received": self.counts["received"], "stored": self.counts["stored"],
                "duplicates": self.counts["duplicates"], "batches": self.counts["batches"],
                "redacted": self.counts["redacted"], "rejected": dict(self.rejected),
                "quarantined": self.counts["quarantined"],
                "resend_requests": self.counts["resend_requests"],
                "pending": self._queue.qsize(), "last_error": self.last_error}

    # -- writer thread ------------------------------------------------------------------------
    def _run(self) -> None:
        next_periodic = 0.0
        while not self._stop.is_set():
            batch = self._collect()
            if batch:
                self._process_safely(batch)
            if time.monotonic() >= next_periodic:
                self._periodic()
                next_periodic = time.monotonic() + self.config.periodic_s

    def _collect(self) -> list[_Inbound]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        if first is _WAKE:
            return []
        batch = [first]
        deadline = time.monotonic() + self.config.batch_ms / 1000.0
        while len(batch) < self.config.batch_max:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if item is _WAKE:
                break
            batch.append(item)
        return batch

    def _process_safely(self, batch: list[_Inbound]) -> None:
        """A bug while processing must not stall the fleet: an unacknowledged batch would hold
        the broker's receive window until it stops delivering to us. Retry the messages one by
        one; the one that still fails alone is quarantined (`internal_error`) with a traceback."""
        try:
            self._process(batch)
            return
        except Exception:
            log.exception("central: failed to process a batch of %d messages; retrying one by one", len(batch))
        for item in batch:
            try:
                self._process([item])
            except Exception:
                log.exception("central: quarantined a message that fails processing on %s", item.topic)
                dead = quarantine.Quarantined.of(item.topic, item.payload, "internal_error",
                                                 "processing raised: see the central log")
                if self._write_with_retry([], [dead]) is not None:
                    self._count_quarantined([dead])
                    self._ack([item])

    def _process(self, batch: list[_Inbound]) -> None:
        good, dead, sources = [], [], {}
        for item in batch:
            self.counts["received"] += 1
            try:
                message = topics.parse(item.topic, item.payload)
            except topics.BadMessage as err:
                dead.append(quarantine.Quarantined.from_error(item.topic, item.payload, err))
                continue
            if isinstance(message, topics.Event) and message.redacted:
                self.counts["redacted"] += 1
                log.warning("central: dropped forbidden fields %s from event %s of %s/%s",
                            list(message.redacted), message.id, message.site, message.device)
            good.append(message)
            sources[id(message)] = (item.topic, item.payload)
        result = self._write_with_retry(good, dead, sources)
        if result is None:
            return           # stopping: leave the batch unacknowledged for redelivery
        self.counts["stored"] += result.stored
        self.counts["duplicates"] += result.duplicates
        self.counts["batches"] += 1
        self._count_quarantined(result.quarantined)
        # Acknowledged only now: the quarantined ones are in PostgreSQL as well, never redelivered.
        self._ack(batch)
        if result.alarms:
            self.on_alarms(result.alarms)

    def _count_quarantined(self, items: list) -> None:
        for q in items:
            self.rejected[q.reason] += 1
            self.counts["quarantined"] += 1
            n = self.rejected[q.reason]
            if n in (1, 10, 100) or n % 1000 == 0:
                log.warning("central: quarantined a message (%d so far for %s) from %s/%s on %s: %s",
                            n, q.reason, q.site or "?", q.device or "?", q.topic, q.detail)

    def _write_with_retry(self, messages: list, dead: list = (), sources: dict | None = None) -> db.WriteResult | None:
        """Write the batch; retry while PostgreSQL is away. A batch PostgreSQL refuses for its
        content is split, and a message that PostgreSQL refuses alone is quarantined
        (`unstorable`), so one bad event never blocks the stream."""
        delay = 0.1
        while not self._stop.is_set():
            try:
                if self._writer is None:
                    self._connect_db()
                return self._writer.write(messages, list(dead), sources=sources)
            except (psycopg.OperationalError, psycopg.InterfaceError) as err:   # server gone, deadlock
                self._db_failed(err)
                self._stop.wait(delay * (0.5 + random.random()))
                delay = min(delay * 2, DB_BACKOFF_MAX_S)
            except Exception as err:  # refused for its content (psycopg.DataError, ValueError, ...)
                if len(messages) + len(dead) <= 1:
                    if not messages:
                        raise        # a quarantine row refused: a bug; _process_safely logs it
                    log.error("central: quarantined a message PostgreSQL refuses (%s: %s): %r",
                              type(err).__name__, err, messages[0])
                    topic, payload = (sources or {}).get(id(messages[0])) or ("?", repr(messages[0]).encode())
                    dead = [quarantine.Quarantined.of(topic, payload, "unstorable", f"{type(err).__name__}: {err}")]
                    messages = []
                    continue
                return self._write_one_by_one(messages, dead, sources)
        return None

    def _write_one_by_one(self, messages: list, dead: list, sources: dict | None) -> db.WriteResult | None:
        total = db.WriteResult()
        parts = [([], [q]) for q in dead] + [([m], []) for m in messages]
        for good, bad in parts:
            result = self._write_with_retry(good, bad, sources)
            if result is None:
                return None
            total.add(result)
        return total

    def _connect_db_once(self) -> None:
        try:
            self._connect_db()
        except Exception as err:
            self._db_failed(err)

    def _connect_db(self) -> None:
        conn = db.connect(self.config.dsn)
        db.migrate(conn)
        self._conn, self._writer = conn, db.Writer(conn, tz=self.config.tz, instance=self.config.instance)
        if not self.db_ok:
            log.info("central: PostgreSQL connected")
        self.db_ok, self.last_error = True, ""

    def _db_failed(self, err: Exception) -> None:
        if self.db_ok or not self.last_error:
            log.warning("central: PostgreSQL unavailable (%s); retrying with backoff", str(err).strip())
        self.db_ok, self.last_error = False, f"{type(err).__name__}: {str(err).strip()}"
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
        self._conn, self._writer = None, None

    def _periodic(self) -> None:
        """Offline alarms, roll-ups, retention, then gap recovery. Only a PostgreSQL error counts
        as "PostgreSQL unavailable"; anything else is a bug: logged with its traceback (and the
        writer thread goes on, so one bad round does not stop ingestion)."""
        if self._conn is None:
            return
        try:
            alarms = db.raise_offline_alarms(self._conn, self.config.offline_alarm_s)
            alarms += cards.sync_alarms(self._conn)
            analytics.refresh_rollups(self._conn)
            quarantine.clear_quiet_alarms(self._conn)
            if time.monotonic() >= self._next_retention:
                self._next_retention = time.monotonic() + RETENTION_EVERY_S
                quarantine.prune(self._conn)
                for name in db.drop_old_partitions(self._conn, self.config.retention_months):
                    log.info("central: retention dropped partition %s", name)
        except psycopg.Error as err:
            self._db_failed(err)
            return
        except Exception:
            log.exception("central: periodic round (alarms, roll-ups, retention) failed")
            return
        if alarms:
            self.on_alarms(alarms)
        self._recover_gaps()

    def _recover_gaps(self) -> None:
        settings = self.config.resend
        if settings is None or not self.broker_ok or self._conn is None or time.monotonic() < self._next_resend:
            return
        self._next_resend = time.monotonic() + settings.every_s
        try:
            sent = recovery.run_round(self._conn, self._publish_command, settings, now=time.time)
        except psycopg.Error as err:
            self._db_failed(err)
            return
        except Exception:
            log.exception("central: gap recovery round failed")
            return
        self.counts["resend_requests"] += len(sent)
        self.counts["resend_rounds"] += 1      # rounds done (a test waits for rounds, not for time)

    def _publish_command(self, topic: str, payload: str) -> bool:
        """Publish an unsigned command on our own connection (the broker ACL lets `central` only)."""
        props = Properties(PacketTypes.PUBLISH)
        # A request still queued for a device after the retry interval is stale: a newer one follows.
        props.MessageExpiryInterval = max(1, int(self.config.resend.retry_s))
        info = self._client.publish(topic, payload, qos=1, properties=props)
        return info.rc == mqtt.MQTT_ERR_SUCCESS
