"""`edge qr scan|parse|sheet|catalog`: kept light, the handlers import OpenCV and zxing-cpp."""

from __future__ import annotations

import json
import sys
import time

DEFAULT_DB = "/var/lib/edge/edge.db"


def register(sub) -> None:
    p = sub.add_parser("qr", help="QR codes: scan images, parse texts, print posters, manage the catalog")
    qsub = p.add_subparsers(dest="qr_command", metavar="ACTION", required=True)

    c = qsub.add_parser("scan", help="decode QR codes in images: one JSON line per image")
    c.add_argument("images", nargs="+", metavar="IMAGE")
    c.add_argument("--json", action="store_true", help="JSON lines (the default and only output)")
    c.add_argument("--budget-ms", type=float, default=None, help="time for harder passes per image")
    c.set_defaults(func=cmd_scan)

    c = qsub.add_parser("parse", help="what a QR text means (kind, fields, reason)")
    c.add_argument("text")
    c.add_argument("--host", action="append", default=None, help="allowed URL host (repeatable; default gov.vn)")
    c.set_defaults(func=cmd_parse)

    c = qsub.add_parser("sheet", help="print posters of procedure QR codes (PDF, PNG or SVG)")
    c.add_argument("--out", required=True, help="posters.pdf, or a folder / NAME.png / NAME.svg")
    c.add_argument("--format", choices=["pdf", "png", "svg"], default=None, help="default: from --out")
    src = c.add_mutually_exclusive_group()
    src.add_argument("--catalog", default=None, help="CSV/JSON catalog file (default: the bundled sample)")
    src.add_argument("--db", default=None, help="take the procedures from this store")
    c.add_argument("--codes", default=None, help="only these codes, comma-separated")
    c.add_argument("--payload", choices=["url", "code"], default="url",
                   help="encode the national portal URL (phones open it) or the bare code")
    c.add_argument("--font", default=None, help="TTF font with Vietnamese glyphs (default DejaVu Sans)")
    c.set_defaults(func=cmd_sheet)

    c = qsub.add_parser("catalog", help="the procedure catalog in the store")
    csub = c.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    i = csub.add_parser("import", help="import a CSV or JSON catalog (all rows valid, or nothing written)")
    i.add_argument("file")
    i.add_argument("--db", default=DEFAULT_DB, help="the store (default %(default)s)")
    i.add_argument("--replace", action="store_true", help="delete procedures missing from the file")
    i.add_argument("--check", action="store_true", help="only validate the file")
    i.set_defaults(func=cmd_catalog_import)
    s = csub.add_parser("show", help="look a code (or variant, or portal uuid) up")
    s.add_argument("code")
    s.add_argument("--db", default=DEFAULT_DB, help="the store (default %(default)s)")
    s.set_defaults(func=cmd_catalog_show)


def cmd_scan(args) -> int:
    import cv2

    from edge.qr.decoder import DEFAULT_BUDGET_MS, Decoder
    from edge.qr.errors import QrInputError

    decoder = Decoder(budget_ms=args.budget_ms if args.budget_ms is not None else DEFAULT_BUDGET_MS)
    status = 0
    for name in args.images:
        line: dict = {"file": name, "codes": [], "ms": 0.0}
        image, why = _read_image(name)
        if image is None:
            line["error"] = why
            status = 1
        else:
            start = time.perf_counter()
            try:
                line["codes"] = [_shown(s) for s in decoder.decode(image)]
            except QrInputError as err:
                line["error"] = str(err)
                status = 1
            line["ms"] = round((time.perf_counter() - start) * 1000.0, 2)
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return status


def _shown(scan) -> dict:
    """A scan as printed: a citizen ID card's text is masked (output may end up in a log)."""
    from edge.qr.citizen_id import mask
    from edge.qr.codes import PRIVATE_KINDS

    shown = scan.as_dict()
    if scan.kind in PRIVATE_KINDS:
        shown["text"] = mask(scan.text)
    return shown


def _read_image(name: str):
    """(BGR image, "") or (None, why); never OpenCV's own stderr warnings."""
    import cv2
    import numpy as np

    try:
        data = np.fromfile(name, dtype=np.uint8)
    except FileNotFoundError:
        return None, "no such file"
    except OSError as err:
        return None, f"cannot read ({err.strerror or err})"
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        return None, "not a readable image (PNG, JPEG, BMP, TIFF, WebP)"
    return image, ""


def cmd_parse(args) -> int:
    from edge.qr.codes import DEFAULT_ALLOWED_HOSTS, parse

    parsed = parse(args.text, allowed_hosts=args.host or DEFAULT_ALLOWED_HOSTS)
    print(json.dumps({"kind": parsed.kind, "fields": parsed.fields, "reason": parsed.reason}, ensure_ascii=False))
    return 0


def cmd_sheet(args) -> int:
    from edge.qr import catalog, sheet
    from edge.qr.errors import QrError

    try:
        if args.db:
            procedures = catalog.procedures(_store(args.db))
        else:
            procedures = catalog.read_file(args.catalog or catalog.SAMPLE)
        if args.codes:
            wanted = [c.strip() for c in args.codes.split(",") if c.strip()]
            known = {p["code"]: p for p in procedures}
            missing = [c for c in wanted if c not in known]
            if missing:
                print(f"edge qr sheet: not in the catalog: {', '.join(missing)}", file=sys.stderr)
                return 1
            procedures = [known[c] for c in wanted]
        files = sheet.write(sheet.posters(procedures, payload=args.payload), args.out, args.format, font=args.font)
    except QrError as err:
        print(f"edge qr sheet: {err}", file=sys.stderr)
        return 1
    for f in files:
        print(f)
    return 0


def cmd_catalog_import(args) -> int:
    from edge.qr import catalog
    from edge.qr.errors import CatalogError

    try:
        rows = catalog.read_file(args.file)
    except CatalogError as err:
        print(f"{args.file}: {len(err.problems)} problem(s), nothing imported:", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if args.check:
        print(f"{args.file}: OK ({len(rows)} procedures)")
        return 0
    summary = catalog.import_rows(_store(args.db), rows, actor="cli", replace=args.replace)
    print(f"{args.file}: imported into {args.db}: {summary['added']} added, {summary['updated']} updated, "
          f"{summary['removed']} removed, {summary['total']} in the catalog")
    return 0


def cmd_catalog_show(args) -> int:
    from edge.qr import catalog

    found = catalog.lookup(_store(args.db), args.code)
    if found is None:
        print(f"{args.code}: not in the catalog", file=sys.stderr)
        return 1
    print(json.dumps(found, ensure_ascii=False, indent=1))
    return 0


def _store(path: str):
    from edge.store import Store

    return Store(path)
