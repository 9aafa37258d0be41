"""VisionService: consented enrolment, 1:1 verification, restricted 1:N, deletion, live guidance.

The kiosk calls (names are a contract with edge.kiosk):
  await vision.enrolled(dossier) -> bool
  await vision.enrol(dossier, frames_rgb, consent={"actor", "purpose"}) -> dict
  await vision.verify(dossier, frames_rgb=None, timeout_s=2.0) -> {"decision": "accept"|"reject"|"retry"|"locked",
                                                                     "score", "reason", "guidance" (a reason key
                                                                     for the screen), "guidance_text",
                                                                     "challenge": {"key", "vi", "en"} | None,
                                                                     "liveness": {"model", "motion", "verdict"}, ...}
  await vision.identify(frames_rgb=None, timeout_s=2.0) -> {"decision", "dossier", ...} (only dossiers marked
                                                              waiting with `result_waiting`)
  await vision.delete(dossier, reason) -> bool
  vision.guidance() -> {"reason", "text", "text_en", "challenge"} for the live screen: while a verify
                       runs, "challenge" is the prompt to show ("turn your head to your left"), else None
Camera and models run in a worker process (edge.vision.worker). Templates are AES-GCM encrypted
in the store; every match, enrolment and deletion is audited; no image or embedding is published.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edge.errors import CommandError, DeviceNotReady, EdgeError
from edge.service import Service
from edge.vision import matching
from edge.vision.config import VisionConfig
from edge.vision import motion
from edge.vision.liveness import judge
from edge.vision.guidance import GUIDANCE
from edge.vision.guidance import guidance as guidance_text
from edge.vision.templates import TemplateStore, load_or_create_key

DOSSIER_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}"
CHECK_EVERY_S = 1.0
PURGE_EVERY_S = 3600.0
WORKER_MARGIN_S = 5.0  # extra time over the capture timeout for the worker to answer
DEMO_DOSSIER = "000.00.01.H29-261207-9001"  # the locker demo's first result (edge.locker.service.demo_receipt)
EMBEDDING_DIM = 128
CANDIDATE_DOSSIERS = 5  # nearest waiting dossiers per frame scored exactly (need best and second)


class VisionInputError(EdgeError, ValueError):
    """Error raised when a caller passes a bad dossier code, frames or consent record."""


def check_dossier(dossier: Any) -> str:
    if not isinstance(dossier, str) or not re.fullmatch(DOSSIER_PATTERN, dossier):
        raise VisionInputError(f"dossier code must match {DOSSIER_PATTERN}, found {dossier!r}")
    if re.fullmatch(r"\d{9,12}", dossier):
        # Templates are linked to the dossier, never to an ID-card (9/12 digits) or phone number.
        raise VisionInputError("dossier code looks like an ID-card or phone number: use the dossier (receipt) code")
    return dossier


def check_frames(frames: Any) -> list[np.ndarray]:
    if not isinstance(frames, (list, tuple)) or not frames:
        raise VisionInputError("frames_rgb must be a non-empty list of RGB uint8 H x W x 3 arrays")
    for i, frame in enumerate(frames):
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise VisionInputError(f"frames_rgb[{i}]: expected an RGB uint8 H x W x 3 array, found "
                             f"{getattr(frame, 'dtype', type(frame).__name__)} {getattr(frame, 'shape', '')}")
    return list(frames)


class VisionService(Service):
    name: ClassVar[str] = "vision"
    commands: ClassVar[dict[str, dict[str, Any]]] = {"delete": {"dossier": str, "reason": (str, "request")}}

    def __init__(self, ctx):
        super().__init__(ctx)
        self.config: VisionConfig = ctx.config or VisionConfig()
        self.templates: TemplateStore | None = None
        self.index = None  # edge.vision.gallery.Gallery of the waiting dossiers' templates (1:N)
        self.worker = None
        self._last_purge = 0.0
        self._last_snapshot: dict = {}
        self._challenge: dict | None = None  # the prompt of the verify in progress (for guidance())

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        from edge.vision.worker import WorkerProxy

        self._open_templates()
        self._index_waiting()
        settings = dataclasses.asdict(self.config)
        settings["camera"] = _resolve_camera(self.config.camera)
        self.worker = WorkerProxy(settings, heartbeat_timeout_s=self.config.heartbeat_timeout_s,
                                  startup_timeout_s=self.config.startup_timeout_s)
        self.worker.start()
        self.publish_state()

    def _open_templates(self) -> TemplateStore:
        if self.templates is None:
            key_path = self.config.key_file or str(Path(self.ctx.data_dir) / "keys" / "vision.key")
            self.templates = TemplateStore(self.ctx.store, load_or_create_key(key_path))
        return self.templates

    async def run(self) -> None:
        while True:
            await self.ctx.sleep(CHECK_EVERY_S)  # the context's sleep: asyncio.sleep, or a test's clock
            why = self.worker.check()
            if why:
                with self.ctx.store.transaction() as tx:
                    tx.emit(self.name, "worker_restarted", reason=why)
            if self.ctx.clock() - self._last_purge >= PURGE_EVERY_S:
                self._last_purge = self.ctx.clock()
                await self.purge_expired()
            snapshot = self.snapshot()
            if snapshot != self._last_snapshot:
                self._last_snapshot = snapshot
                self.publish_state()

    async def stop(self) -> None:
        if self.worker is not None:
            await asyncio.to_thread(self.worker.stop)

    def health(self) -> str:
        if self.worker is None or not self.worker.ready():
            return "down"
        camera = self.worker.last_beat.get("camera")
        # liveness turned off is a fault the office must see: the dashboard shows the kiosk degraded
        return "degraded" if camera == "down" or self.config.liveness_off() else "ok"

    def _liveness_model_state(self) -> str:
        setting = self.config.liveness_model
        return "off" if setting in (None, "off") else "builtin" if setting == "builtin" else "custom"

    def snapshot(self) -> dict:
        enrolled, waiting = self.templates.count() if self.templates else (0, 0)
        beat = self.worker.last_beat if self.worker else {}
        if self.worker and self.worker.fatal:
            state = "failed"
        else:
            state = "ready" if self.worker and self.worker.ready() else "starting"
        return {"worker": state, "error": self.worker.fatal if self.worker else "",
                "camera": beat.get("camera", "unknown"), "enrolled": enrolled, "waiting": waiting,
                "liveness_model": self._liveness_model_state(), "liveness_motion": self.config.liveness_motion,
                "liveness_off": self.config.liveness_off(),
                "worker_restarts": self.worker.restarts if self.worker else 0}

    # -- the kiosk's API ------------------------------------------------------------------------
    def guidance(self) -> dict:
        reason = (self.worker.last_beat.get("guidance") if self.worker else None) or "no_face"
        challenge = self._challenge
        if reason == "challenge" and challenge is None:  # a beat from a verify that has just ended
            reason = "ok"
        if reason == "challenge":
            text, text_en = challenge[self.ctx.language if self.ctx.language in ("vi", "en") else "vi"], challenge["en"]
        else:
            text, text_en = guidance_text(reason, self.ctx.language), guidance_text(reason, "en")
        return {"reason": reason, "text": text, "text_en": text_en, "challenge": challenge}

    def preview(self) -> bytes | None:
        """A small JPEG of the camera for the kiosk's face step (None until the worker sends one)."""
        return self.worker.preview() if self.worker is not None else None

    async def enrolled(self, dossier: str) -> bool:
        return self.templates.exists(check_dossier(dossier))

    async def enrol(self, dossier: str, frames_rgb: list, consent: dict) -> dict:
        """Store templates for `dossier` from frames of the citizen, with their recorded consent."""
        dossier = check_dossier(dossier)
        frames = check_frames(frames_rgb)
        actor, purpose = self._check_consent(consent)
        results = await self._analyse(frames)
        good = sorted(matching.usable(results), key=lambda f: -f.get("quality", 0.0))
        rejected = _reason_counts(results)
        if len(good) < self.config.enrol_min_frames:
            reason = matching.main_problem(results)
            return _add_guidance({"ok": False, "reason": reason, "usable": len(good),
                                  "needed": self.config.enrol_min_frames, "rejected": rejected}, self.ctx.language)
        vectors = np.stack([f["embedding"] for f in good[:self.config.enrol_max_templates]])
        # All frames must show one person: a frame far from the others means someone else stepped in.
        centre = vectors.mean(axis=0)
        if np.linalg.norm(vectors - centre, axis=1).max() >= self.config.threshold / 2:
            return _add_guidance({"ok": False, "reason": "inconsistent", "usable": len(good), "rejected": rejected},
                                 self.ctx.language)
        now = self.ctx.clock()
        with self.ctx.store.transaction() as tx:
            self.templates.put(tx, dossier, vectors, actor=actor, purpose=purpose, now=now)  # waiting = 0
            tx.audit(actor, "vision.consent", dossier=dossier, purpose=purpose)
            tx.audit(actor, "vision.enrol", dossier=dossier, templates=len(vectors))
            tx.emit(self.name, "enrolled", dossier=dossier, templates=len(vectors))
            self.publish_state(tx)
        self._unindex(dossier)  # a re-enrolment is not waiting until marked again
        self.log.info("vision: enrolled %s with %d templates (consent by %s for %s)", dossier, len(vectors), actor, purpose)
        return {"ok": True, "templates": len(vectors), "usable": len(good), "rejected": rejected,
                "quality": round(float(np.mean([f.get("quality", 0.0) for f in good])), 3)}

    async def verify(self, dossier: str, frames_rgb: list | None = None, timeout_s: float = 2.0, *,
                     actor: str = "kiosk", challenge: str | None = None) -> dict:
        """1:1: does the person in front of the camera (or in `frames_rgb`) match `dossier`?

        With the motion check on, a random challenge is picked (shown via `guidance()` while the
        camera frames are taken, returned as `challenge`) and the capture lasts up to
        `liveness_challenge_s` when `timeout_s` is shorter. `challenge` names the prompt that was
        shown when `frames_rgb` were recorded (a recording cannot know it: default random)."""
        dossier = check_dossier(dossier)
        frames = check_frames(frames_rgb) if frames_rgb is not None else None
        now = self.ctx.clock()
        locked = self._locked_until(dossier)
        if locked and locked > now:
            return self._finish_verify(dossier, actor, {"decision": "locked", "score": None, "reason": "locked",
                                                        "retry_after_s": round(locked - now)}, count=False)
        templates = self.templates.get(dossier)
        if templates is None:
            return self._finish_verify(dossier, actor, {"decision": "reject", "score": None,
                                                        "reason": "not_enrolled"}, count=False)
        needed = min(self.config.verify_frames, len(frames)) if frames else self.config.verify_frames
        prompt = self._pick_challenge(challenge)
        try:
            results = await self._analyse(frames, needed=needed, timeout_s=timeout_s, challenge=prompt)
        except DeviceNotReady as err:
            return _add_guidance({"decision": "retry", "score": None, "reason": "camera_unavailable",
                                  "error": str(err), "challenge": prompt}, self.ctx.language)
        matched = motion.frontal_only(results) if prompt else results
        result = matching.verify_decision(matched, templates, threshold=self.config.threshold, needed=needed)
        result["threshold"] = self.config.threshold
        self._apply_liveness(result, results, prompt)
        return self._finish_verify(dossier, actor, result, count=result["decision"] == "reject")

    async def identify(self, frames_rgb: list | None = None, timeout_s: float = 2.0, *, actor: str = "kiosk") -> dict:
        """Restricted 1:N among dossiers with a result waiting (see `result_waiting`)."""
        frames = check_frames(frames_rgb) if frames_rgb is not None else None
        needed = min(self.config.identify_frames, len(frames)) if frames else self.config.identify_frames
        prompt = self._pick_challenge(None)
        try:
            results = await self._analyse(frames, needed=needed, timeout_s=timeout_s, challenge=prompt)
        except DeviceNotReady as err:
            return _add_guidance({"decision": "retry", "dossier": None, "score": None,
                                  "reason": "camera_unavailable", "error": str(err)}, self.ctx.language)
        results_all, results = results, motion.frontal_only(results) if prompt else results
        gallery = self._candidates(results)
        result = matching.identify_decision(results, gallery, threshold=self.config.threshold,
                                            margin=self.config.identify_margin, needed=needed)
        self._apply_liveness(result, results_all, prompt)
        if result["decision"] != "accept":
            result["dossier"] = None
        _add_guidance(result, self.ctx.language)
        with self.ctx.store.transaction() as tx:
            tx.audit(actor, "vision.identify", decision=result["decision"], dossier=result["dossier"],
                     candidates=len(gallery), score=result["score"], reason=result["reason"])
            tx.emit(self.name, "identified", decision=result["decision"], dossier=result["dossier"],
                    reason=result["reason"])
        return result

    def _candidates(self, results: list[dict]) -> dict[str, np.ndarray]:
        """The waiting dossiers nearest to the usable frames, by the gallery's cosine search; only
        these are decrypted and scored in Euclidean distance (dlib's metric) by the decision."""
        if self.index is None or len(self.index) == 0:
            return {}
        names: set[str] = set()
        per_frame = self.config.enrol_max_templates * CANDIDATE_DOSSIERS
        for frame in matching.usable(results):
            ids, _ = self.index.search(np.asarray(frame["embedding"], np.float32)[None], k=per_frame)
            names.update(i for i in ids[0] if i is not None)
        candidates = {name: self.templates.get(name) for name in sorted(names)}
        return {name: t for name, t in candidates.items() if t is not None}

    def _unindex(self, dossier: str) -> None:
        if self.index is not None:
            self.index.remove(dossier)

    def _index_waiting(self) -> None:
        """Rebuild the 1:N gallery from the store (the store is the truth; this is an index)."""
        from edge.vision.gallery import Gallery

        self.index = Gallery(EMBEDDING_DIM, mode="exact")
        for dossier, vectors in self.templates.waiting().items():
            self.index.add([dossier] * len(vectors), vectors)

    async def result_waiting(self, dossier: str, waiting: bool = True) -> bool:
        """Mark that a result for `dossier` is ready for pickup (only those take part in 1:N)."""
        dossier = check_dossier(dossier)
        with self.ctx.store.transaction() as tx:
            changed = tx.execute("UPDATE vision_enrolments SET waiting = ? WHERE dossier = ?",
                                 (int(waiting), dossier)).rowcount > 0
            if changed:
                tx.audit("system", "vision.waiting", dossier=dossier, waiting=waiting)
                self.publish_state(tx)
        if changed:
            self._unindex(dossier)
            if waiting and self.index is not None:
                vectors = self.templates.get(dossier)
                self.index.add([dossier] * len(vectors), vectors)
        return changed

    async def delete(self, dossier: str, reason: str) -> bool:
        """Delete the dossier's templates (pickup, retention, request); audited either way."""
        dossier = check_dossier(dossier)
        templates = self._open_templates()  # works before start(): `edge vision delete`
        with self.ctx.store.transaction() as tx:
            deleted = templates.delete(tx, dossier)
            tx.audit("vision", "vision.delete", dossier=dossier, reason=reason, found=deleted)
            if deleted:
                tx.emit(self.name, "deleted", dossier=dossier, reason=reason)
                self.publish_state(tx)
        if deleted:
            self._unindex(dossier)
            self.log.info("vision: deleted templates of %s (%s)", dossier, reason)
        return deleted

    async def purge_expired(self) -> int:
        cutoff = self.ctx.clock() - self.config.retention_days * 86400
        expired = self.templates.expired(cutoff)
        for dossier in expired:
            await self.delete(dossier, "retention")
        return len(expired)

    async def handle_command(self, type: str, args: dict, cmd_id: str | None = None) -> dict:
        if type == "delete":
            try:
                deleted = await self.delete(args["dossier"], args["reason"])
            except ValueError as err:
                raise CommandError(str(err)) from err
            return {"deleted": deleted}
        raise CommandError(f"unknown vision command {type!r}")

    # -- internals ----------------------------------------------------------------------------
    def _check_consent(self, consent: Any) -> tuple[str, str]:
        if not isinstance(consent, dict):
            raise VisionInputError("consent must be a dict with 'actor' and 'purpose'")
        actor, purpose = consent.get("actor"), consent.get("purpose")
        if not isinstance(actor, str) or not actor.strip():
            raise VisionInputError("consent['actor'] must name who recorded the consent")
        if purpose not in self.config.purposes:
            raise VisionInputError(f"consent['purpose'] must be one of {self.config.purposes}, found {purpose!r}")
        return actor.strip(), purpose

    async def _analyse(self, frames: list[np.ndarray] | None, *, needed: int = 3, timeout_s: float = 2.0,
                       challenge: dict | None = None) -> list[dict]:
        """Per-frame results from the worker: given frames, or `needed` good frames from the camera
        (and, with a challenge, until it is done or the challenge time is up)."""
        if self.worker is None:
            raise DeviceNotReady("vision service not started")
        await self._wait_ready()
        if frames is None:
            if challenge is not None:
                timeout_s = max(timeout_s, self.config.liveness_challenge_s)
            self._challenge = challenge
            try:
                reply = await self.worker.call("capture", wait_s=timeout_s + WORKER_MARGIN_S, n=needed,
                                               timeout_s=timeout_s, challenge=challenge and challenge["key"])
            finally:
                self._challenge = None
        else:
            reply = await self.worker.call("frames", wait_s=WORKER_MARGIN_S + 2.0 * len(frames), frames=frames)
        if "error" in reply and "frames" not in reply:
            raise DeviceNotReady(f"vision worker: {reply['error']}")
        if not reply["frames"] and reply.get("camera") in ("down", "none"):
            raise DeviceNotReady(f"camera unavailable: {reply.get('error') or 'no camera configured'}")
        return reply["frames"]

    async def _wait_ready(self) -> None:
        """While the worker loads its models, requests wait (up to startup_timeout_s)."""
        deadline = self.ctx.clock() + self.config.startup_timeout_s
        while not self.worker.ready():
            if self.worker.fatal:
                raise DeviceNotReady(f"vision worker cannot start: {self.worker.fatal}")
            if self.ctx.clock() > deadline:
                raise DeviceNotReady("vision worker is not ready (models still loading or failing)")
            await asyncio.sleep(0.05)

    def _pick_challenge(self, key: str | None) -> dict | None:
        """The prompt for this verify: none with the motion check off; `key` when the caller says
        which prompt its recorded frames answer; else a random one of `liveness_challenges`."""
        if self.config.liveness_motion == "off":
            return None
        if key is not None:
            if key not in motion.CHALLENGES:
                raise VisionInputError(f"challenge must be one of {sorted(motion.CHALLENGES)}, found {key!r}")
            return motion.challenge(key)
        return motion.pick_challenge(self.config.liveness_challenges)

    def _apply_liveness(self, result: dict, results: list[dict], prompt: dict | None) -> None:
        """Add `liveness` and `challenge`; a match that fails liveness is refused ('spoof', or
        'challenge' for a turn the wrong way) or, when the turn was not made, retried."""
        live = judge(results, prompt and prompt["key"], model_on=self.config.liveness_model not in (None, "off"),
                     threshold=self.config.liveness_threshold, motion_mode=self.config.liveness_motion)
        result["liveness"], result["challenge"] = live, prompt
        if result["decision"] != "accept" or live["verdict"] == "pass":
            return
        if live["verdict"] == "retry":
            result.update(decision="retry", reason="challenge")
        else:
            result.update(decision="reject", reason=live["reason"])

    def _locked_until(self, dossier: str) -> float | None:
        rows = self.ctx.store.query("SELECT locked_until FROM vision_attempts WHERE dossier = ?", (dossier,))
        return rows[0][0] if rows and rows[0][0] is not None else None

    def _finish_verify(self, dossier: str, actor: str, result: dict, *, count: bool) -> dict:
        now = self.ctx.clock()
        reason = result["reason"]
        _add_guidance(result, self.ctx.language)
        with self.ctx.store.transaction() as tx:
            if result["decision"] == "accept":
                tx.execute("DELETE FROM vision_attempts WHERE dossier = ?", (dossier,))
            elif count:
                row = tx.execute("SELECT failures FROM vision_attempts WHERE dossier = ?", (dossier,)).fetchone()
                failures = (row[0] if row else 0) + 1
                locked_until = None
                if failures >= self.config.max_attempts:
                    locked_until, failures = now + self.config.lockout_s, 0
                    result["locked_until"] = locked_until
                    tx.audit(actor, "vision.lockout", dossier=dossier, seconds=self.config.lockout_s)
                    tx.emit(self.name, "locked", dossier=dossier, seconds=self.config.lockout_s)
                tx.execute("INSERT OR REPLACE INTO vision_attempts(dossier, failures, locked_until) VALUES (?, ?, ?)",
                           (dossier, failures, locked_until))
                result["attempts_left"] = self.config.max_attempts - failures if locked_until is None else 0
            tx.audit(actor, "vision.verify", dossier=dossier, decision=result["decision"], reason=reason,
                     score=result.get("score"), liveness=(result.get("liveness") or {}).get("verdict"))
            tx.emit(self.name, "verified", dossier=dossier, decision=result["decision"], reason=reason)
        self.log.info("vision: verify %s -> %s (%s, distance %s)", dossier, result["decision"], reason, result.get("score"))
        return result

    # -- demo -----------------------------------------------------------------------------------
    async def demo(self) -> None:
        """Enrol the replay camera's sample face, then verify it (and an impostor photo) in a loop."""
        import cv2

        while not self.worker.ready():
            await self.ctx.sleep(0.5)
        camera = self.config.camera
        impostor_path = _repo_root() / "tests" / "data" / "faces" / "biden.jpg"
        impostor = None
        if impostor_path.is_file():
            impostor = cv2.cvtColor(cv2.imread(str(impostor_path)), cv2.COLOR_BGR2RGB)
        first = True
        while True:
            if camera.startswith("replay:") and not await self.enrolled(DEMO_DOSSIER):
                if not first:  # the locker demo collected the result: its template was deleted
                    self.log.info("vision: %s was collected and its face template deleted; the demo enrols "
                                  "it again", DEMO_DOSSIER)
                image = cv2.cvtColor(cv2.imread(_resolve_camera(camera).partition(":")[2]), cv2.COLOR_BGR2RGB)
                result = await self.enrol(DEMO_DOSSIER, [image] * 3,
                                          {"actor": "demo-clerk", "purpose": "result_collection"})
                self.log.info("vision: demo enrolment of %s: %s", DEMO_DOSSIER, result)
                await self.result_waiting(DEMO_DOSSIER)
            first = False
            result = await self.verify(DEMO_DOSSIER, timeout_s=3.0, actor="demo")
            self.log.info("vision: camera vs %s -> %s (distance %s, liveness %s)", DEMO_DOSSIER, result["decision"],
                          result.get("score"), result.get("liveness"))
            if impostor is not None:
                result = await self.verify(DEMO_DOSSIER, [impostor] * 3, actor="demo")
                self.log.info("vision: impostor photo vs %s -> %s (distance %s)", DEMO_DOSSIER,
                              result["decision"], result.get("score"))
                with self.ctx.store.transaction() as tx:  # the demo must not lock itself out
                    tx.execute("DELETE FROM vision_attempts WHERE dossier = ?", (DEMO_DOSSIER,))
            await self.ctx.sleep(10.0)


def _add_guidance(result: dict, language: str) -> dict:
    """`guidance`: a quality reason key the screen translates ('too_small', 'blurred', ..., 'ok');
    `guidance_text`: the same in the device language."""
    reason = result.get("reason")
    if reason == "challenge" and result.get("challenge"):
        # the prompt itself is the guidance: "please turn your head to your left"
        result["guidance"] = "challenge"
        result["guidance_text"] = result["challenge"]["vi" if language == "vi" else "en"]
        return result
    if reason in GUIDANCE:
        key = reason
    elif reason == "inconsistent":
        key = "multiple_faces"
    elif reason == "camera_unavailable":
        key = "no_face"
    else:
        key = "ok"
    result["guidance"] = key
    result["guidance_text"] = guidance_text(key, language)
    return result


def _reason_counts(results: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in results:
        if f.get("reason") != "ok":
            counts[f.get("reason", "unknown")] = counts.get(f.get("reason", "unknown"), 0) + 1
    return counts


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _resolve_camera(spec: str) -> str:
    """A relative replay path is taken from the working directory, else from the repo checkout."""
    if not spec.startswith("replay:"):
        return spec
    path = Path(spec.partition(":")[2])
    if not path.is_absolute() and not path.exists() and (_repo_root() / path).exists():
        path = _repo_root() / path
    return f"replay:{path}"
