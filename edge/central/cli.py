"""`edge central run|cmd|migrate` (imports only argparse at --help time)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys


def register(sub) -> None:
    central = sub.add_parser("central", help="central service: fleet ingestion, PostgreSQL, dashboard, commands")
    csub = central.add_subparsers(dest="central_command", metavar="COMMAND", required=True)

    run = csub.add_parser("run", help="consume the broker into PostgreSQL and serve the dashboard")
    _common(run)
    run.add_argument("--listen", default=os.environ.get("EDGE_LISTEN", "127.0.0.1:8090"), help="HOST:PORT of the dashboard")
    run.add_argument("--tls-cert", default=os.environ.get("EDGE_TLS_CERT"),
                     help="serve the dashboard over https with this PEM certificate (EDGE_TLS_CERT; with --tls-key)")
    run.add_argument("--tls-key", default=os.environ.get("EDGE_TLS_KEY"), help="its PEM private key (EDGE_TLS_KEY)")
    run.add_argument("--instance", default=os.environ.get("EDGE_INSTANCE", f"central-{socket.gethostname()}"),
                     help="MQTT client id: fixed per instance so a restart resumes its session")
    run.add_argument("--group", default=os.environ.get("EDGE_GROUP", "central"),
                     help="shared-subscription group; '' = a plain subscription (one instance, survives broker restarts)")
    run.add_argument("--batch-ms", type=float, default=20.0, help="max wait to fill a batch (ms)")
    run.add_argument("--batch-max", type=int, default=500, help="max messages per transaction")
    run.add_argument("--tz", default="Asia/Ho_Chi_Minh", help="time zone of the offices (days, hours)")
    run.add_argument("--retention-months", type=int, default=int(os.environ.get("EDGE_RETENTION_MONTHS", "0")),
                     help="drop event partitions older than this many months (0 keeps all)")
    run.add_argument("--offline-alarm-s", type=float, default=300.0, help="alarm when a device is offline this long")
    run.add_argument("--resend-retry-s", type=float, default=300.0,
                     help="gap recovery: ask an online device to resend missing seqs at most this often (0 = off)")
    run.add_argument("--keys", default=os.environ.get("EDGE_KEYS"), help="device command keys: DIR/{site}/{device}.key")
    run.add_argument("--staff", default=os.environ.get("EDGE_STAFF"),
                     help="who may use the dashboard (EDGE_STAFF): lines 'TOKEN ROLE [sites=S,…] NAME' (API tokens) and "
                          "'login STAFF_ID PIN_HASH ROLE [sites=S,…] NAME' (login page); roles viewer, operator, admin. "
                          "Without it nobody can read the dashboard (docs/central.md)")
    run.add_argument("--webhook", action="append", default=[], help="alarm webhook URL (repeatable)")
    run.add_argument("--smtp", default=os.environ.get("EDGE_SMTP"), help="SMTP server HOST:PORT for alarm e-mail")
    run.add_argument("--mail-from", default="edge-central@localhost")
    run.add_argument("--mail-to", action="append", default=[], help="alarm e-mail recipient (repeatable)")
    _sms_options(run)
    run.set_defaults(func=cmd_run)

    c = csub.add_parser("cmd", help="send a signed command to a device service and wait for its result")
    c.add_argument("--broker", default=os.environ.get("EDGE_BROKER", "mqtt://127.0.0.1:1883"))
    _broker_auth(c)
    c.add_argument("--db", default=os.environ.get("EDGE_DB"), help="PostgreSQL DSN: audit the command centrally")
    c.add_argument("--site", required=True)
    c.add_argument("--device", required=True)
    c.add_argument("--service", required=True)
    c.add_argument("--type", required=True, dest="cmd_type")
    c.add_argument("--args", default="{}", help="JSON object of arguments")
    key = c.add_mutually_exclusive_group(required=os.environ.get("EDGE_KEYS") is None)
    key.add_argument("--key", help="the device's HMAC key file (0600)")
    key.add_argument("--keys", default=os.environ.get("EDGE_KEYS"), help="directory DIR/{site}/{device}.key (EDGE_KEYS)")
    c.add_argument("--actor", default=os.environ.get("USER", "cli"), help="who sends it (audit)")
    c.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for cmd/result")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_cmd)

    h = csub.add_parser("staff-hash", help="hash a dashboard PIN or password for a 'login' line of the --staff file")
    h.add_argument("--stdin", action="store_true", help="read the PIN from standard input instead of prompting")
    h.set_defaults(func=cmd_staff_hash)

    m = csub.add_parser("migrate", help="create or upgrade the PostgreSQL schema and exit")
    m.add_argument("--db", default=os.environ.get("EDGE_DB"), required=os.environ.get("EDGE_DB") is None)
    m.set_defaults(func=cmd_migrate)

    r = csub.add_parser("devices", help="the registry of provisioned devices (site, device): who may report")
    r.add_argument("--db", default=os.environ.get("EDGE_DB"), required=os.environ.get("EDGE_DB") is None)
    r.add_argument("action", choices=("list", "add", "remove", "import"),
                   help="list; add/remove SITE DEVICE; import FILE of 'SITE DEVICE' lines (as deploy/mosquitto/make-acl.sh)")
    r.add_argument("names", nargs="*", help="SITE DEVICE for add/remove, FILE for import")
    r.set_defaults(func=cmd_devices)


def _sms_options(p: argparse.ArgumentParser) -> None:
    """Citizen SMS (result ready + PIN, reminders, rating codes): see edge.central.sms and docs/central.md."""
    p.add_argument("--sms", choices=("gammu", "http"), default=os.environ.get("EDGE_SMS") or None,
                   help="send citizen SMS through gammu-smsd (its tables in --db) or an HTTP brandname API")
    p.add_argument("--sms-http", metavar="FILE", default=os.environ.get("EDGE_SMS_HTTP"),
                   help="TOML request template for --sms http: url, [headers], body with $phone $text $ref")
    p.add_argument("--sms-templates", metavar="FILE", default=os.environ.get("EDGE_SMS_TEMPLATES"),
                   help="TOML: office = \"…\" and [templates] per message kind (Vietnamese defaults)")
    p.add_argument("--sms-office", default=os.environ.get("EDGE_SMS_OFFICE"), help="office name at the start of each SMS")
    p.add_argument("--sms-ascii", action="store_true", help="no diacritics: GSM-7, one 160-character part per SMS")
    p.add_argument("--gammu-sql", metavar="FILE", help="gammu-smsd's pgsql.sql (default: the Debian package's copy)")


def _broker_auth(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker-username", default=os.environ.get("EDGE_BROKER_USERNAME"),
                   help="broker user (EDGE_BROKER_USERNAME; the office ACL's user is `central`)")
    p.add_argument("--broker-password-file", default=os.environ.get("EDGE_BROKER_PASSWORD_FILE"),
                   help="file holding the broker password (EDGE_BROKER_PASSWORD_FILE)")
    p.add_argument("--ca-file", default=os.environ.get("EDGE_CA_FILE"), help="broker CA certificate for mqtts:// (EDGE_CA_FILE)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", default=os.environ.get("EDGE_BROKER", "mqtt://127.0.0.1:1883"), help="mqtt://HOST:PORT or mqtts://")
    _broker_auth(p)
    p.add_argument("--db", default=os.environ.get("EDGE_DB"), required=os.environ.get("EDGE_DB") is None,
                   help="postgresql://USER@HOST/DB, or 'temp' for a throwaway local cluster (demo only)")


def cmd_run(args) -> int:
    import asyncio
    import logging

    from edge.central.ingest import IngestConfig, read_password
    from edge.mqtt import parse_broker_url
    from edge.central.recovery import RecoverySettings
    from edge.central.service import CentralApp, CentralConfig, parse_listen
    from edge.central.sms import config_from_args as sms_config_from_args
    from edge.errors import ConfigError

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cluster = None
    if args.db == "temp":       # a demo on a laptop: a throwaway PostgreSQL, deleted at exit
        from edge.central.testing import PgCluster
        cluster = PgCluster().start()
        args.db = cluster.dsn
        logging.getLogger(__name__).info("central: throwaway PostgreSQL at %s", cluster.dsn)
    try:
        parse_broker_url(args.broker)
        host, port = parse_listen(args.listen)
        config = CentralConfig(
            ingest=IngestConfig(broker=args.broker, dsn=args.db, instance=args.instance, group=args.group,
                                batch_ms=args.batch_ms, batch_max=args.batch_max, tz=args.tz,
                                offline_alarm_s=args.offline_alarm_s, retention_months=args.retention_months,
                                username=args.broker_username, password=read_password(args.broker_password_file),
                                ca_file=args.ca_file,
                                resend=RecoverySettings(every_s=min(30.0, args.resend_retry_s),
                                                        retry_s=args.resend_retry_s) if args.resend_retry_s > 0 else None),
            host=host, port=port, key_dir=args.keys, staff_file=args.staff, webhooks=tuple(args.webhook),
            tls_cert=args.tls_cert, tls_key=args.tls_key or args.tls_cert,
            smtp=args.smtp, mail_from=args.mail_from, mail_to=tuple(args.mail_to),
            sms=sms_config_from_args(args))
        app = CentralApp(config)
    except (ConfigError, OSError, ValueError) as err:
        print(f"edge central run: {err}", file=sys.stderr)
        if cluster:
            cluster.cleanup()
        return 2
    try:
        asyncio.run(app.run_forever())
    finally:
        if cluster:
            cluster.cleanup()
    return 0


def cmd_cmd(args) -> int:
    import psycopg

    from edge.central import cmd as central_cmd
    from edge.central.ingest import read_password
    from edge.errors import CommandError, ConfigError
    from edge.security import load_key

    from edge import safejson

    try:
        cmd_args = safejson.loads_object(args.args)
        key = load_key(args.key) if args.key else central_cmd.KeyDir(args.keys).key_for(args.site, args.device)
        journal = None
        if args.db:       # audited centrally: `sent` before publishing, then ok/refused/timeout
            from edge.central import db
            with db.connect(args.db) as conn:
                db.migrate(conn)
            journal = central_cmd.PgJournal(args.db, args.actor)
        cmd, result = central_cmd.send(args.broker, key, args.site, args.device, args.service, args.cmd_type,
                                       cmd_args, timeout_s=args.timeout, username=args.broker_username,
                                       password=read_password(args.broker_password_file), ca_file=args.ca_file,
                                       journal=journal)
    except safejson.UnsafeJson as err:
        print(f"edge central cmd: --args is not JSON: {err}", file=sys.stderr)
        return 2
    except (ConfigError, CommandError) as err:
        print(f"edge central cmd: {err}", file=sys.stderr)
        return 1
    except psycopg.Error as err:      # the command is recorded before it is published: nothing was sent
        print(f"edge central cmd: cannot record the command in PostgreSQL ({str(err).strip()}): not sent",
              file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"id": cmd["id"], "result": result}, ensure_ascii=False))
    else:
        status = "ok" if result.get("ok") else f"refused: {result.get('error')}"
        print(f"{args.site}/{args.device}/{args.service} {args.cmd_type} ({cmd['id']}): {status}")
    return 0 if result.get("ok") else 1


def cmd_devices(args) -> int:
    from edge.central import db, quarantine

    expected = {"list": 0, "add": 2, "remove": 2, "import": 1}[args.action]
    if len(args.names) != expected:
        print(f"edge central devices {args.action}: expected {expected} argument(s) "
              f"({'SITE DEVICE' if expected == 2 else 'FILE' if expected else 'none'})", file=sys.stderr)
        return 2
    try:
        pairs = (quarantine.read_devices_file(args.names[0]) if args.action == "import"
                 else [tuple(args.names)] if args.action == "add" else [])
        with db.connect(args.db) as conn:
            db.migrate(conn)
            if args.action in ("add", "import"):
                added = quarantine.register(conn, pairs, by=os.environ.get("USER", "cli"))
                print(f"{added} device(s) added, {len(pairs) - added} already registered")
            elif args.action == "remove":
                if not quarantine.unregister(conn, *args.names):
                    print(f"edge central devices remove: {'/'.join(args.names)} is not registered", file=sys.stderr)
                    return 1
            else:
                for site, device in quarantine.registered(conn):
                    print(f"{site} {device}")
    except (OSError, ValueError) as err:
        print(f"edge central devices {args.action}: {err}", file=sys.stderr)
        return 2
    return 0


def cmd_staff_hash(args) -> int:
    import getpass

    from edge.central.auth import hash_pin

    pin = sys.stdin.readline().rstrip("\r\n") if args.stdin else getpass.getpass("PIN or password: ")
    if len(pin) < 4:
        print("edge central staff-hash: a PIN needs at least 4 characters", file=sys.stderr)
        return 2
    print(hash_pin(pin))
    return 0


def cmd_migrate(args) -> int:
    from edge.central import db

    with db.connect(args.db) as conn:
        version = db.migrate(conn)
    print(f"central schema at v{version}")
    return 0
