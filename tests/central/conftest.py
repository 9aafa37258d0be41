"""Central fixtures: a throwaway PostgreSQL cluster, a persistent mosquitto, simulated devices."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest

from edge.central.testing import PgCluster, PgDatabase, free_port
from edge.localbroker import PORT_ATTEMPTS, MosquittoBroker

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 60.0
ANSWER_TIMEOUT_S = 30.0   # how long a test lets a device take to answer a command (early exit)
# Every page and read API needs a login: test clients read with this admin token by default.
ADMIN_TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


# The offices' time zone (central's default `tz`): what "today" and "overnight" mean on the dashboard.
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def pinned_now() -> float:
    """A "now" for the dashboard's clock (`central_app(clock=lambda: now)`): yesterday at 12:00
    office time. Far from midnight and from the 07:30 of the overnight count, and in the past: the
    figures of "today" cannot change under a test that runs across midnight, nor depend on the
    hour or the date it runs at."""
    noon = dt.datetime.now(TZ).replace(hour=12, minute=0, second=0, microsecond=0)
    return (noon - dt.timedelta(days=1)).timestamp()


def staff_file(directory: Path, extra: str = "") -> str:
    """A staff file with the default test admin token (plus `extra` lines)."""
    path = Path(directory) / "staff.txt"
    path.write_text(f"{ADMIN_TOKEN} admin Test Admin\n{extra}")
    return str(path)


def wait_until(predicate, timeout: float = DEADLINE_S, what: str = "condition", interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def stop_network(client: mqtt.Client, *, disconnect: bool = True) -> None:
    """Stop a paho client's network thread at once. `loop_stop()` alone only raises a flag that
    the thread reads when its select() times out, a second later; a DISCONNECT queued first wakes
    it, and it ends as soon as that is sent. Without `disconnect` (a crash, a power cut) there is
    no packet to send, so it is the one-second wait."""
    if disconnect:
        client.disconnect()
    client.loop_stop()


@pytest.fixture(scope="session")
def pg_cluster():
    """One PostgreSQL server per test process (each test has its own database on it: `pg`)."""
    cluster = PgCluster().start()
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
def pg(pg_cluster):
    """A fresh empty database for this test (`.dsn`, `.port`, `.name`); `.stop()`/`.start()` stop
    and start the server under it, as a PostgreSQL outage does."""
    if not pg_cluster.running():          # a failed test may have left it stopped
        pg_cluster.start()
    database = PgDatabase(pg_cluster)
    try:
        yield database
    finally:
        database.drop()


def persistent_broker_config(directory: Path) -> str:
    """The office-broker settings that matter to central: a persistent store (so a restarted
    broker still holds central's session and queue) and a queue long enough for a consumer
    that is away for a while (mosquitto's default of 1000 would drop events)."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:        # mosquitto started as root drops to the mosquitto user
        shutil.chown(directory, "mosquitto")
    return f"persistence true\npersistence_location {directory}/\nmax_queued_messages 1000000\n"


def start_acl_broker(users: dict[str, str], acl: str) -> tuple[MosquittoBroker, Path]:
    """A mosquitto with passwords and an ACL, as an office broker runs (no TLS: loopback only),
    and a queue long enough for a busy central. Returns (broker, its folder): close both."""
    workdir = Path(tempfile.mkdtemp(prefix="edge-central-acl-"))   # mosquitto, as its own user, reads it
    passwd = workdir / "passwd"
    for n, (user, password) in enumerate(users.items()):
        subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if n == 0 else []) + [str(passwd), user, password],
                       check=True, capture_output=True)
    (workdir / "acl").write_text(acl)
    if os.geteuid() == 0:
        for path in (workdir, passwd, workdir / "acl"):
            shutil.chown(path, "mosquitto")
    broker = MosquittoBroker(workdir=workdir, extra_config=(
        f"allow_anonymous false\npassword_file {passwd}\nacl_file {workdir / 'acl'}\n"
        "max_queued_messages 1000000\n")).start()
    return broker, workdir


@pytest.fixture
def broker():
    workdir = Path(tempfile.mkdtemp(prefix="edge-central-mq-"))
    if os.geteuid() == 0:
        shutil.chown(workdir, "mosquitto")
    b = MosquittoBroker(extra_config=persistent_broker_config(workdir / "db"), workdir=workdir)
    b.start()
    try:
        yield b
    finally:
        b.kill()        # nothing reads its store after the test: no need to wait for a clean stop
        shutil.rmtree(workdir, ignore_errors=True)


class SimDevice:
    """A device as central sees it: retained status with a will, QoS 1 events with seq.

    Like the real outbox, an event is 'sent' only once the broker acknowledged it (on_publish);
    paho resends unacknowledged ones after a reconnect."""

    def __init__(self, broker_port: int, site: str, device: str, *, version: str = "1.2.0",
                 username: str | None = None, password: str | None = None):
        self.site, self.device, self.version = site, device, version
        self.seq = 0
        self.ids: list[str] = []
        self.acked = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{site}-{device}", protocol=mqtt.MQTTv5)
        if username:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(20)   # mosquitto announces Receive Maximum 20
        self.client.reconnect_delay_set(0.2, 1)
        self.client.will_set(self.topic("status"), self._status("offline"), qos=1, retain=True)
        self.client.on_publish = self._on_publish
        self.client.on_connect = lambda c, u, f, rc, p: self.publish_status("online")
        # A real device's keepalive (edge.config BrokerConfig.keepalive_s). With 5 s the broker
        # drops an idle simulated device whose ping is 2.5 s late (it allows 1.5 x keepalive), as
        # a loaded machine can make it, and sends its will: the device shows offline for a
        # moment. crash() closes the socket, so it does not need a short keepalive.
        self.client.connect_async("127.0.0.1", broker_port, keepalive=30)
        self.client.loop_start()

    def topic(self, suffix: str) -> str:
        return f"motcua/v1/{self.site}/{self.device}/{suffix}"

    def _status(self, state: str) -> str:
        return json.dumps({"state": state, "ts": time.time(), "version": self.version,
                           "services": {"pager": "ok", "locker": "ok"}})

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._lock:
            self.acked += 1

    def publish_status(self, state: str) -> mqtt.MQTTMessageInfo:
        return self.client.publish(self.topic("status"), self._status(state), qos=1, retain=True)

    def event(self, service: str, type: str, **fields) -> dict:
        self.seq += 1
        body = {"id": uuid.uuid4().hex, "seq": self.seq, "ts": time.time(), "type": type, **fields}
        self.ids.append(body["id"])
        self.client.publish(self.topic(f"{service}/event"), json.dumps(body), qos=1)
        return body

    def state(self, service: str, snapshot: dict) -> None:
        self.client.publish(self.topic(f"{service}/state"), json.dumps({"ts": time.time(), **snapshot}), qos=1, retain=True)

    def raw(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def crash(self) -> None:
        """Drop the connection without DISCONNECT, as a power cut does: the broker sends the will."""
        self.client.reconnect_delay_set(5, 5)      # no reconnecting while the network thread winds down
        sock = self.client.socket()
        stopping = threading.Thread(target=self.client.loop_stop)
        stopping.start()                           # raises paho's stop flag; then wake its select()
        if sock is not None:                       # at once (it would look at the flag in 1 s):
            with contextlib.suppress(OSError):     # (already closed: nothing to wake)
                sock.shutdown(socket.SHUT_RD)      # our side only, nothing is sent to the broker
        stopping.join()
        if sock is not None:
            sock.close()                           # the broker sees the connection drop: the will

    def close(self, *, graceful: bool = True) -> None:
        """Graceful: 'offline' then DISCONNECT (no will); else just stop the network thread."""
        if graceful:
            sent = self.publish_status("offline")
            if sent.rc == mqtt.MQTT_ERR_SUCCESS:     # connected: the broker has it before we leave
                sent.wait_for_publish(5)
        stop_network(self.client, disconnect=graceful)


@pytest.fixture
def devices(broker):
    made: list[SimDevice] = []

    def make(site: str, device: str) -> SimDevice:
        d = SimDevice(broker.port, site, device)
        made.append(d)
        return d

    yield make
    for d in made:
        stop_network(d.client)


class CentralProcess:
    """`edge central run` as a real process (so it can be killed with SIGKILL).

    Its port comes from free_port() and is bound later by the process: if another process (the
    other test worker) takes it in between, the first start moves to a fresh port; a restart
    keeps its port, as the clients (a page left open) expect. It counts as started once its
    own log says it listens on that port and /api/health answers ok, so a central of another
    test that holds the port is never mistaken for it."""

    def __init__(self, broker_url: str, dsn: str, instance: str, log_dir: Path, extra: list[str] = ()):
        if "--staff" not in extra:
            extra = ["--staff", staff_file(log_dir), *extra]
        self.broker_url, self.dsn, self.instance, self.extra = broker_url, dsn, instance, list(extra)
        self.port = free_port()
        self.log_path = log_dir / f"{instance}.log"
        self.proc: subprocess.Popen | None = None
        self._started = False

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-m", "edge", "central", "run", "--broker", self.broker_url, "--db", self.dsn,
                "--listen", f"127.0.0.1:{self.port}", "--instance", self.instance, *self.extra]

    def start(self) -> "CentralProcess":
        for attempt in range(PORT_ATTEMPTS):
            logged = self.log_path.stat().st_size if self.log_path.exists() else 0
            self.proc = subprocess.Popen(self.argv, cwd=REPO, stdout=subprocess.DEVNULL,
                                         stderr=open(self.log_path, "ab"))
            listening = f"dashboard on http://127.0.0.1:{self.port}/"
            wait_until(lambda: self.proc.poll() is not None
                       or (listening in self._log_since(logged) and (self.health() or {}).get("ok")),
                       what=f"{self.instance} healthy (log {self.log_path})")
            if self.proc.poll() is None:
                self._started = True
                return self
            taken = "address already in use" in self._log_since(logged).lower()
            if self._started or not taken or attempt == PORT_ATTEMPTS - 1:
                raise AssertionError(f"{self.instance} exited with {self.proc.returncode} (log {self.log_path})")
            self.port = free_port()
        raise AssertionError("unreachable")

    def _log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def health(self) -> dict | None:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/health", headers=AUTH)
            # 10 s: the kill -9 test reads it once from a process that may be busy (not before it
            # listens: that is refused at once)
            with urllib.request.urlopen(request, timeout=10) as r:
                return json.load(r)
        except OSError:
            return None

    def get(self, path: str):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=AUTH)
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.load(r)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def central_process(tmp_path):
    started: list[CentralProcess] = []

    def make(broker_url: str, dsn: str, instance: str, extra: list[str] = ()) -> CentralProcess:
        c = CentralProcess(broker_url, dsn, instance, tmp_path, list(extra))
        started.append(c)
        return c

    yield make
    for c in started:
        c.stop()


class CentralThread:
    """A CentralApp (consumer + dashboard + notifiers) on its own event loop in this process."""

    def __init__(self, config):
        import asyncio

        from edge.central.service import CentralApp

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        if config.staff_file is None:          # the test clients read with ADMIN_TOKEN
            import dataclasses
            config = dataclasses.replace(config, staff_file=staff_file(Path(tempfile.mkdtemp(prefix="edge-staff-"))))
        self.app = CentralApp(config)
        asyncio.run_coroutine_threadsafe(self.app.start(), self.loop).result(30)
        self.url = f"http://127.0.0.1:{self.app.port}"

    def get(self, path: str, *, raw: bool = False, headers: dict | None = None):
        request = urllib.request.Request(self.url + path, headers=AUTH if headers is None else headers)
        with urllib.request.urlopen(request, timeout=15) as r:
            body = r.read()
            return (r, body) if raw else json.loads(body)

    def post(self, path: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as err:
            return err.code, json.load(err)

    def stop(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.app.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def central_app(broker, pg, tmp_path):
    from edge.central.ingest import IngestConfig
    from edge.central.service import CentralConfig

    started: list[CentralThread] = []

    def make(**kw) -> CentralThread:
        ingest = IngestConfig(broker=broker.url, dsn=pg.dsn, instance=kw.pop("instance", "central-web"),
                              batch_ms=10, periodic_s=0.3, offline_alarm_s=kw.pop("offline_alarm_s", 300.0),
                              **kw.pop("ingest", {}))
        kw.setdefault("staff_file", staff_file(tmp_path))
        # A device's answer to a command is real work: a generous deadline (the answer ends the
        # wait at once), not the 10 s default, which a loaded CI machine could run out.
        kw.setdefault("cmd_timeout_s", ANSWER_TIMEOUT_S)
        c = CentralThread(CentralConfig(ingest=ingest, host="127.0.0.1", port=0, notify_base_delay_s=0.05, **kw))
        started.append(c)
        wait_until(lambda: c.app.consumer.broker_ok and c.app.consumer.db_ok, what="central connected")
        if c.app.sms is not None:    # its locker/notify subscription too: a notify sent before it is lost
            wait_until(lambda: c.app.sms.broker_ok, what="central's SMS service subscribed")
        return c

    yield make
    for c in started:
        c.stop()
