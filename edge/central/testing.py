"""Throwaway PostgreSQL clusters for tests, the bench and the demo (never for production).

`initdb` refuses to run as root, so when we are root the cluster is created and run as the
`postgres` system user (`runuser -u postgres --`) in a temporary directory it owns. The server
listens on a free loopback port and a private socket directory, with `fsync=off` for speed.

Clusters live in memory (/dev/shm) when it has room: on a busy disk `initdb` and the first
writes take seconds, in memory a fraction of that, and a crash test behaves the same (with
fsync off the OS keeps the writes either way). `initdb` runs once per process: each cluster
starts from a copy of that first one, which is what a fresh `initdb` would produce again.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from edge.localbroker import PORT_ATTEMPTS, free_port  # noqa: F401  (free_port re-exported for the central tests)

PG_BIN_DIRS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")
START_TIMEOUT_S = 30.0
MEMORY_DIR = "/dev/shm"
MEMORY_MIN_FREE = 1 << 30           # leave /dev/shm alone when less than 1 GiB is free
_template: Path | None = None       # an initdb'd data directory, copied for each cluster


def default_base_dir() -> str | None:
    """/dev/shm when it is there with room to spare, else None (the system's temp directory)."""
    try:
        stats = os.statvfs(MEMORY_DIR)
    except OSError:
        return None
    if stats.f_bavail * stats.f_frsize < MEMORY_MIN_FREE or not os.access(MEMORY_DIR, os.W_OK):
        return None
    return MEMORY_DIR


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL server binary (Debian keeps them out of PATH)."""
    for directory in PG_BIN_DIRS:
        path = Path(directory) / name
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"PostgreSQL binary {name!r} not found (install the postgresql package)")


class PgCluster:
    """A PostgreSQL server in a temp dir: `.start()`, `.stop()`, `.kill()`, `.dsn`, `.port`."""

    def __init__(self, *, port: int | None = None, base_dir: str | None = None):
        self._port_chosen = port is None  # ours to change if someone else binds it first
        self._started = False
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="edge-pg-", dir=base_dir or default_base_dir()))
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.log = self.dir / "server.log"
        self._as_root = os.geteuid() == 0
        self._initialised = False

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, argv: list[str], **kw) -> subprocess.CompletedProcess:
        if self._as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)

    def _init(self) -> None:
        self.sock.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
        # `cp -a` keeps the owner (postgres) and the 0700 mode the server insists on.
        subprocess.run(["cp", "-a", str(self._initdb_template()), str(self.data)], check=True)
        self._initialised = True

    def _initdb_template(self) -> Path:
        """This process's initdb'd data directory (made on first use, removed at exit)."""
        global _template
        if _template is None or not _template.exists():
            home = Path(tempfile.mkdtemp(prefix="edge-pg-template-", dir=self.dir.parent))
            if self._as_root:
                shutil.chown(home, "postgres", "postgres")
            self._run([pg_bin("initdb"), "-D", str(home / "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                       "--locale=C.UTF-8", "--no-sync"])
            atexit.register(shutil.rmtree, home, ignore_errors=True)
            _template = home / "data"
        return _template

    def start(self) -> "PgCluster":
        # fsync=off survives a crash of PostgreSQL (the OS keeps the writes), which is what the
        # tests do; synchronous_commit stays on: with it off, an acknowledged commit can vanish
        # in such a crash, after central has already acknowledged the messages to the broker.
        if not self._initialised:
            self._init()
        for attempt in range(PORT_ATTEMPTS):
            logged_before = self.log.stat().st_size if self.log.exists() else 0
            try:
                self._pg_ctl_start()
                break
            except subprocess.CalledProcessError:
                # Another process (the other test worker) bound the free port before the server
                # did: a fresh one, unless this is a restart, where clients expect the same port.
                if self._started or not self._port_chosen or attempt == PORT_ATTEMPTS - 1 \
                        or "Address already in use" not in self._log_since(logged_before):
                    raise
                self.port = free_port()
        self._started = True
        self._wait_ready()
        return self

    def _pg_ctl_start(self) -> None:
        opts = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off " \
               f"-c full_page_writes=off -c max_connections=60 -c shared_buffers=64MB"
        self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w",
                   "-t", str(int(START_TIMEOUT_S)), "start"], cwd=str(self.dir))

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"PostgreSQL did not listen on port {self.port}: see {self.log}")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast` rolls back open transactions, `immediate` is a crash)."""
        if self.running():
            self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"], cwd=str(self.dir))

    def restart(self) -> None:
        self.stop("immediate")
        self.start()

    def cleanup(self) -> None:
        try:
            self.stop("immediate")
        except (subprocess.CalledProcessError, FileNotFoundError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PgCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


class PgDatabase:
    """A new empty database on a running cluster, for one test: `.dsn`, `.port`, `.name`, `.drop()`.

    Creating a database takes a few hundredths of a second, a cluster a few tenths. `stop()`,
    `start()` and `restart()` act on the whole cluster (a PostgreSQL outage as central sees it)."""

    def __init__(self, cluster: PgCluster):
        import psycopg

        self.cluster, self.port = cluster, cluster.port
        self.name = f"t_{time.time_ns()}"
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.name}")
        self.dsn = cluster.dsn.rsplit("/", 1)[0] + "/" + self.name

    def stop(self, mode: str = "fast") -> None:
        self.cluster.stop(mode)

    def start(self) -> "PgDatabase":
        self.cluster.start()
        return self

    def restart(self) -> None:
        self.cluster.restart()

    def drop(self) -> None:
        """Drop it (connections still open are ended); the cluster is started again if a test left it down."""
        import psycopg

        if not self.cluster.running():
            self.cluster.start()
        with psycopg.connect(self.cluster.dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
