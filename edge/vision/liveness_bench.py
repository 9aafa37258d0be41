"""`edge bench liveness`: what presentation-attack detection adds to a frame, and how it scores.

1. Cost per 640x480 frame, same run: the face pipeline a verify already pays (MTCNN detect,
   align, dlib embedding) beside what liveness adds (the two MiniFASNet patches and models; the
   homography motion test over a verify's frames), and a verify's compute for `verify_frames`
   frames against the kiosk's face-step budget.
2. The synthetic attack set (`edge.vision.attackset`) from the sample faces: the passive model's
   live score on genuine camera frames beside prints and screens, and the motion verdicts of
   genuine-like head turns beside flat pictures moved like heads, replays and frozen frames.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "tests" / "data" / "faces"
PEOPLE = ["obama.jpg", "obama1.jpg", "obama2.jpg", "obama3.jpg", "biden2.jpg"]
FACE_STEP_BUDGET_MS = 2000.0  # edge.kiosk.bench: code submitted -> door open
VERIFY_FRAMES = 3


def add_arguments(parser) -> None:
    parser.add_argument("--repeat", type=int, default=3, help="passes over the frames for the timing (default %(default)s)")
    parser.add_argument("--seeds", type=int, default=3, help="attack variants per face and kind (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default %(default)s)")
    parser.add_argument("--threshold", type=float, default=None, help="live score bar (default: the config default)")
    parser.add_argument("--no-attacks", action="store_true", help="timing only")


def _say(text: str) -> None:
    print(f"bench liveness: {text}", file=sys.stderr, flush=True)


def _rgb(name: str):
    import cv2

    image = cv2.imread(str(SAMPLES / name))
    if image is None:
        raise FileNotFoundError(f"{SAMPLES / name} is missing")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _ms(samples: list[float]) -> dict:
    import numpy as np

    ms = np.array(samples) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p90_ms": round(float(np.percentile(ms, 90)), 2)}


def timing(frames: list, *, repeat: int, threads: int) -> dict:
    import numpy as np

    from edge.vision.align import align
    from edge.vision.antispoof import AntiSpoof
    from edge.vision.embed import Embedder
    from edge.vision.motion import measure

    embedder, antispoof = Embedder(threads=threads), AntiSpoof(threads=threads)
    embedder.embed(frames[0])  # warm-up
    antispoof.score(frames[0], (200, 100, 300, 230))
    pipeline, model, landmarks = [], [], []
    for _ in range(repeat):
        for frame in frames:
            t0 = time.perf_counter()
            found = embedder.detector.detect(frame)
            chips = [align(frame, points) for points in found.landmarks]
            if chips:
                embedder.embed_chips(np.stack(chips))
            t1 = time.perf_counter()
            if len(found):
                antispoof.score(frame, found.boxes[0])
                landmarks.append(found.landmarks[0])
            t2 = time.perf_counter()
            pipeline.append(t1 - t0)
            model.append(t2 - t1)
    motion = []
    for _ in range(repeat * 10):
        t0 = time.perf_counter()
        measure(landmarks[:20], "turn_left")
        motion.append(time.perf_counter() - t0)
    result = {"pipeline": _ms(pipeline), "antispoof": _ms(model), "motion_20_frames": _ms(motion)}
    added = result["antispoof"]["p50_ms"] + result["motion_20_frames"]["p50_ms"] / 20
    result["added_per_frame_ms"] = round(added, 2)
    result["added_percent"] = round(100 * added / result["pipeline"]["p50_ms"], 1)
    result["verify_compute_ms"] = round(VERIFY_FRAMES * (result["pipeline"]["p50_ms"] + added), 1)
    result["face_step_budget_ms"] = FACE_STEP_BUDGET_MS
    return result


def attack_scores(*, seeds: int, threads: int, threshold: float) -> dict:
    """Live scores per kind of still, and motion verdicts per kind of sequence."""
    import numpy as np

    from edge.vision import attackset
    from edge.vision.antispoof import AntiSpoof
    from edge.vision.embed import Embedder
    from edge.vision.motion import measure

    embedder, antispoof = Embedder(threads=threads, min_face_px=40), AntiSpoof(threads=threads)

    def main_face(frame):
        faces = embedder.detect(frame)
        return max(faces, key=lambda f: f.box[2] - f.box[0]) if faces else None

    def live(frame):
        face = main_face(frame)
        return None if face is None else antispoof.score(frame, face.box)

    stills: dict[str, list[float]] = {"genuine": [], "print": [], "screen": []}
    for name in PEOPLE:
        photo = _rgb(name)
        for seed in range(seeds):
            stills["genuine"].append(live(attackset.genuine(photo, seed)))
            stills["print"].append(live(attackset.still(photo, "print", seed)))
            stills["screen"].append(live(attackset.still(photo, "screen", seed)))
    model = {}
    for kind, scores in stills.items():
        found = [s for s in scores if s is not None]
        passed = sum(s >= threshold for s in found)
        model[kind] = {"n": len(found), "min": round(min(found), 3), "median": round(float(np.median(found)), 3),
                       "max": round(max(found), 3), "passed": passed, "refused": len(found) - passed}

    def statuses(frames, key):
        """The motion status, and whether the whole check (model median + motion) lets it through."""
        found = [(x, f) for x, f in ((x, main_face(x)) for x in frames) if f is not None]
        status = measure([f.landmarks for _, f in found], key).status
        score = float(np.median([antispoof.score(x, f.box) for x, f in found])) if found else 0.0
        return status, status == "pass" and score >= threshold

    motion: dict[str, dict[str, int]] = {}

    def count(kind, outcome):
        status, accepted = outcome
        motion.setdefault(kind, {"accepted": 0})
        motion[kind][status] = motion[kind].get(status, 0) + 1
        motion[kind]["accepted"] += int(accepted)

    for name in PEOPLE:
        photo = _rgb(name)
        frame = attackset.genuine(photo, 0)
        face = main_face(frame)
        for direction in ("turn_left", "turn_right"):
            other = "turn_right" if direction == "turn_left" else "turn_left"
            for seed in range(seeds):
                turning = attackset.turning(frame, face.landmarks, direction, frames=10, seed=seed)
                count("genuine head turn, as asked", statuses(turning, direction))
                count("replayed turn, other way asked", statuses(turning, other))
            for kind in ("photo", "print", "screen"):
                count(f"flat {kind} tilted as asked", statuses(
                    attackset.moved_flat(photo, kind, direction, frames=10, seed=1), direction))
        count("frozen print", statuses(attackset.frozen(attackset.still(photo, "print", 0)), "turn_left"))
    return {"threshold": threshold, "model": model, "motion": motion}


def main(args) -> int:
    from edge.vision.attackset import genuine
    from edge.vision.config import VisionConfig

    threshold = args.threshold if args.threshold is not None else VisionConfig().liveness_threshold
    frames = [genuine(_rgb(name), 0) for name in PEOPLE]
    _say(f"timing {len(frames)} frames of 640x480 x {args.repeat} passes, onnxruntime threads {args.threads}")
    result = {"timing": timing(frames, repeat=args.repeat, threads=args.threads)}
    if not args.no_attacks:
        _say(f"attack set: {len(PEOPLE)} faces x {args.seeds} variants per kind")
        result["attacks"] = attack_scores(seeds=args.seeds, threads=args.threads, threshold=threshold)
    print(json.dumps(result) if args.json else _table(result))
    return 0


def _table(r: dict) -> str:
    t = r["timing"]
    lines = [f"{'per 640x480 frame':<46}{'p50 ms':>9}{'p90 ms':>9}",
             f"{'face pipeline (detect, align, embed)':<46}{t['pipeline']['p50_ms']:>9}{t['pipeline']['p90_ms']:>9}",
             f"{'+ anti-spoofing (2 MiniFASNet patches)':<46}{t['antispoof']['p50_ms']:>9}{t['antispoof']['p90_ms']:>9}",
             f"{'  motion test over 20 frames (once a verify)':<46}{t['motion_20_frames']['p50_ms']:>9}"
             f"{t['motion_20_frames']['p90_ms']:>9}",
             f"added per frame: {t['added_per_frame_ms']} ms ({t['added_percent']} % of the pipeline); "
             f"verify compute for {VERIFY_FRAMES} frames: {t['verify_compute_ms']} ms "
             f"(face step budget {t['face_step_budget_ms']:.0f} ms)"]
    if "attacks" in r:
        a = r["attacks"]
        lines.append(f"\npassive model live score (threshold {a['threshold']}):")
        lines.append(f"  {'kind':<10}{'n':>4}{'min':>8}{'median':>8}{'max':>8}{'passed':>8}{'refused':>9}")
        for kind, m in a["model"].items():
            lines.append(f"  {kind:<10}{m['n']:>4}{m['min']:>8}{m['median']:>8}{m['max']:>8}{m['passed']:>8}{m['refused']:>9}")
        lines.append("motion verdicts (pass: the motion check lets it through; accepted: model and motion both do):")
        for kind, counts in a["motion"].items():
            lines.append(f"  {kind:<34} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return "\n".join(lines)
