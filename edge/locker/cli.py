"""`edge locker open|status|scan`: talk to one board directly, for technicians (no service, no store).

Board as set on the board's switches, lock as labelled (1-based). `--port sim` runs the
matching simulator on a pty (or gpiozero's MockFactory for `--driver gpio`).
Kept light: serial and gpiozero are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

DRIVERS = ("kerong", "8a", "modbus", "gpio")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("locker", help="open a lock or read a locker board (technicians)")
    sub = p.add_subparsers(dest="locker_cmd", metavar="CMD", required=True)
    o = sub.add_parser("open", help="pulse one lock")
    _common(o)
    o.add_argument("--lock", type=int, required=True, help="lock number as labelled, from 1")
    o.add_argument("--pulse-ms", type=int, default=300, help="coil pulse (Modbus/GPIO), capped at 1000")
    o.set_defaults(func=cmd_open)
    s = sub.add_parser("status", help="read every lock and occupancy bit of one board")
    _common(s)
    s.set_defaults(func=cmd_status)
    sc = sub.add_parser("scan", help="list the board addresses that answer")
    _common(sc, board=False)
    sc.set_defaults(func=cmd_scan)


def _common(p: argparse.ArgumentParser, board: bool = True) -> None:
    p.add_argument("--driver", choices=DRIVERS, required=True)
    p.add_argument("--port", required=True, help="serial device or URL (spy://, socket://); 'sim' for a simulator; "
                                                 "for gpio: 'sim'/'mock' or 'gpio'")
    if board:
        p.add_argument("--board", type=int, required=True, help="board address as set on its switches")
    p.add_argument("--baud", type=int, default=None, help="default: the board's (Kerong 19200, 8A/Modbus 9600)")
    p.add_argument("--polarity", choices=("open_high", "open_low"), default="open_high",
                   help="lock-bit level that means 'door open'")
    p.add_argument("--timeout", type=float, default=0.3, help="reply timeout in seconds")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


class _Session:
    """Builds the driver (and a simulator for --port sim); closes both."""

    def __init__(self, args: argparse.Namespace):
        self.args, self.sim, self.driver = args, None, None
        from edge.locker import setup  # the same wiring as the service's

        if args.driver == "gpio":
            self.driver, self.sim = setup.gpio_driver(simulated=args.port in ("sim", "mock"), polarity=args.polarity)
            return
        from edge.locker.driver import SerialLockerDriver

        protocol = setup.serial_protocol(args.driver, args.polarity)
        port = args.port
        if port == "sim":
            lo, _ = protocol.board_range
            boards = [args.board] if getattr(args, "board", None) is not None else [lo]
            self.sim = setup.bus_sim(args.driver, boards, polarity=args.polarity)
            port = self.sim.path
        transport = setup.open_bus(port, protocol, baud=args.baud, timeout_s=args.timeout)
        if self.sim is not None:  # the simulator's pty, read in step with its boards (sim.PacedPort)
            transport = self.sim.paced(transport)
        self.driver = SerialLockerDriver(protocol, transport=transport, reply_timeout_s=args.timeout)

    def close(self) -> None:
        if self.driver is not None:
            self.driver.close()
        if self.sim is not None and hasattr(self.sim, "stop"):
            self.sim.stop()


def _run(args: argparse.Namespace, action) -> int:
    from edge.errors import EdgeError

    started = time.perf_counter()
    session = None
    try:
        session = _Session(args)
        result = action(session.driver)
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        return _print(args, {"ok": True, "driver": args.driver, **result})
    except ValueError as err:  # out-of-range board/lock, bad pins
        _print(args, {"ok": False, "error": str(err)})
        return 2
    except (EdgeError, OSError) as err:
        _print(args, {"ok": False, "error": f"{type(err).__name__}: {err}"})
        return 1
    finally:
        if session is not None:
            session.close()


def _print(args: argparse.Namespace, result: dict) -> int:
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    elif not result["ok"]:
        print(f"edge locker: {result['error']}", file=sys.stderr)
    elif "locks" in result:
        print(f"{result['driver']} board {result['board']} ({result['ms']} ms):")
        for lock in result["locks"]:
            occ = "" if lock["occupied"] is None else ("  occupied" if lock["occupied"] else "  empty")
            print(f"  lock {lock['lock']:2d}: {lock['door']}{occ}")
    elif "boards" in result:
        print(f"{result['driver']}: boards answering: {result['boards'] or 'none'}")
    else:
        door = {True: "open", False: "closed", None: "unknown"}[result["door_open"]]
        print(f"{result['driver']} board {result['board']} lock {result['lock']}: pulse sent "
              f"({result['sent'] or 'GPIO'}), {result['frames']} frame(s), door reads {door}"
              f"{'; ' + result['note'] if result['note'] else ''} ({result['ms']} ms)")
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    def action(driver) -> dict:
        frame = driver.protocol.open_request(args.board, args.lock, args.pulse_ms) if driver.protocol else b""
        r = driver.open(args.board, args.lock, args.pulse_ms)
        return {"board": r.board, "lock": r.lock, "sent": frame.hex(" "), "reply": r.reply.hex(" "),
                "frames": r.frames_sent, "door_open": r.door_open, "note": r.note}
    return _run(args, action)


def cmd_status(args: argparse.Namespace) -> int:
    def action(driver) -> dict:
        reading = driver.status(args.board)
        locks = [{"lock": n, "door": "open" if s.open else "closed", "occupied": s.occupied}
                 for n, s in sorted(reading.locks.items())]
        return {"board": args.board, "locks": locks}
    return _run(args, action)


def cmd_scan(args: argparse.Namespace) -> int:
    def action(driver) -> dict:
        driver.reply_timeout_s = min(driver.reply_timeout_s, 0.1) if hasattr(driver, "reply_timeout_s") else None
        return {"boards": driver.scan()}
    return _run(args, action)
