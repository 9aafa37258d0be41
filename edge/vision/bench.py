"""Whole-frame face pipeline time (640x480 -> embeddings) against face_recognition/dlib, same run.

Reports p50/p90 per stage (detect, align, embed) and whole frame for edge's ONNX pipeline, the
whole-frame time of `face_recognition.face_encodings` (dlib HOG + 5-point + ResNet) on the
same frames, whether both reach the same accept/reject decisions against an enrolled
reference, the onnxruntime thread settings, and peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "tests" / "data" / "faces"
REFERENCE = "obama.jpg"
PROBES = ["obama.jpg", "obama1.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "biden2.jpg", "two_people.jpg"]
THRESHOLD = 0.6
TARGET_SPEEDUP = 2.0


def add_arguments(parser) -> None:
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the frames (default %(default)s)")
    parser.add_argument("--images", default=str(SAMPLES), help="folder of sample images (default: tests/data/faces)")
    parser.add_argument("--models", default=None, help="model directory (default: models/ or /var/lib/edge/models)")
    parser.add_argument("--no-dlib", action="store_true", help="skip the dlib baseline")


def _progress(text: str) -> None:
    print(f"bench embed: {text}", file=sys.stderr, flush=True)


def _frames(folder: Path) -> dict[str, np.ndarray]:
    import cv2

    from edge.hw.camera import fit

    frames = {}
    for name in PROBES:
        image = cv2.imread(str(folder / name))
        if image is not None:
            frames[name] = fit(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (640, 480))
    if REFERENCE not in frames:
        raise FileNotFoundError(f"{folder / REFERENCE} is missing")
    return frames


def _stats(samples: list[float]) -> dict:
    import numpy as np

    ms = np.array(samples) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p90_ms": round(float(np.percentile(ms, 90)), 1)}


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_ours(frames: dict, *, threads: int, repeat: int, models: str | None) -> dict:
    import numpy as np

    from edge.vision.align import align
    from edge.vision.embed import Embedder

    embedder = Embedder(models, threads=threads)
    embedder.embed(frames[REFERENCE])  # warm-up: first-run allocations are not steady state
    times: dict[str, list[float]] = {"detect": [], "align": [], "embed": [], "frame": []}
    for _ in range(repeat):
        for frame in frames.values():
            t0 = time.perf_counter()
            found = embedder.detector.detect(frame)
            t1 = time.perf_counter()
            chips = [align(frame, points) for points in found.landmarks]
            t2 = time.perf_counter()
            if chips:
                embedder.embed_chips(np.stack(chips))
            t3 = time.perf_counter()
            for key, value in zip(("detect", "align", "embed", "frame"), (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                times[key].append(value)
    vectors = {name: [f.embedding for f in embedder.embed(frame)] for name, frame in frames.items()}
    return {"stages": {k: _stats(v) for k, v in times.items()}, "vectors": vectors}


def run_dlib(frames: dict, *, repeat: int) -> dict:
    import face_recognition

    face_recognition.face_encodings(frames[REFERENCE])
    times = []
    for _ in range(repeat):
        for frame in frames.values():
            t0 = time.perf_counter()
            face_recognition.face_encodings(frame)
            times.append(time.perf_counter() - t0)
    vectors = {name: list(face_recognition.face_encodings(frame)) for name, frame in frames.items()}
    return {"stages": {"frame": _stats(times)}, "vectors": vectors}


def _decisions(vectors: dict) -> dict[str, str]:
    import numpy as np

    reference = vectors[REFERENCE][0] if vectors.get(REFERENCE) else None
    out = {}
    for name, faces in vectors.items():
        if name == REFERENCE:
            continue
        if reference is None or not faces:
            out[name] = "no_face"
            continue
        best = min(float(np.linalg.norm(np.asarray(v) - reference)) for v in faces)
        out[name] = "accept" if best < THRESHOLD else "reject"
    return out


def main(args) -> int:
    import onnxruntime

    frames = _frames(Path(args.images))
    _progress(f"{len(frames)} frames of 640x480, {args.repeat} passes, onnxruntime {onnxruntime.__version__} "
              f"intra_op_num_threads={args.threads} inter_op=1")
    ours = run_ours(frames, threads=args.threads, repeat=args.repeat, models=args.models)
    rss_ours = _peak_rss_mb()
    _progress(f"edge pipeline: frame p50 {ours['stages']['frame']['p50_ms']} ms")
    result = {"frames": len(frames), "repeat": args.repeat, "threads": args.threads, "cores": _cores(),
              "edge": ours["stages"], "edge_decisions": _decisions(ours["vectors"]), "peak_rss_mb_edge": rss_ours}
    if not args.no_dlib:
        _progress("baseline: face_recognition.face_encodings (dlib)")
        theirs = run_dlib(frames, repeat=args.repeat)
        result["dlib"] = theirs["stages"]
        result["dlib_decisions"] = _decisions(theirs["vectors"])
        result["same_decisions"] = result["dlib_decisions"] == result["edge_decisions"]
        result["speedup"] = round(theirs["stages"]["frame"]["p50_ms"] / ours["stages"]["frame"]["p50_ms"], 2)
        result["target_speedup"] = TARGET_SPEEDUP
    result["peak_rss_mb_total"] = _peak_rss_mb()
    if args.json:
        print(json.dumps(result))
    else:
        _print_table(result)
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _print_table(r: dict) -> None:
    print(f"frames: {r['frames']} x {r['repeat']} passes, 640x480; onnxruntime threads {r['threads']} "
          f"(inter-op 1), cores {r['cores']}")
    print(f"{'stage':<28}{'p50 ms':>10}{'p90 ms':>10}")
    for stage, values in r["edge"].items():
        print(f"{'edge ' + stage:<28}{values['p50_ms']:>10}{values['p90_ms']:>10}")
    if "dlib" in r:
        print(f"{'dlib face_encodings frame':<28}{r['dlib']['frame']['p50_ms']:>10}{r['dlib']['frame']['p90_ms']:>10}")
        print(f"speed-up (p50, whole frame): {r['speedup']}x (target >= {r['target_speedup']}x)")
        print(f"same accept/reject decisions vs {REFERENCE}: {r['same_decisions']}")
        for name in r["edge_decisions"]:
            print(f"  {name:<16} edge {r['edge_decisions'][name]:<8} dlib {r['dlib_decisions'][name]}")
    print(f"peak RSS: {r['peak_rss_mb_edge']} MB after the edge pipeline, {r['peak_rss_mb_total']} MB with dlib loaded")
