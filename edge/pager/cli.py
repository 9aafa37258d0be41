"""`edge pager page|encode`: technician tools for a transmitter and the OOK keys (pager.md §D).

Kept light: serial and the drivers are imported inside the handlers so `edge --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys

DRIVERS = ("jtech", "lrs", "waveware", "espa", "ook")
OOK_PROTOCOLS = ("retekess-t119", "retekess-td157", "retekess-td161")


def register(sub) -> None:
    p = sub.add_parser("pager", help="pager transmitter tools: test page, OOK key encoder")
    psub = p.add_subparsers(dest="pager_command", metavar="ACTION", required=True)

    c = psub.add_parser("page", help="send one page to a card through a transmitter")
    c.add_argument("--driver", required=True, choices=DRIVERS)
    c.add_argument("--port", required=True, help="serial device or pyserial URL; 'sim' pages a built-in simulator")
    c.add_argument("--card", required=True, type=int, help="card (pager) number")
    c.add_argument("--system", type=int, default=0, help="base/system id the cards are paired to (default 0)")
    c.add_argument("--baud", type=int, default=None, help="default: the transmitter's own rate")
    c.add_argument("--message", default="", help="text for alpha pagers")
    c.add_argument("--capcode-base", type=int, default=0, help="WaveWare: capcode = base + card")
    c.add_argument("--ook-protocol", default="retekess-t119", choices=OOK_PROTOCOLS, help="for --driver ook")
    c.add_argument("--retries", type=int, default=2)
    c.add_argument("--cts", action="store_true", help="CTS flow control (JTECH Premises)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_page)

    c = psub.add_parser("encode", help="print the OOK key bits and pulse timings for a card")
    c.add_argument("--protocol", required=True, choices=OOK_PROTOCOLS)
    c.add_argument("--system", required=True, type=int, help="station/system id")
    c.add_argument("--card", required=True, type=int)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_encode)


def _fail(args, message: str, code: int = 2) -> int:
    if args.json:
        print(json.dumps({"ok": False, "error": message}, ensure_ascii=False))
    else:
        print(f"edge pager {args.pager_command}: {message}", file=sys.stderr)
    return code


def cmd_encode(args) -> int:
    from edge.pager import ook
    from edge.pager.protocol import FrameError

    try:
        key = ook.encode(args.protocol, args.system, args.card)
    except FrameError as err:
        return _fail(args, str(err))
    if args.json:
        print(json.dumps({"protocol": key["protocol"], "bits": key["bits"], "pulses_us": key["pulses_us"]}))
    else:
        print(f"protocol  {key['protocol']}\nbits      {key['bits']} (0x{int(key['bits'], 2):X})\n"
              f"pulses_us {' '.join(map(str, key['pulses_us']))}\nrepeats   {key['repeats']}")
    return 0


def cmd_page(args) -> int:
    from edge.errors import DeviceError
    from edge.pager.driver import ACK_TIMEOUT_S, PagerDriver, make_transmitter, open_transport
    from edge.pager.protocol import FrameError

    from edge.pager import setup  # the same transmitter settings as the service's

    settings = setup.transmitter_settings(args.driver, system=args.system, message=args.message,
                                          capcode_base=args.capcode_base, ook_protocol=args.ook_protocol)
    sim = None
    ack_timeout_s = ACK_TIMEOUT_S
    try:
        codec = make_transmitter(args.driver, **settings)
        codec.page_frame(args.card)  # refuse a bad card before touching any port
        port = args.port
        if port == "sim":
            from edge.pager.sim import ANSWER_WAIT_S, TransmitterSim

            sim = TransmitterSim(args.driver, ook_protocol=args.ook_protocol, **setup.sim_settings(settings))
            port = sim.start()
            ack_timeout_s = ANSWER_WAIT_S  # it answers from our own thread: late on a busy machine, never silent
        driver = PagerDriver(open_transport(port, baud=args.baud or codec.baud, rtscts=args.cts,
                                            timeout_s=ack_timeout_s),
                             codec, retries=args.retries, cts_flow=args.cts, ack_timeout_s=ack_timeout_s)
        try:
            result = driver.page(args.card)
        finally:
            driver.close()
        if sim is not None and not sim.wait_for(1):
            return _fail(args, f"the simulator did not accept the frame: {sim.rejected}", 1)
    except FrameError as err:
        return _fail(args, str(err))
    except DeviceError as err:
        return _fail(args, str(err), 1)
    finally:
        if sim is not None:
            sim.stop()
    out = {"ok": True, "driver": args.driver, "port": args.port, "card": args.card, "system": args.system,
           "frame": result.frame.hex(" "), "attempts": result.attempts}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"paged card {args.card} via {args.driver} on {args.port} ({result.attempts} attempt(s)): {out['frame']}")
    return 0
