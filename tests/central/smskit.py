"""A real gammu-smsd for the SMS tests: Debian's daemon on the test PostgreSQL with Gammu's `dummy`
phone driver, which takes its phone's folders from a directory (incoming texts are read from
`sms/1/`, the inbox folder, as Gammu SMS-backup files) and reports every send as accepted."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from edge.central import sms

START_TIMEOUT_S = 60.0   # generous: the test machines are shared


def have_gammu() -> bool:
    return shutil.which("gammu-smsd") is not None


class GammuSmsd:
    def __init__(self, dsn_port: int, workdir: Path, *, database: str = "postgres"):
        self.dir = workdir
        self.phone_dir = workdir / "phone"
        self.log = workdir / "smsd.log"
        self.config = workdir / "smsdrc"
        self.port, self.database = dsn_port, database
        self.proc: subprocess.Popen | None = None
        self._inbox_n = 0

    def start(self, dsn: str) -> "GammuSmsd":
        with psycopg.connect(dsn, autocommit=True) as conn:
            sms.ensure_gammu_schema(conn)   # the daemon refuses to start without its tables
        self.phone_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "[gammu]\n"
            f"device = {self.phone_dir}\nmodel = dummy\nconnection = none\n\n"
            "[smsd]\n"
            "service = sql\ndriver = native_pgsql\n"
            f"host = 127.0.0.1:{self.port}\nuser = postgres\npassword =\ndatabase = {self.database}\n"
            f"logfile = {self.log}\ndebuglevel = 0\n"
            # poll fast: a test waits on it (an office leaves the defaults)
            "commtimeout = 1\nsendtimeout = 5\nreceivefrequency = 1\nstatusfrequency = 0\nloopsleep = 1\n"
            "checksecurity = 0\nchecksignal = 0\ncheckbattery = 0\n")
        self.proc = subprocess.Popen(["gammu-smsd", "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:     # the daemon registers its phone once it runs
            if self.proc.poll() is not None:
                raise RuntimeError(f"gammu-smsd exited with {self.proc.returncode}: {self.log_text()}")
            with psycopg.connect(dsn, autocommit=True) as conn:
                if conn.execute('SELECT 1 FROM phones WHERE "Send"').fetchone():
                    return self
            time.sleep(0.1)
        raise TimeoutError(f"gammu-smsd did not register its phone: {self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"

    def receive(self, sender: str, text: str) -> None:
        """A citizen's SMS arrives at the modem (a Gammu SMS-backup file in the inbox folder)."""
        self._inbox_n += 1
        folder = self.phone_dir / "sms" / "1"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{self._inbox_n}.tmp"
        tmp.write_text("[SMSBackup000]\n"
                       'SMSC = "+84900000000"\nPDU = Deliver\nState = UnRead\n'
                       f'DateTime = {time.strftime("%Y%m%dT%H%M%S")}\n'
                       f'Number = "{sender}"\nCoding = Unicode_No_Compression\nFolder = 1\n'
                       f"Text00 = {text.encode('utf-16-be').hex().upper()}\n", encoding="utf-8")
        tmp.rename(folder / str(self._inbox_n))   # whole file or nothing, as the daemon polls

    def kill(self) -> None:
        """At the end of a test nothing waits for the daemon's clean exit (up to its 1 s loop)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def sentitems(dsn: str) -> list[dict]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute('SELECT "ID", "SequencePosition", "DestinationNumber", "TextDecoded", "Status", '
                            '"CreatorID", "UDH" FROM sentitems ORDER BY "ID", "SequencePosition"').fetchall()
    keys = ("id", "part", "number", "text", "status", "creator", "udh")
    return [dict(zip(keys, r)) for r in rows]
