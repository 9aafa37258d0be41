"""Why a service is not "ok", in words a technician reads on `/status` (i18n keys `reason.*`).

Each service's health() is one word ("ok", "degraded", "down"); its snapshot says what is wrong.
The status screen showed "vision Trục trặc" with nothing more (the demo turns the liveness motion
check off); these keys put the cause beside the word, in Vietnamese or English.
"""

from __future__ import annotations


def health_reasons(name: str, health: str, snapshot: dict) -> list[str]:
    """i18n keys of the causes of a health other than "ok" (one generic key when none is known)."""
    if health.split(" ")[0] == "ok":
        return []
    snap = snapshot if isinstance(snapshot, dict) else {}
    found = _BY_SERVICE.get(name, lambda s: [])(snap)
    return found or ["reason.see_log"]


def _vision(snap: dict) -> list[str]:
    reasons = []
    if snap.get("worker") == "failed":
        reasons.append("reason.vision_failed")
    elif snap.get("worker") == "starting":
        reasons.append("reason.vision_starting")
    if snap.get("camera") == "down":
        reasons.append("reason.camera_down")
    if snap.get("liveness_off"):
        reasons.append("reason.liveness_off")
    return reasons


def _qr(snap: dict) -> list[str]:
    return ["reason.camera_down"] if snap.get("camera_error") else []


def _pager(snap: dict) -> list[str]:
    return ["reason.pager_transmitter"]  # the pager is degraded only when its transmitter is offline


def _locker(snap: dict) -> list[str]:
    return ["reason.locker_alarms"] if snap.get("alarms") else ["reason.locker_port"]


_BY_SERVICE = {"vision": _vision, "qr": _qr, "pager": _pager, "locker": _locker}
