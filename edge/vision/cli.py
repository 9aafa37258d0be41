"""`edge vision ...`: convert the models, look at faces in images, and enrol/verify/delete by hand.

Kept light: numpy, OpenCV and onnxruntime are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    p = sub.add_parser("vision", help="face pipeline: model conversion, enrol/verify/delete helpers")
    vsub = p.add_subparsers(dest="vision_command", metavar="ACTION", required=True)

    c = vsub.add_parser("convert", help="build the ONNX embedding model from dlib's weights (idempotent)")
    c.add_argument("--out", default="models", help="output directory (default %(default)s)")
    c.add_argument("--force", action="store_true", help="rebuild even when the checksum matches")
    c.set_defaults(func=cmd_convert)

    c = vsub.add_parser("faces", help="detect faces in images: boxes, quality, gate reason (no embeddings shown)")
    c.add_argument("images", nargs="+", metavar="IMAGE")
    c.add_argument("--models", default=None, help="model directory (default: models/ or /var/lib/edge/models)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_faces)

    for name, text in (("enrol", "enrol a dossier from images, with recorded consent"),
                       ("verify", "verify images (or the configured camera) against a dossier"),
                       ("delete", "delete a dossier's templates")):
        c = vsub.add_parser(name, help=text)
        c.add_argument("--config", required=True, help="the device's TOML file (its [vision] section and data_dir)")
        c.add_argument("--dossier", required=True)
        c.add_argument("--json", action="store_true")
        if name == "enrol":
            c.add_argument("--actor", required=True, help="who recorded the citizen's consent")
            c.add_argument("--purpose", default="result_collection")
            c.add_argument("images", nargs="+", metavar="IMAGE")
        elif name == "verify":
            c.add_argument("images", nargs="*", metavar="IMAGE", help="none: use the configured camera")
            c.add_argument("--timeout", type=float, default=3.0)
            c.add_argument("--challenge", choices=["turn_left", "turn_right"], default=None,
                           help="the liveness prompt the citizen followed while IMAGES were recorded "
                                "(default: a random one, as for any recording)")
        else:
            c.add_argument("--reason", default="request", choices=["request", "pickup", "retention"])
        c.set_defaults(func=cmd_manage, action=name)


def cmd_convert(args: argparse.Namespace) -> int:
    from edge.vision.convert import main

    return main(args.out, force=args.force)


def _read_rgb(path: str):
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def cmd_faces(args: argparse.Namespace) -> int:
    from edge.vision.embed import Embedder
    from edge.vision.models import ModelMissing
    from edge.vision.quality import Gates, check, pose

    try:
        embedder = Embedder(args.models)
    except ModelMissing as err:
        print(f"vision faces: {err}", file=sys.stderr)
        return 2
    status = 0
    for path in args.images:
        try:
            faces = embedder.detect(_read_rgb(path))
        except ValueError as err:
            print(f"vision faces: {err}", file=sys.stderr)
            status = 1
            continue
        reason, _ = check(faces, Gates())
        rows = [{"box": [round(float(v)) for v in f.box], "score": round(f.score, 3), "quality": round(f.quality, 3),
                 "yaw": round(pose(f.landmarks).yaw, 2), "roll_deg": round(pose(f.landmarks).roll_deg, 1)}
                for f in faces]
        if args.json:
            print(json.dumps({"file": path, "gate": reason, "faces": rows}))
        else:
            print(f"{path}: {len(faces)} face(s), gate: {reason}")
            for row in rows:
                print(f"  box {row['box']} score {row['score']} quality {row['quality']} "
                      f"yaw {row['yaw']} roll {row['roll_deg']} deg")
    return status


def cmd_manage(args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_manage(args))


async def _manage(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.config import load
    from edge.errors import ConfigError
    from edge.service import ServiceContext
    from edge.store import Store
    from edge.vision.config import VisionConfig
    from edge.vision.service import VisionService

    try:
        config = load(args.config)
    except ConfigError as err:
        print(f"vision {args.action}: {err}", file=sys.stderr)
        return 2
    section = config.services.get("vision") or VisionConfig()
    if args.action != "verify" or args.images:
        section = _without_camera(section)
    store = Store(config.store_path)
    ctx = ServiceContext(name="vision", site=config.site, device=config.device, store=store, config=section,
                         data_dir=Path(config.data_dir), language=config.language)
    service = VisionService(ctx)
    try:
        if args.action == "delete":
            result = {"deleted": await service.delete(args.dossier, args.reason)}
        else:
            await service.start()
            if args.action == "enrol":
                result = await service.enrol(args.dossier, [_read_rgb(p) for p in args.images],
                                             {"actor": args.actor, "purpose": args.purpose})
            else:
                frames = [_read_rgb(p) for p in args.images] or None
                result = await service.verify(args.dossier, frames, timeout_s=args.timeout, actor="cli",
                                              challenge=args.challenge)
    except ValueError as err:
        print(f"vision {args.action}: {err}", file=sys.stderr)
        return 2
    finally:
        await service.stop()
        store.close()
    print(json.dumps(result, ensure_ascii=False) if args.json else _describe(result))
    ok = result.get("ok", result.get("deleted", result.get("decision") == "accept"))
    return 0 if ok else 1


def _without_camera(section):
    import dataclasses

    return dataclasses.replace(section, camera="none")


def _describe(result: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in result.items())
