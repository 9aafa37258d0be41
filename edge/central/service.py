"""`edge central run`: the consumer, the dashboard and the notifiers in one process.

The consumer runs on its own threads (paho + writer); the web app and the command sender run on
the asyncio loop. Stopping (SIGTERM/SIGINT) stops the web server first, then the consumer, which
leaves any unwritten batch unacknowledged for redelivery.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass
from typing import Callable
from zoneinfo import ZoneInfo

from aiohttp import web

from edge.central import cmd as central_cmd
from edge.central import auth, notify
from edge.central.ingest import Consumer, IngestConfig
from edge.central.web import AsyncDb, make_app
from edge.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CentralConfig:
    ingest: IngestConfig
    host: str = "127.0.0.1"
    port: int = 8090
    key_dir: str | None = None             # DIR/{site}/{device}.key
    staff_file: str | None = None          # tokens and logins, see edge.central.auth
    webhooks: tuple = ()
    smtp: str | None = None                # HOST:PORT
    mail_from: str = "edge-central@localhost"
    mail_to: tuple = ()
    cmd_timeout_s: float = 10.0
    notify_base_delay_s: float = 1.0
    tls_cert: str | None = None            # the dashboard over https (PEM files); else a TLS proxy in front
    tls_key: str | None = None
    sms: object = None                     # edge.central.sms.SmsConfig: citizen SMS (--sms gammu|http)
    # The dashboard's "now": which day is today, which results came in overnight. Tests pin it,
    # so their figures never depend on the hour or the date they happen to run at.
    clock: Callable[[], float] = time.time


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen {value!r}: expected HOST:PORT, e.g. 0.0.0.0:8090")
    return host.strip("[]") or "0.0.0.0", int(port)


class CentralApp:
    def __init__(self, config: CentralConfig):
        self.config = config
        self.tz = ZoneInfo(config.ingest.tz)
        self.db = AsyncDb(config.ingest.dsn)
        self.staff = auth.load_staff(config.staff_file)      # tokens and logins (auth.py)
        self.keys = central_cmd.KeyDir(config.key_dir) if config.key_dir else None
        notifiers = [notify.WebhookNotifier(url) for url in config.webhooks]
        if config.smtp and config.mail_to:
            host, port = parse_listen(config.smtp)
            notifiers.append(notify.SmtpNotifier(host, port, config.mail_from, list(config.mail_to)))
        self.dispatcher = notify.Dispatcher(notifiers, base_delay_s=config.notify_base_delay_s)
        self.consumer = Consumer(config.ingest, on_alarms=self.dispatcher.submit)
        self.sms = None
        if config.sms is not None:  # result-ready SMS and phone-tied ratings (edge.central.sms)
            from edge.central.sms import SmsService
            i = config.ingest
            self.sms = SmsService(config.sms, dsn=i.dsn, broker=i.broker, instance=i.instance, group=i.group,
                                  username=i.username, password=i.password, ca_file=i.ca_file,
                                  on_alarms=self.dispatcher.submit)
        self.runner: web.AppRunner | None = None
        self.port = config.port
        self.tls = self._tls()          # read now: a bad certificate stops `edge central run` with its reason

    # used by web.Handlers
    def now(self) -> float:
        """The dashboard's current time (`CentralConfig.clock`)."""
        return self.config.clock()

    def broker_ok(self) -> bool:
        return self.consumer.broker_ok

    def consumer_stats(self) -> dict:
        return {**self.consumer.stats(), "notified": self.dispatcher.sent, "notify_failed": self.dispatcher.failed,
                "notify_pending": self.dispatcher.pending(),
                **({"sms": self.sms.stats()} if self.sms is not None else {})}

    async def send_command(self, actor: str, body: dict, *, staff=None) -> tuple[dict, dict]:
        """Sign, record as `sent`, publish, wait, record `ok`/`refused`/`timeout` (cmd.py).

        `staff` (an `auth.Staff`, anything with `.role` and `.sites`): checked again here with
        `cmd.check_allowed`, so a staff member limited to some sites cannot command another;
        CommandForbidden (a CommandError) if not allowed."""
        if self.keys is None:
            raise ConfigError("no --keys directory configured: remote commands are disabled")
        site, device, service = body["site"], body["device"], body["service"]
        if staff is not None:
            central_cmd.check_allowed(staff.role, staff.sites, site)
        key = self.keys.key_for(site, device)
        cmd, result = await asyncio.to_thread(
            central_cmd.send, self.config.ingest.broker, key, site, device, service, body["type"],
            body.get("args", {}), timeout_s=self.config.cmd_timeout_s,
            username=self.config.ingest.username, password=self.config.ingest.password,
            ca_file=self.config.ingest.ca_file, journal=central_cmd.PgJournal(self.config.ingest.dsn, actor))
        log.info("central: %s sent %s to %s/%s/%s: %s", actor, cmd["type"], site, device, service, result)
        return cmd, result

    async def start(self) -> None:
        self.dispatcher.start()
        self.consumer.start()
        if self.sms is not None:
            await asyncio.to_thread(self.sms.start)
        self.runner = web.AppRunner(make_app(self), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.config.host, self.config.port, ssl_context=self.tls)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        log.info("central: dashboard on %s://%s:%d/ (instance %s)", "https" if self.config.tls_cert else "http",
                 self.config.host, self.port, self.config.ingest.instance)

    def _tls(self):
        """An SSL context for --tls-cert/--tls-key (session cookies are then Secure), or None."""
        if not self.config.tls_cert:
            return None
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        except OSError as err:      # missing file, or not a PEM certificate/key pair
            raise ConfigError(f"--tls-cert {self.config.tls_cert} / --tls-key {self.config.tls_key}: "
                              f"{err.strerror or err}") from err
        return context

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        await asyncio.to_thread(self.consumer.stop)
        if self.sms is not None:
            await asyncio.to_thread(self.sms.stop)
        self.dispatcher.stop()
        await self.db.close()

    async def run_forever(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
