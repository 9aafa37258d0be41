"""The `edge` command line (also `python -m edge`).

Heavy modules (numpy, onnxruntime, paho, serial) are imported inside the handlers, so that
`edge --help` stays fast on a Pi. Each area registers its own subcommands from `AREA_CLIS`,
and each benchmark is a module in `BENCHES` with `add_arguments(parser)` and `main(args)`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys

from edge import __version__

AREA_CLIS = [
    "edge.vision.cli",
    "edge.central.cli",
    "edge.locker.cli",
    "edge.pager.cli",
    "edge.qr.cli",
]
BENCHES = {
    "mqtt": "edge.mqtt_bench",
    "central": "edge.central.bench",
    "embed": "edge.vision.bench",
    "locker": "edge.locker.bench",
    "qr": "edge.qr.bench",
    "pager": "edge.pager.bench",
    "match": "edge.vision.gallery_bench",
    "kiosk": "edge.kiosk.bench",
    "liveness": "edge.vision.liveness_bench",
}
# What each benchmark measures, for `edge bench --help` (the modules are imported only when one runs).
BENCH_HELP = {
    "mqtt": "outbox drain rate to a local mosquitto, idle supervisor footprint, `edge --help` time",
    "central": "central ingestion rate (1 and 2 consumers, unbatched baseline) and dashboard query time",
    "embed": "whole-frame face pipeline time (detect, align, embed) beside face_recognition/dlib",
    "locker": "locker command to first reply byte, status round trip, open-and-confirm, beside a bare pty",
    "qr": "QR codes found and time per frame of edge.qr.decode beside zxing-cpp alone and pyzbar alone",
    "pager": "counter button press to the last page byte (p50/p99) beside a bare serial write; queue ops/s",
    "match": "gallery search on 1M face templates (exact, fast, numpy, FAISS): latency and recall",
    "kiosk": "first screen interactive in Chromium, and the face step's answer time",
    "liveness": "anti-spoofing + motion cost per frame beside the face pipeline; scores on the synthetic attack set",
}


def build_parser(bench_wanted: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge", description="One-stop office device software: pager base, lockers, face, QR, MQTT.")
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run the supervisor with a config file")
    p.add_argument("--config", default="/etc/edge/edge.toml", help="TOML file (default %(default)s)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="every service on simulators with a built-in config")
    p.add_argument("--seconds", type=float, default=None, help="stop after N seconds (default: until Ctrl-C)")
    p.add_argument("--broker", default=None, help="use this broker (mqtt://HOST:PORT) instead of starting one")
    p.add_argument("--central", nargs="?", const="127.0.0.1:8090", default=None, metavar="HOST:PORT",
                   help="also run the central service with a throwaway PostgreSQL; dashboard on HOST:PORT "
                        "(default 127.0.0.1:8090)")
    p.set_defaults(func=lambda a: _call("edge.demo", "main", a))

    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = csub.add_parser("check", help="validate a config file; names every bad key")
    c.add_argument("file", help="the TOML file, e.g. /etc/edge/edge.toml (exit 1 lists every problem)")
    c.set_defaults(func=cmd_config_check)

    p = sub.add_parser("doctor", help="check ports, GPIO, camera, models, broker, clock, disk")
    p.add_argument("--config", default=None, help="TOML file to check against")
    p.add_argument("--json", action="store_true", help="the checks as a JSON list (exit 1 if any fails)")
    p.add_argument("--offline", action="store_true", help="skip the broker check (an office whose broker is down)")
    p.set_defaults(func=lambda a: _call("edge.doctor", "main", a))

    p = sub.add_parser("audit", help="audit log tools")
    asub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    c = asub.add_parser("verify", help="check the hash chain of the audit log")
    c.add_argument("--db", required=True, help="the store (e.g. /var/lib/edge/edge.db)")
    c.set_defaults(func=cmd_audit_verify)

    p = sub.add_parser("monitor", help="show live status and events of a site")
    p.add_argument("--broker", required=True, help="mqtt://HOST:PORT")
    p.add_argument("--site", default="+", help="site id (default: all)")
    p.add_argument("--seconds", type=float, default=None, help="stop after N seconds")
    p.add_argument("--json", action="store_true", help="one JSON line per message")
    p.set_defaults(func=lambda a: _call("edge.monitor", "main", a))

    p = sub.add_parser("bench", help="benchmarks: " + ", ".join(sorted(BENCHES)),
                       description="Each benchmark prints its figures beside a baseline measured in the same run; "
                                   "`edge bench NAME --help` gives its options.")
    bsub = p.add_subparsers(dest="bench", metavar="NAME", required=True)
    for name, module in sorted(BENCHES.items()):
        b = bsub.add_parser(name, help=BENCH_HELP.get(name, f"edge bench {name} --help for its options"))
        b.add_argument("--json", action="store_true", help="print the results as JSON")
        if name == bench_wanted:  # a bench module is imported only when that benchmark runs
            mod = importlib.import_module(module)
            b.description = (mod.__doc__ or "").strip() or None
            mod.add_arguments(b)
            b.set_defaults(func=mod.main)

    for module in AREA_CLIS:
        importlib.import_module(module).register(sub)
    return parser


def _bench_wanted(argv: list[str]) -> str | None:
    """The NAME of `edge [options] bench NAME …`, if that is what is asked."""
    words = [w for w in argv if not w.startswith("-")]
    return words[1] if len(words) > 1 and words[0] == "bench" else None


def _call(module: str, func: str, args: argparse.Namespace) -> int:
    return getattr(importlib.import_module(module), func)(args)


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from edge.config import load
    from edge.errors import ConfigError
    from edge.supervisor import Supervisor

    try:
        config = load(args.config)
    except ConfigError as err:
        print(f"edge: invalid config {args.config}:", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    setup_logging(config.log_level.upper() if not args.verbose else "DEBUG")
    asyncio.run(Supervisor(config).run())
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from edge.config import load
    from edge.errors import ConfigError

    try:
        config = load(args.file)
    except ConfigError as err:
        print(f"{args.file}: {len(err.problems)} problem(s):")
        for problem in err.problems:
            print(f"  {problem}")
        return 1
    print(f"{args.file}: OK (site {config.site}, device {config.device}, role {config.role}, "
          f"services: {', '.join(config.enabled_services()) or 'none'})")
    for warning in config.warnings():  # valid, so exit 0, but unsafe: say it loudly
        print(f"  WARNING: {warning}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from edge.audit import verify

    verdict = verify(args.db)
    print(verdict.message)
    return 0 if verdict.ok else 1


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_bench_wanted(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if args.command != "run":
        setup_logging("DEBUG" if args.verbose else "INFO")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`edge doctor | head`): stop quietly as other Unix tools do, and point
        # stdout at /dev/null so Python's own flush at exit does not print a second traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a tool ended by the broken pipe reports


if __name__ == "__main__":
    sys.exit(main())
