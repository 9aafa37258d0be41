"""Fixtures for the deployment tests: the office broker exactly as deploy/mosquitto ships it
(TLS with a CA made by deploy/mosquitto/make-certs.py, passwd from make-passwd.sh, the ACL file),
started as a real mosquitto on free loopback ports; and MQTT clients whose every wait has a
deadline."""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import ssl
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from edge.errors import DeviceNotReady
from edge.localbroker import PORT_ATTEMPTS, wait_running
from edge.testing import DEADLINE_S, free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "mosquitto"
WAIT_S = DEADLINE_S  # every wait below ends as soon as its answer is in
SITE = "hn-test"
DEVICES = ("kiosk-a", "kiosk-b")


@dataclass
class Staged:
    """`images/build.sh --stage-only` run once: the staged pi-gen stage, the script's exit code and
    stderr, and the package files (edge/, relative to the repository) listed just before it ran."""
    out: Path
    returncode: int
    stderr: str
    package_files: list[str]

    @property
    def files(self) -> Path:
        return self.out / "01-edge" / "files"

    def skip_without_index(self) -> None:
        if self.returncode != 0 and "Could not find a version that satisfies" in self.stderr:
            pytest.skip("pip could not fetch setuptools for the isolated build (no package index)")


def _stage(workdir: Path) -> Staged:
    out = workdir / "stage-edge"
    package_files = [p.relative_to(REPO).as_posix() for p in (REPO / "edge").rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts]
    # The wheel is built by this venv's Python, which has pip (make setup made it): a clean
    # machine's python3 on PATH may be Debian's, without pip (python3-pip is not installed).
    result = subprocess.run(["bash", str(REPO / "images/build.sh"), "--stage-only", str(out)],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHON": sys.executable})
    return Staged(out, result.returncode, result.stderr, package_files)


@pytest.fixture(scope="session")
def staged(tmp_path_factory) -> Staged:
    """One staging, hence one wheel build, per test run: the recipe test checks the stage, the wheel
    tests take its wheel (build.sh builds it with `pip wheel --no-deps` from a copy of edge/).
    Under xdist the first worker to need it builds it in the run's own directory, under a lock;
    the others read what it recorded there."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _stage(tmp_path_factory.mktemp("staged"))
    run_dir = tmp_path_factory.getbasetemp().parent  # pytest-N: this run's, shared by its workers
    with open(run_dir / "staged.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = run_dir / "staged.json"
        if record.exists():
            data = json.loads(record.read_text())
            return Staged(Path(data.pop("out")), **data)
        staged = _stage(run_dir / "staged")
        record.write_text(json.dumps({**asdict(staged), "out": str(staged.out)}))
        return staged


@dataclass
class OfficeBroker:
    dir: Path
    tls_port: int
    plain_port: int
    process: subprocess.Popen
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def ca_file(self) -> str:
        return str(self.dir / "ca.crt")


def render_config(text: str, workdir: Path, tls_port: int, plain_port: int) -> str:
    """deploy/mosquitto/mosquitto.conf with its paths and ports moved into the test's directory."""
    text = text.replace("/etc/mosquitto/edge/", f"{workdir}/").replace("/var/lib/mosquitto/", f"{workdir}/data/")
    text = text.replace("listener 8883\n", f"listener {tls_port} 127.0.0.1\n")
    text = text.replace("listener 1883 127.0.0.1\n", f"listener {plain_port} 127.0.0.1\n")
    text = text.replace("log_dest syslog", "log_dest stderr")
    if os.geteuid() == 0:
        # As root mosquitto would switch to the `mosquitto` user, who cannot read pytest's tmp dirs.
        text = "user root\n" + text
    return text


def start_office_broker(workdir: Path, users: list[str], *, mutual_tls: bool = False,
                        acl: str | None = None) -> OfficeBroker:
    """`acl`: the ACL text to use instead of deploy/mosquitto/acl (e.g. one made by make-acl.sh)."""
    if not shutil.which("mosquitto") and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("mosquitto not installed (apt package 'mosquitto')")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    subprocess.run([sys.executable, str(DEPLOY / "make-certs.py"), "--out", str(workdir),
                    "--host", "localhost", "--ip", "127.0.0.1"], check=True, capture_output=True, timeout=60)
    subprocess.run([str(DEPLOY / "make-passwd.sh"), str(workdir), *users], check=True, capture_output=True, timeout=60)
    if acl is None:
        shutil.copy(DEPLOY / "acl", workdir / "acl")
    else:
        (workdir / "acl").write_text(acl)
    text = (DEPLOY / "mosquitto.conf").read_text()
    if mutual_tls:  # the documented option: uncomment the two lines
        text = text.replace("#require_certificate true", "require_certificate true")
        text = text.replace("#use_identity_as_username true", "use_identity_as_username true")
    for _ in range(PORT_ATTEMPTS):
        tls_port, plain_port = free_port(), free_port()
        process = _run_broker(workdir, render_config(text, workdir, tls_port, plain_port))
        if process is not None:
            break
    else:
        pytest.fail(f"mosquitto found its ports taken {PORT_ATTEMPTS} times in a row")
    passwords = {u: (workdir / "secrets" / f"{u}.password").read_text() for u in users}
    return OfficeBroker(workdir, tls_port, plain_port, process, passwords)


def _run_broker(workdir: Path, config: str) -> subprocess.Popen | None:
    """mosquitto with `config`, once it says it runs (a line at log_type information, added here);
    None if a port was taken before it could bind it (another test worker picked the same free
    port, or free_port() gave the same one twice): the caller picks new ones."""
    conf, log_path = workdir / "mosquitto.conf", workdir / "mosquitto.log"
    conf.write_text(config + "log_type information\n")
    logged_before = log_path.stat().st_size if log_path.exists() else 0
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
    try:
        return process if wait_running(process, log_path, logged_before, timeout_s=WAIT_S) else None
    except DeviceNotReady as err:
        pytest.fail(str(err))


def stop_broker(broker) -> None:
    broker.process.terminate()
    try:
        broker.process.wait(5)
    except subprocess.TimeoutExpired:
        broker.process.kill()


@pytest.fixture(scope="module")
def office_broker(tmp_path_factory):
    broker = start_office_broker(tmp_path_factory.mktemp("office-broker"), ["central", *DEVICES])
    try:
        yield broker
    finally:
        stop_broker(broker)


class Peer:
    """A paho client for tests: connect() returns the CONNACK reason, messages land in a queue."""

    def __init__(self, broker: OfficeBroker, username: str | None, password: str | None = None, *,
                 tls: bool = True, ca_file: str | None = None, protocol=mqtt.MQTTv311,
                 certfile: str | None = None, keyfile: str | None = None):
        self.broker = broker
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:10]}",
                                  protocol=protocol)
        if username is not None:
            self.client.username_pw_set(username, password)
        # paho retries a refused login after this delay, and close() waits for that sleep: keep it short.
        self.client.reconnect_delay_set(0.05, 0.5)
        # connect() runs the TCP connect and the TLS handshake in this thread, under paho's 5 s
        # default: a starved broker process could miss it. Like every wait here, it ends early.
        self.client.connect_timeout = WAIT_S
        self.tls = tls
        if tls:
            self.client.tls_set(ca_certs=ca_file or broker.ca_file, certfile=certfile, keyfile=keyfile,
                                tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.messages: queue.Queue = queue.Queue()
        self.connack = threading.Event()  # set by the CONNACK, or by the broker dropping us before one
        self.reason = None
        self.suback = threading.Event()
        self.granted = None
        self.published: dict[int, object] = {}
        self._puback = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, msg: self.messages.put((msg.topic, msg.payload))
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.reason = reason_code
        self.connack.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connack.set()  # dropped before any CONNACK (reason stays None): no need to wait it out

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._puback:
            self.published[mid] = reason_code
            self._puback.notify_all()

    def wait_published(self, mid: int):
        """Wait for the PUBACK of `mid`; returns its reason code (MQTT 5 says why a publish failed)."""
        with self._puback:
            assert self._puback.wait_for(lambda: mid in self.published, WAIT_S), f"no PUBACK for {mid}"
            return self.published[mid]

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.granted = reason_codes
        self.suback.set()

    def connect(self, timeout_s: float = WAIT_S):
        """Connect and wait for the CONNACK; its reason code (0 = accepted), None if none came."""
        port = self.broker.tls_port if self.tls else self.broker.plain_port
        self.client.connect("127.0.0.1" if not self.tls else "localhost", port, keepalive=30)
        self.client.loop_start()
        if not self.connack.wait(timeout_s):
            return None
        return self.reason

    def subscribe(self, topic: str, qos: int = 1):
        self.suback.clear()
        self.client.subscribe(topic, qos)
        assert self.suback.wait(WAIT_S), "no SUBACK within the deadline"
        return self.granted

    def publish(self, topic: str, payload: str, qos: int = 1) -> int:
        info = self.client.publish(topic, payload, qos=qos)
        return info.mid

    def wait_for(self, payload: bytes | str, timeout: float = WAIT_S) -> list[tuple[str, bytes]]:
        """Collect messages until one with `payload` arrives; returns everything received before it."""
        payload = payload.encode() if isinstance(payload, str) else payload
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{payload!r} did not arrive within {timeout} s; got {seen}")
            try:
                topic, body = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if body == payload:
                return seen
            seen.append((topic, body))

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def mtls_broker(tmp_path_factory):
    """The office broker with its mutual-TLS lines enabled, and a client certificate for kiosk-a."""
    workdir = tmp_path_factory.mktemp("office-broker-mtls")
    broker = start_office_broker(workdir, ["central", *DEVICES], mutual_tls=True)
    subprocess.run([sys.executable, str(DEPLOY / "make-certs.py"), "--out", str(workdir), "--client", "kiosk-a"],
                   check=True, capture_output=True, timeout=60)
    try:
        yield broker
    finally:
        stop_broker(broker)


def _peer_factory(broker: OfficeBroker):
    made: list[Peer] = []

    def make(username: str | None, password: str | None = None, **kwargs) -> Peer:
        if username is not None and password is None and "certfile" not in kwargs:
            password = broker.passwords[username]
        peer = Peer(broker, username, password, **kwargs)
        made.append(peer)
        return peer

    return make, made


def _close_all(made: list[Peer]) -> None:
    for peer in made:
        try:
            peer.close()
        except Exception:  # a refused client may already be gone
            pass


@pytest.fixture
def peers(office_broker):
    """`peers(user)` -> a Peer authenticated as that user (password from make-passwd); call .connect()."""
    make, made = _peer_factory(office_broker)
    yield make
    _close_all(made)


@pytest.fixture
def mtls_peers(mtls_broker):
    make, made = _peer_factory(mtls_broker)
    yield make
    _close_all(made)
