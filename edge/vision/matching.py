"""Match decisions from per-frame results (pure: numbers in, decision dicts out).

1:1 verify: every usable frame must lie within `threshold` (Euclidean, dlib units) of one of the
claimed dossier's templates, and at least `needed` frames must be usable. 1:N identify (only
over dossiers with a result waiting): each usable frame votes for its nearest dossier only when
it is within the threshold and beats the second-best dossier by `margin`; a dossier is accepted
only with `needed` votes and no vote for anyone else.
"""

from __future__ import annotations

from collections import Counter

import numpy as np


def distance(embedding: np.ndarray, templates: np.ndarray) -> float:
    """Distance to the nearest template of one dossier."""
    return float(np.linalg.norm(np.asarray(templates) - np.asarray(embedding)[None], axis=1).min())


def usable(frames: list[dict]) -> list[dict]:
    return [f for f in frames if f.get("reason") == "ok" and f.get("embedding") is not None]


def main_problem(frames: list[dict]) -> str:
    """The most frequent reason a frame was unusable ('no_face' when there were no frames)."""
    reasons = Counter(f.get("reason", "no_face") for f in frames if f.get("reason") != "ok")
    return reasons.most_common(1)[0][0] if reasons else "no_face"


def verify_decision(frames: list[dict], templates: np.ndarray, *, threshold: float, needed: int) -> dict:
    good = usable(frames)
    if len(good) < needed:
        return {"decision": "retry", "score": None, "reason": main_problem(frames), "frames": len(frames),
                "usable": len(good)}
    dists = [distance(f["embedding"], templates) for f in good]
    score = float(np.median(dists))
    accepted = all(d < threshold for d in dists)
    return {"decision": "accept" if accepted else "reject", "score": round(score, 4),
            "reason": "match" if accepted else "no_match", "frames": len(frames), "usable": len(good),
            "max_distance": round(max(dists), 4)}


def identify_decision(frames: list[dict], gallery: dict[str, np.ndarray], *, threshold: float, margin: float,
                      needed: int) -> dict:
    good = usable(frames)
    if not gallery:
        return {"decision": "reject", "dossier": None, "reason": "no_candidates", "score": None}
    if len(good) < needed:
        return {"decision": "retry", "dossier": None, "reason": main_problem(frames), "score": None}
    votes: Counter = Counter()
    best_dists: dict[str, list[float]] = {}
    for frame in good:
        ranked = sorted((distance(frame["embedding"], t), d) for d, t in gallery.items())
        best, dossier = ranked[0]
        second = ranked[1][0] if len(ranked) > 1 else float("inf")
        if best < threshold and second - best >= margin:
            votes[dossier] += 1
            best_dists.setdefault(dossier, []).append(best)
        else:
            votes[None] += 1
    winner, count = max(((d, c) for d, c in votes.items() if d is not None), key=lambda x: x[1], default=(None, 0))
    if winner is not None and count >= needed and count == sum(votes.values()):
        return {"decision": "accept", "dossier": winner, "reason": "match",
                "score": round(float(np.median(best_dists[winner])), 4), "votes": count}
    return {"decision": "reject", "dossier": None, "reason": "ambiguous" if winner else "no_match",
            "score": None, "votes": count}
