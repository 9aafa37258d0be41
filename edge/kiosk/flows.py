"""The night pickup journey as a state machine: one session at a time, every step audited.

start → code (QR or typed) → face (1:1 against the claimed dossier) → open → thanks,
with code + PIN as the fallback after the face attempt limit or without face consent.
A door opens only through the locker's `pickup`, and only after the claim is verified here.
Only a citizen's own action starts a session or uses up an attempt: a code read by the camera
just pre-fills the code field of a session someone started (and only once per session).
The flow talks to its peers through the agreed async methods (locker: lookup, verify_pin,
pickup, wait_door; vision: enrolled, verify); tests pass Fake* doubles with the same methods.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from edge.errors import EdgeError
from edge.kiosk.config import KioskConfig
from edge.kiosk.receipts import dossier_code
from edge.locker.flows import LockerRefused  # the locker's refusals carry a reason
from edge.peers import LockerPeer, VisionPeer
from edge.store import Store

log = logging.getLogger(__name__)

ACTOR = "kiosk"
MIGRATIONS = [
    """
    CREATE TABLE kiosk_lockouts (
        receipt TEXT PRIMARY KEY,   -- the dossier code whose PIN was guessed too often
        until   REAL NOT NULL,
        reason  TEXT NOT NULL
    );
    """,
]
GUIDANCE_POLL_S = 0.4  # how often the live camera hint is refreshed during a face check
DOOR_REMINDERS = 3  # door-close waits before the session ends with "left open" (the locker alarms)


class SessionError(EdgeError, ValueError):
    """Error raised when a screen acts on a session that is not the current one (stale page, second citizen)."""


@dataclass
class Session:
    id: str
    started: float
    touched: float
    step: str = "code"  # code | face | pin | open
    receipt: str | None = None
    compartment: Any = None
    method: str | None = None
    code_failures: int = 0
    face_rejects: int = 0
    face_retries: int = 0
    pin_failures: int = 0
    notice: str | None = None  # i18n key shown on the current step (wrong PIN, face fallback…)
    notice_params: dict = field(default_factory=dict)
    guidance: str | None = None
    door_reminder: bool = False
    pin_set: bool = False  # the locker holds a PIN for this receipt: the fallback exists
    step_started: float = 0.0  # when the current step began (the face step has its own time budget)
    prefill: str | None = None  # a code the camera read, offered in the code field (never submitted by itself)
    scanned: set = field(default_factory=set)  # codes the camera read during this session: each is used once
    challenge: dict | None = None  # the vision service's current liveness prompt {"key", "vi", "en"}


_CONFIG_DEFAULTS = KioskConfig()  # the one place the limits' defaults are written: the [kiosk] keys


@dataclass
class Limits:
    """The session's limits: the `[kiosk]` keys of the same names, with their defaults (edge.kiosk.config).
    Mutable, unlike the config, so a test can shorten a wait on a running flow."""

    session_timeout_s: float = _CONFIG_DEFAULTS.session_timeout_s
    code_attempts: int = _CONFIG_DEFAULTS.code_attempts
    face_attempts: int = _CONFIG_DEFAULTS.face_attempts
    face_retries: int = _CONFIG_DEFAULTS.face_retries
    face_timeout_s: float = _CONFIG_DEFAULTS.face_timeout_s
    face_pause_s: float = _CONFIG_DEFAULTS.face_pause_s
    face_step_s: float = _CONFIG_DEFAULTS.face_step_s
    pin_attempts: int = _CONFIG_DEFAULTS.pin_attempts
    lockout_s: float = _CONFIG_DEFAULTS.lockout_s
    door_timeout_s: float = _CONFIG_DEFAULTS.door_timeout_s
    thanks_s: float = _CONFIG_DEFAULTS.thanks_s

    @classmethod
    def from_config(cls, cfg: KioskConfig) -> "Limits":
        return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})


class PickupFlow:
    """The pickup state machine. All methods run on the event loop; an asyncio.Lock serialises steps."""

    def __init__(self, *, store: Store, locker: Callable[[], LockerPeer | None],
                 vision: Callable[[], VisionPeer | None],
                 limits: Limits | None = None, clock: Callable[[], float] = time.time,
                 language: str = "vi", parse_code: Callable[[str], str | None] | None = None):
        self.store = store
        self._locker = locker  # callables: peers may start after us or be restarted
        self._vision = vision
        self.limits = limits or Limits()
        self.clock = clock
        self.default_language = language
        self.language = language
        self.parse_code = parse_code or receipt_from_text
        self.banner_language = language  # the language of the session that the banner ends
        self.session: Session | None = None
        self.banner: tuple[str, dict, float] | None = None  # (message key, params, until) after a session ends
        self.version = 0
        self.epoch = uuid.uuid4().hex[:8]  # a restarted service counts versions from 0 again: pages compare epochs
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        store.migrate("kiosk", MIGRATIONS)

    # -- what the screen shows ------------------------------------------------------------------
    def view(self) -> dict:
        """The current screen as plain data (no PIN, no face, the receipt code masked)."""
        s = self.session
        now = self.clock()
        base = {"version": self.version, "epoch": self.epoch, "lang": self.language}
        if s is None:
            if self.banner and self.banner[2] > now:
                key, params, until = self.banner
                step = "thanks" if key == "kiosk.thanks_title" else "message"
                # The message of a session ends in that session's language (a timeout in English stays English).
                return {**base, "lang": self.banner_language, "step": step, "message": key, "params": params,
                        "session": None, "seconds_left": round(until - now, 1)}
            return {**base, "step": "start", "session": None}
        left = {"code": self.limits.code_attempts - s.code_failures,
                "face": self.limits.face_attempts - s.face_rejects,
                "pin": self.limits.pin_attempts - s.pin_failures}
        seconds_left, budget = self._time_left(s, now)
        return {**base, "step": s.step, "session": s.id, "receipt": mask(s.receipt),
                "compartment": s.compartment, "notice": s.notice, "params": {**s.notice_params, "n": left.get(s.step)},
                "guidance": s.guidance, "door_reminder": s.door_reminder, "attempts_left": left.get(s.step),
                "refusals": s.code_failures + s.face_rejects + s.pin_failures,
                "prefill": s.prefill if s.step == "code" else None,
                "challenge": s.challenge if s.step == "face" else None,
                "seconds_left": seconds_left, "step_seconds": budget}

    def _time_left(self, s: Session, now: float) -> tuple[float | None, float | None]:
        """(seconds before this step times out, the step's whole budget) for the on-screen countdown."""
        if s.step == "open":
            return None, None  # the door decides; the citizen is never hurried away from an open door
        if s.step == "face":
            left = self.limits.face_step_s - (now - s.step_started)
            return round(max(0.0, left), 1), self.limits.face_step_s
        left = self.limits.session_timeout_s - (now - s.touched)
        return round(max(0.0, left), 1), self.limits.session_timeout_s

    async def changed(self, after: int, timeout_s: float) -> dict:
        """Wait until the view's version passes `after` (or the timeout); for server-sent events."""
        if self.version <= after:
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), timeout_s)
            except asyncio.TimeoutError:
                pass
        return self.view()

    def wake(self) -> None:
        """Wake every waiter of `changed` (the service is stopping)."""
        self._notify()

    def _notify(self) -> None:
        self.version += 1
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def set_language(self, lang: str) -> dict:
        if lang in ("vi", "en"):
            self.language = lang
            if self.session is None:
                self.banner_language = lang  # the message on screen is read again in that language
            else:
                self._touch(self.session)
            self._notify()
        return self.view()

    # -- steps ------------------------------------------------------------------------------------
    async def start(self, source: str = "screen") -> dict:
        """Begin a session (screen button or the physical button); pressing again keeps the same one."""
        async with self._lock:
            if self.session is not None and self._idle_too_long(self.session):
                self._end("timeout", "msg.timeout")  # before the tick did: never hand it to the next citizen
            if self.session is not None:
                self._touch(self.session)
                return self.view()
            now = self.clock()
            self.session = Session(id=uuid.uuid4().hex[:12], started=now, touched=now, step_started=now)
            if self.banner is not None and self.banner[2] > now:
                self.language = self.banner_language  # pressed during the last message: most likely the same citizen
            self.banner = None
            log.info("kiosk: session %s started (%s)", self.session.id, source)
            self._audit("session.start", source=source)
            self._notify()
            return self.view()

    async def submit_code(self, session_id: str, text: str) -> dict:
        """A scanned QR payload or a typed dossier code."""
        async with self._lock:
            s = self._current(session_id, "code")
            s.prefill = None
            code = self.parse_code(text or "")
            if code is None:
                self._audit("code.rejected", reason="not a dossier code")
                return self._code_failure(s, "kiosk.code_bad")
            locker = self._locker()
            if locker is None:
                return self._end("out_of_service", "msg.out_of_service")
            try:
                found = await locker.lookup(code)
            except EdgeError as err:
                if isinstance(err, LockerRefused) and err.reason == "bad_input":  # the locker's own code rules
                    self._audit("code.rejected", reason=str(err)[:120])
                    return self._code_failure(s, "kiosk.code_bad")
                log.warning("kiosk: locker lookup failed: %s", err)
                return self._end("out_of_service", "msg.out_of_service")
            status = (found or {}).get("status", "unknown")
            self._audit("code.lookup", receipt=code, status=status)
            if status == "unknown":
                return self._code_failure(s, "kiosk.code_wrong")
            if status in ("expired", "collected"):
                return self._end(status, f"msg.{status}")
            if status != "waiting":
                return self._end("no_result", "msg.no_result")
            s.receipt, s.notice, s.notice_params = code, None, {}
            s.pin_set = bool(found.get("pin_set"))
            locked = self._locked_minutes(code)
            if locked:
                self._audit("lockout.refused", receipt=code)
                return self._end("locked", "msg.locked", minutes=locked)
            if await self._face_possible(code):
                s.step, s.step_started = "face", self.clock()
                self._touch(s)
                self._ask_preview()  # before the first verify: the picture shows while its frames are taken
                self._audit("step.face", receipt=code)
                self._spawn(self._face_loop(s))
            else:
                self._to_pin(s, reason="no face consent", notice=None)
            self._notify()
            return self.view()

    async def scanned(self, text: str) -> dict:
        """A receipt QR read by the kiosk's camera (QR service).

        It never starts a session and never uses up an attempt: a receipt left in front of the camera
        (or the demo's simulated camera) must not spend the next citizen's tries. It only offers the
        code in the code field of a session someone started; the citizen confirms it. Each code is
        offered once per session, so a code that stays in view is not offered again after a refusal.
        """
        async with self._lock:
            s = self.session
            if s is not None and self._idle_too_long(s):
                self._end("timeout", "msg.timeout")
                s = None
            if s is None or s.step != "code":
                return self.view()  # no session, or mid-journey (face, PIN, door): a scan changes nothing
            code = self.parse_code(text or "")
            if code is None or code in s.scanned:
                return self.view()
            s.scanned.add(code)
            s.prefill, s.notice, s.notice_params = code, "kiosk.code_scanned", {}
            self._audit("code.scanned", receipt=code)
            self._touch(s)
            self._notify()
            return self.view()

    async def touch(self, session_id: str) -> dict:
        """The citizen is still typing (on-screen keypad): keep the session from timing out under them."""
        async with self._lock:
            s = self.session
            if s is not None and s.id == session_id and s.step in ("code", "pin") and not self._idle_too_long(s):
                self._touch(s)
                self._notify()  # the page's countdown starts again from the full time
            return self.view()

    async def use_pin(self, session_id: str) -> dict:
        """The citizen chooses the PIN instead of the face (the consent is theirs to withdraw)."""
        async with self._lock:
            s = self._current(session_id, "face")
            self._to_pin(s, reason="citizen chose PIN", notice=None)
            self._notify()
            return self.view()

    async def submit_pin(self, session_id: str, pin: str) -> dict:
        async with self._lock:
            s = self._current(session_id, "pin")
            locker = self._locker()
            pin = (pin or "").strip()
            ok = False
            if pin.isdigit() and 3 <= len(pin) <= 12 and locker is not None:
                ok = await locker.verify_pin(s.receipt, pin)
            if ok:
                self._audit("pin.accept", receipt=s.receipt)
                return await self._open(s, "pin")
            s.pin_failures += 1
            self._audit("pin.reject", receipt=s.receipt, failures=s.pin_failures)
            if s.pin_failures >= self.limits.pin_attempts:
                self._lock_receipt(s.receipt, "pin attempts")
                return self._end("locked", "msg.locked", minutes=self._minutes(self.limits.lockout_s))
            s.notice = "kiosk.pin_wrong"
            self._touch(s)
            self._notify()
            return self.view()

    async def cancel(self, session_id: str | None = None) -> dict:
        async with self._lock:
            if self.session is None or (session_id and session_id != self.session.id):
                return self.view()
            if self.session.step == "open":
                return self.view()  # the door is open: the session ends when it closes
            return self._end("cancelled", "msg.cancelled")

    async def tick(self) -> None:
        """Called about once a second: an idle session times out back to the start screen."""
        async with self._lock:
            s = self.session
            if s is None:
                if self.banner and self.banner[2] <= self.clock():
                    self.banner = None
                    self.language = self.default_language  # the next citizen starts in the default language
                    self._notify()
                return
            if self._idle_too_long(s):
                self._end("timeout", "msg.timeout")
            elif self._face_time_up(s):
                self._to_pin(s, reason="face step time", notice="kiosk.pin_after_face")
                self._notify()

    async def close(self) -> None:
        """Stop background steps (service stop)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- face -------------------------------------------------------------------------------------
    async def _face_possible(self, receipt: str) -> bool:
        vision = self._vision()
        if vision is None:
            return False
        try:
            return bool(await vision.enrolled(receipt))
        except (EdgeError, ValueError) as err:  # ValueError: a code the vision service cannot key on
            log.warning("kiosk: vision unavailable (%s): PIN only", err)
            return False

    def _ask_preview(self) -> None:
        vision = self._vision()
        if vision is not None:
            try:
                vision.preview()
            except (EdgeError, OSError, ValueError) as err:  # no picture is no reason to stop the pickup
                log.info("kiosk: no camera picture: %s", err)

    async def _face_loop(self, s: Session) -> None:
        """Check the face until accepted, rejected too often, or the session moves on."""
        while True:
            vision = self._vision()
            if vision is None:
                result = {"decision": "error", "reason": "camera"}
            else:
                try:
                    result = await self._verify_with_guidance(s, vision)
                except (EdgeError, ValueError, asyncio.TimeoutError) as err:
                    result = {"decision": "error", "reason": str(err) or "camera"}
            async with self._lock:
                if self.session is not s or s.step != "face":
                    return
                if self._idle_too_long(s):  # a late answer for a session that has timed out
                    self._end("timeout", "msg.timeout")
                    return
                if not await self._face_result(s, result or {}):
                    return
                if self._face_time_up(s):  # the countdown on screen reached zero: the PIN (or the desk) next
                    self._to_pin(s, reason="face step time", notice="kiosk.pin_after_face")
                    self._notify()
                    return
            await asyncio.sleep(self.limits.face_pause_s)

    async def _verify_with_guidance(self, s: Session, vision) -> dict:
        """One verify call; meanwhile the camera's live hint (closer, too dark…) is shown as it changes."""
        verify = asyncio.ensure_future(vision.verify(s.receipt, timeout_s=self.limits.face_timeout_s))
        try:
            while not verify.done():
                await asyncio.wait({verify}, timeout=GUIDANCE_POLL_S)
                if not verify.done():
                    self._live_guidance(s, vision.guidance())
            return verify.result()
        finally:
            verify.cancel()

    def _live_guidance(self, s: Session, live: Any) -> None:
        reason = live.get("reason") if isinstance(live, dict) else live
        if self.session is not s or s.step != "face":
            return
        changed = self._set_challenge(s, live.get("challenge") if isinstance(live, dict) else None)
        key = (guidance_key(reason) if reason != "ok" else "guide.ok") if reason else s.guidance
        if key != s.guidance:
            s.guidance, changed = key, True
        if changed:
            self._notify()

    @staticmethod
    def _set_challenge(s: Session, challenge: Any) -> bool:
        """The vision service's randomised liveness prompt ("quay mặt sang trái"…); True if it changed."""
        if not isinstance(challenge, dict) or not (challenge.get("vi") or challenge.get("key")):
            return False
        shown = {k: str(challenge[k]) for k in ("key", "vi", "en") if challenge.get(k)}
        if shown == s.challenge:
            return False
        s.challenge = shown
        return True

    async def _face_result(self, s: Session, result: dict) -> bool:
        """Apply one verify answer; True to keep checking."""
        decision = result.get("decision")
        score = result.get("score")
        self._set_challenge(s, result.get("challenge"))
        self._audit(f"face.{decision}", receipt=s.receipt, reason=result.get("reason"),
                    score=round(score, 4) if isinstance(score, (int, float)) else None)
        if decision == "accept":
            await self._open(s, "face")
            return False
        if decision == "reject":
            s.face_rejects += 1
            if s.face_rejects >= self.limits.face_attempts:
                self._to_pin(s, reason="face attempts", notice=refusal_notice(result, final=True))
            else:
                s.notice, s.guidance = refusal_notice(result, final=False), None
        elif decision == "retry":
            s.face_retries += 1
            s.guidance = guidance_key(result.get("guidance") or result.get("reason"))
            if s.face_retries >= self.limits.face_retries:
                self._to_pin(s, reason="face retries", notice="kiosk.pin_after_face")
        else:  # "locked" by the vision service, or the camera failed
            self._to_pin(s, reason=f"face {decision}: {result.get('reason')}", notice="kiosk.pin_after_face")
        if self.session is s:
            self._touch(s)
        self._notify()
        return self.session is s and s.step == "face"

    def _to_pin(self, s: Session, *, reason: str, notice: str | None) -> None:
        if not s.pin_set:
            self._audit("step.no_fallback", receipt=s.receipt, reason=reason)
            self._end("no_pin", "msg.no_pin")
            return
        s.step, s.notice, s.guidance, s.challenge = "pin", notice, None, None
        s.step_started = self.clock()
        self._touch(s)
        self._audit("step.pin", receipt=s.receipt, reason=reason)

    # -- door -------------------------------------------------------------------------------------
    async def _open(self, s: Session, method: str) -> dict:
        locker = self._locker()
        try:
            opened = await locker.pickup(s.receipt, claim={"method": method, "ref": s.id}, actor=ACTOR)
        except EdgeError as err:
            log.warning("kiosk: pickup refused: %s", err)
            self._audit("locker.refused", receipt=s.receipt, error=str(err))
            if isinstance(err, LockerRefused) and err.reason in ("collected", "expired"):  # (or busy, …)
                return self._end(err.reason, f"msg.{err.reason}")
            return self._end("out_of_service", "msg.out_of_service")
        s.compartment = (opened or {}).get("compartment")
        s.step, s.method, s.notice, s.guidance = "open", method, None, None
        self._audit("locker.opened", receipt=s.receipt, compartment=s.compartment, method=method)
        self._spawn(self._door_loop(s))
        self._notify()
        return self.view()

    async def _door_loop(self, s: Session) -> None:
        locker = self._locker()
        for _ in range(DOOR_REMINDERS):
            try:
                closed = await locker.wait_door(s.compartment, "closed", self.limits.door_timeout_s)
            except EdgeError as err:
                log.warning("kiosk: waiting for the door failed: %s", err)
                closed = False
            async with self._lock:
                if self.session is not s:
                    return
                if closed:
                    self._audit("door.closed", receipt=s.receipt, compartment=s.compartment)
                    self._end("collected", "kiosk.thanks_title", duration=self.limits.thanks_s,
                              compartment=s.compartment)
                    return
                s.door_reminder = True
                self._notify()
        async with self._lock:
            if self.session is s:
                self._end("door_left_open", "msg.door_left_open", compartment=s.compartment)

    # -- helpers ----------------------------------------------------------------------------------
    def _current(self, session_id: str, step: str) -> Session:
        s = self.session
        if s is not None and self._idle_too_long(s):
            self._end("timeout", "msg.timeout")  # the tick may not have run yet: a timed-out session never acts
            s = None
        if s is None or s.id != session_id:
            raise SessionError("this screen is out of date: the session has ended")
        if s.step != step:
            raise SessionError(f"the session is at step '{s.step}', not '{step}'")
        self._touch(s)
        return s

    def _idle_too_long(self, s: Session) -> bool:
        return s.step != "open" and self.clock() - s.touched > self.limits.session_timeout_s

    def _face_time_up(self, s: Session) -> bool:
        return s.step == "face" and self.clock() - s.step_started >= self.limits.face_step_s

    def _touch(self, s: Session) -> None:
        s.touched = self.clock()

    def _code_failure(self, s: Session, notice: str) -> dict:
        s.code_failures += 1
        if s.code_failures >= self.limits.code_attempts:
            return self._end("too_many_codes", "msg.too_many_codes")
        s.notice = notice
        self._notify()
        return self.view()

    def _end(self, outcome: str, message: str, duration: float | None = None, **params) -> dict:
        """End the session (and only then may a new citizen start one); show `message` a while."""
        s = self.session
        self.session = None
        self.banner_language, self.language = self.language, self.default_language
        self.banner = (message, params, self.clock() + (duration or max(self.limits.thanks_s, 5.0)))
        if s is not None:
            log.info("kiosk: session %s ended: %s%s", s.id, outcome,
                     f" (compartment {s.compartment}, {s.method})" if s.compartment is not None else "")
            with self.store.transaction() as tx:
                tx.audit(ACTOR, "session.end", session=s.id, outcome=outcome, receipt=s.receipt,
                         compartment=s.compartment, method=s.method)
                tx.emit("kiosk", "session_ended", session=s.id, outcome=outcome, method=s.method,
                        seconds=round(self.clock() - s.started, 1))
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        self._notify()
        return self.view()

    def _audit(self, action: str, **detail) -> None:
        detail = {k: v for k, v in detail.items() if v is not None}
        if self.session is not None:
            detail["session"] = self.session.id
        with self.store.transaction() as tx:
            tx.audit(ACTOR, action, **detail)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("kiosk: background step failed", exc_info=task.exception())
            if self.session is not None and self.session.step != "open":
                self._end("error", "msg.out_of_service")

    def _lock_receipt(self, receipt: str, reason: str) -> None:
        with self.store.transaction() as tx:
            tx.execute("INSERT INTO kiosk_lockouts(receipt, until, reason) VALUES (?, ?, ?) "
                       "ON CONFLICT(receipt) DO UPDATE SET until = excluded.until, reason = excluded.reason",
                       (receipt, self.clock() + self.limits.lockout_s, reason))
            tx.audit(ACTOR, "lockout", receipt=receipt, reason=reason, seconds=self.limits.lockout_s,
                     session=self.session.id if self.session else None)
            tx.emit("kiosk", "lockout", reason=reason, seconds=self.limits.lockout_s)

    def _locked_minutes(self, receipt: str) -> int:
        rows = self.store.query("SELECT until FROM kiosk_lockouts WHERE receipt = ?", (receipt,))
        if rows and rows[0]["until"] > self.clock():
            return self._minutes(rows[0]["until"] - self.clock())
        return 0

    @staticmethod
    def _minutes(seconds: float) -> int:
        return max(1, int(seconds // 60 + (1 if seconds % 60 else 0)))


def receipt_from_text(text: str) -> str | None:
    """The dossier code in a scanned QR payload (bare code or a lookup URL) or a typed code.

    The same rule as the staff loading screen (edge.kiosk.receipts): what staff can load, a citizen can collect.
    """
    return dossier_code(text)


LIVENESS_WORDS = ("spoof", "live", "motion", "presentation", "challenge")


def refusal_notice(result: dict, *, final: bool) -> str:
    """The i18n key telling the citizen why the face was refused: a photo or screen is named as such."""
    reason = str(result.get("reason") or "").lower()
    liveness = (result.get("liveness") or {}) if isinstance(result.get("liveness"), dict) else {}
    if reason == "challenge":  # turned the other way than asked (a replayed video does that)
        return "kiosk.pin_after_spoof" if final else "kiosk.face_challenge_failed"
    if any(w in reason for w in LIVENESS_WORDS) or liveness.get("verdict") == "fail":
        return "kiosk.pin_after_spoof" if final else "kiosk.face_not_live"
    return "kiosk.pin_after_face" if final else "kiosk.face_retry"


def mask(receipt: str | None) -> str | None:
    """Only the last part of a dossier code is shown on screen."""
    if not receipt:
        return None
    return "…" + receipt[-6:] if len(receipt) > 6 else receipt


def guidance_key(reason: Any) -> str:
    """The i18n key of a vision quality reason ('too_small', 'dark', …); unknown ones map to a generic hint."""
    from edge.kiosk.i18n import STRINGS
    text = str(reason or "").strip().lower().replace(" ", "_").replace("-", "_")
    for candidate in (text, text.split(":")[0], text.split("(")[0].strip("_")):
        if f"guide.{candidate}" in STRINGS:
            return f"guide.{candidate}"
    for word, key in (("dark", "guide.dark"), ("bright", "guide.bright"), ("small", "guide.too_small"),
                      ("far", "guide.too_small"), ("blur", "guide.blurred"), ("pose", "guide.pose"),
                      ("no_face", "guide.no_face"), ("multiple", "guide.multiple_faces"), ("faces", "guide.multiple_faces")):
        if word in text:
            return key
    return "guide.ok"
