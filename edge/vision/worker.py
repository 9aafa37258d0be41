"""The camera and the face models run in a worker process (multiprocessing, spawn), so a stuck
camera or a hung model never blocks the supervisor's event loop.

Messages over one Pipe. Worker -> proxy: {"type": "beat", "ts", "guidance", "camera", "error"}
after every frame or idle tick, and {"type": "reply", "id", ...} answers. Proxy -> worker:
{"id", "op": "capture"|"frames", ...}. The proxy restarts the worker when beats stop for
`heartbeat_timeout_s` (or `startup_timeout_s` while models load). Embeddings stay on the device:
they cross only this local pipe, never the network.

Child side: `worker_main` loads the models and runs a `Worker` (its state as attributes, one
method per request kind). Parent side: `WorkerProxy`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import threading
import time
from typing import Any

import numpy as np

from edge.errors import DeviceError, DeviceNotReady

log = logging.getLogger(__name__)

IDLE_TICK_S = 0.5
CAMERA_RETRY_MAX_S = 30.0
PREVIEW_S = 10.0  # the live picture stays on this long after the kiosk last asked for it
PREVIEW_WIDTH = 320  # a small JPEG for the kiosk's face step (edge.kiosk: /api/kiosk/camera.jpg)
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 60.0
HEALTHY_RESET_S = 60.0  # a worker that beat this long resets the restart backoff


# -- worker side (child process) ----------------------------------------------------------------

class _Pipeline:
    """Embedder + gates + liveness model, built from the settings dict inside the worker."""

    def __init__(self, settings: dict):
        from edge.vision.embed import Embedder
        from edge.vision.liveness import make_scorer
        from edge.vision.quality import Gates

        self.embedder = Embedder(settings.get("model_dir"), mtcnn_dir=settings.get("mtcnn_dir"),
                                 threads=settings.get("threads", 2),
                                 min_face_px=max(24, settings.get("min_face_px", 80) // 2))
        self.gates = Gates(min_face_px=settings.get("min_face_px", 80), min_sharpness=settings.get("min_sharpness", 30.0),
                           max_yaw=settings.get("max_yaw", 0.35), min_brightness=settings.get("min_brightness", 45.0),
                           max_brightness=settings.get("max_brightness", 215.0))
        self.liveness = make_scorer(settings.get("liveness_model"), live_index=settings.get("liveness_live_index", 1),
                                    threads=1)

    def analyse(self, frame: np.ndarray, *, embed: bool) -> dict:
        """One frame -> {"reason", and for a usable face: "embedding", "quality", "landmarks", "live"}.
        Landmarks come with every face found (turned too far included): the motion check needs them."""
        from edge.vision.quality import check

        try:
            faces = self.embedder.detect(frame)
        except ValueError as err:
            return {"reason": "bad_frame", "error": str(err)}
        reason, face = check(faces, self.gates)
        result: dict[str, Any] = {"reason": reason}
        if face is not None:
            result["landmarks"] = face.landmarks.tolist()
            result["quality"] = face.quality
        if reason == "ok" and embed:
            result["embedding"] = self.embedder.embed_chips(face.chip[None])[0]
            if self.liveness is not None:
                result["live"] = self.liveness.score(frame, face)
        return result


def usable_count(frames: list[dict], request: dict) -> int:
    """Frames the match will use: 'ok', and with a challenge not turned away (see motion.frontal_only)."""
    from edge.vision.motion import frontal_only

    return sum(f["reason"] == "ok" for f in (frontal_only(frames) if request.get("challenge") else frames))


def challenge_state(frames: list[dict], request: dict) -> str | None:
    """The motion status of the frames so far against the request's challenge (None: no challenge)."""
    from edge.vision.motion import measure

    key = request.get("challenge")
    if not key:
        return None
    return measure([f["landmarks"] for f in frames if f.get("landmarks") is not None], key).status


class Worker:
    """The worker process: one camera, the face models, and the loop that serves the proxy.

    Between requests it watches the camera for the screen's live guidance; every pass of the
    loop ends with a beat, so the proxy knows it is alive. One method per request kind (the
    `op` of the message): "capture" -> `capture`, "frames" -> `analyse_frames` (both answered
    with a reply), "preview" -> `show_preview` (no reply), "stop" ends `serve`."""

    def __init__(self, conn, settings: dict, pipeline: _Pipeline):
        self.conn = conn
        self.settings = settings
        self.pipeline = pipeline
        self.camera_spec = settings.get("camera", "none")
        self.period = 1.0 / float(settings.get("fps", 5.0))
        self.source = None  # the open frame source; None while closed, failing or not configured
        self.camera_state = "none"  # reported in every beat: "ok", "down" or "none"
        self.camera_error = ""
        self.retry_at = 0.0  # when a failed camera may be opened again (monotonic) ...
        self.retry_s = 1.0  # ... after a wait that doubles up to CAMERA_RETRY_MAX_S
        self.guidance = "no_face"  # the reason key the screen shows (edge.vision.quality)
        self.preview_until = 0.0  # the kiosk's live picture: only while it asks for one
        self.preview = None

    # -- the loop -------------------------------------------------------------------------------
    def serve(self) -> None:
        """Until a stop (or the proxy's end of the pipe): wait up to one frame period for a
        request; without one, look at the camera; then beat, and keep the frame rate."""
        self.open_camera()
        self.beat()
        while True:
            started = time.monotonic()
            if self.conn.poll(self.period if self.source is not None else IDLE_TICK_S):
                try:
                    request = self.conn.recv()
                except EOFError:
                    return  # the proxy went away
                op = request.get("op")
                if op == "stop":
                    return
                if op == "preview":  # no reply: the picture rides on the next beats
                    self.show_preview()
                    continue
                self.conn.send({"type": "reply", "id": request.get("id"), **self.answer(request)})
            elif self.source is not None or self.camera_spec != "none":
                self.watch()
            self.beat()
            time.sleep(max(0.0, self.period - (time.monotonic() - started)) if self.source is not None else 0)

    def answer(self, request: dict) -> dict:
        if request.get("op") == "capture":
            return self.capture(request)
        if request.get("op") == "frames":
            return self.analyse_frames(request)
        return {"error": f"unknown op {request.get('op')!r}"}

    def beat(self) -> None:
        self.conn.send({"type": "beat", "ts": time.time(), "guidance": self.guidance, "camera": self.camera_state,
                        "error": self.camera_error, "pid": os.getpid(),
                        "preview": self.preview if time.monotonic() < self.preview_until else None})

    # -- the requests ---------------------------------------------------------------------------
    def capture(self, request: dict) -> dict:
        """Frames until `n` are usable and the challenge (if any) is passed, or the time is up.
        While the challenge is pending and a face is in view, the live guidance is 'challenge'
        (the screen shows the prompt), not 'pose' for the turned head."""
        wanted, deadline = int(request.get("n", 3)), time.monotonic() + float(request.get("timeout_s", 2.0))
        frames: list[dict] = []
        state = challenge_state(frames, request)
        while time.monotonic() < deadline and (usable_count(frames, request) < wanted or state not in (None, "pass")):
            frame = self.grab()
            if frame is None:
                self.beat()
                time.sleep(min(self.period, 0.2))
                continue
            result = self.pipeline.analyse(frame, embed=True)
            frames.append(result)
            state = challenge_state(frames, request)
            pending = state not in (None, "pass") and result["reason"] in ("ok", "pose")
            self.guidance = "challenge" if pending else result["reason"]
            self.beat()
        return {"frames": frames, "camera": self.camera_state, "error": self.camera_error}

    def analyse_frames(self, request: dict) -> dict:
        """The caller's own frames (enrolment, the CLI, recorded tests), analysed one by one."""
        return {"frames": [self.pipeline.analyse(f, embed=True) for f in request["frames"]]}

    def show_preview(self) -> None:
        self.preview_until = time.monotonic() + PREVIEW_S

    # -- the camera -----------------------------------------------------------------------------
    def watch(self) -> None:
        """Between requests: one frame for the screen's live guidance (no embedding needed)."""
        frame = self.grab()
        if frame is not None:
            self.guidance = self.pipeline.analyse(frame, embed=False)["reason"]

    def open_camera(self) -> None:
        from edge.hw.camera import open_source

        try:
            self.source = open_source(self.camera_spec, width=self.settings.get("width", 640),
                                      height=self.settings.get("height", 480))
            self.camera_state, self.camera_error, self.retry_s = ("ok" if self.source else "none"), "", 1.0
        except DeviceError as err:
            self.source, self.camera_state, self.camera_error = None, "down", str(err)
            self.retry_at, self.retry_s = time.monotonic() + self.retry_s, min(CAMERA_RETRY_MAX_S, self.retry_s * 2)

    def grab(self) -> np.ndarray | None:
        """The next camera frame, or None (no camera, or it failed: reopened later with a backoff)."""
        if self.source is None and self.camera_spec != "none" and time.monotonic() >= self.retry_at:
            self.open_camera()
        if self.source is None:
            return None
        try:
            frame = self.source.read()
            self.camera_state, self.camera_error = "ok", ""
            if time.monotonic() < self.preview_until:
                self.preview = _jpeg(frame)
            return frame
        except DeviceError as err:
            self.camera_state, self.camera_error = "down", str(err)
            self.source.close()
            self.source = None
            return None


def worker_main(conn, settings: dict) -> None:
    """Entry point of the worker process."""
    logging.basicConfig(level=settings.get("log_level", "WARNING"))
    try:
        pipeline = _Pipeline(settings)
    except Exception as err:  # missing or corrupt model: tell the proxy why, then exit
        conn.send({"type": "fatal", "error": f"{type(err).__name__}: {err}"})
        return
    Worker(conn, settings, pipeline).serve()


def _jpeg(frame_rgb: np.ndarray) -> bytes | None:
    """A small JPEG of an RGB frame for the kiosk screen (never stored, never sent off the device)."""
    import cv2

    height, width = frame_rgb.shape[:2]
    if width > PREVIEW_WIDTH:
        frame_rgb = cv2.resize(frame_rgb, (PREVIEW_WIDTH, max(1, height * PREVIEW_WIDTH // width)),
                               interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 70])
    return data.tobytes() if ok else None


# -- supervisor side ----------------------------------------------------------------------------

class WorkerProxy:
    """Starts the worker, forwards requests, watches the heartbeat and restarts a silent worker."""

    def __init__(self, settings: dict, *, heartbeat_timeout_s: float = 10.0, startup_timeout_s: float = 60.0):
        self.settings = settings
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.startup_timeout_s = startup_timeout_s
        self.restarts = 0
        self.last_beat: dict = {}
        self.fatal = ""  # why the worker could not start (e.g. model missing); cleared on a beat
        self._failures = 0
        self._restart_at = 0.0
        self._ctx = multiprocessing.get_context("spawn")
        self._process = None
        self._conn = None
        self._reader: threading.Thread | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._started_at = 0.0
        self._beat_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._preview_asked = 0.0

    # lifecycle
    def start(self) -> None:
        self._loop = self._loop or asyncio.get_running_loop()
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=worker_main, args=(child, self.settings), name="edge-vision-worker",
                                    daemon=True)
        process.start()
        child.close()
        self._process, self._conn = process, parent
        self._started_at, self._beat_at = time.monotonic(), 0.0
        self._reader = threading.Thread(target=self._read, args=(parent,), name="vision-worker-reader", daemon=True)
        self._reader.start()

    def stop(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            try:
                with self._send_lock:
                    conn.send({"op": "stop"})
            except (OSError, ValueError):
                pass
        if process is not None:
            if self.ready():  # a worker still loading its models (no beat yet) cannot hear the stop
                process.join(timeout=2.0)
            if process.is_alive():
                process.kill()
                process.join(timeout=2.0)
        if conn is not None:
            conn.close()
        self._fail_pending(DeviceNotReady("vision worker stopped"))

    def restart(self, why: str) -> None:
        self.restarts += 1
        process = self._process
        if process is not None and process.is_alive():
            process.kill()  # a hung worker may ignore a polite stop
        if self.fatal or self._failures:
            self._schedule_restart(why)
            return
        log.warning("vision worker restarted: %s", why)
        self._failures += 1
        self.stop()
        self.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def ready(self) -> bool:
        return self._beat_at > 0

    def check(self) -> str | None:
        """Restart the worker if it died or stopped beating; returns why, or None."""
        now = time.monotonic()
        if self._process is None:
            if self._restart_at and now >= self._restart_at:
                self._restart_at = 0.0
                self.start()
            return None
        if self._beat_at and now - self._started_at > HEALTHY_RESET_S:
            self._failures = 0
        if not self._process.is_alive():
            why = f"worker exited with code {self._process.exitcode}"
        elif self._beat_at == 0 and now - self._started_at > self.startup_timeout_s:
            why = f"no heartbeat within {self.startup_timeout_s:.0f} s of start"
        elif self._beat_at and now - self._beat_at > self.heartbeat_timeout_s:
            why = f"no heartbeat for {now - self._beat_at:.1f} s"
        else:
            return None
        self.restart(why)
        return why

    def _schedule_restart(self, why: str) -> None:
        """Stop now; start again after a doubling, capped delay (a broken model must not spin)."""
        delay = min(RESTART_MAX_S, RESTART_FIRST_S * 2 ** self._failures)
        self._failures += 1
        log.warning("vision worker down (%s): restarting in %.0f s", why, delay)
        self.stop()
        self._restart_at = time.monotonic() + delay

    def preview(self) -> bytes | None:
        """The latest small JPEG of the camera; asks the worker to keep sending it (at most once a second)."""
        now = time.monotonic()
        if self._conn is not None and now - self._preview_asked >= 1.0:
            self._preview_asked = now
            try:
                with self._send_lock:
                    self._conn.send({"op": "preview"})
            except (OSError, ValueError):
                return None
        return self.last_beat.get("preview")

    async def call(self, op: str, *, wait_s: float, **payload) -> dict:
        """Send a request; the reply dict, or DeviceNotReady on timeout or a dead worker."""
        if self._conn is None:
            raise DeviceNotReady("vision worker not running")
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            with self._send_lock:
                self._conn.send({"id": request_id, "op": op, **payload})
            return await asyncio.wait_for(future, wait_s)
        except (OSError, ValueError) as err:
            raise DeviceNotReady(f"vision worker unreachable: {err}") from err
        except asyncio.TimeoutError as err:
            raise DeviceNotReady(f"vision worker gave no answer within {wait_s:.1f} s") from err
        finally:
            self._pending.pop(request_id, None)

    # reader thread
    def _read(self, conn) -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError, ValueError):
                return
            if message.get("type") == "beat":
                self._beat_at = time.monotonic()
                self.last_beat = message
                self.fatal = ""
            elif message.get("type") == "fatal":
                self.fatal = message.get("error", "worker failed to start")
            elif message.get("type") == "reply":
                try:
                    self._loop.call_soon_threadsafe(self._resolve, message)
                except RuntimeError:  # the event loop closed under us
                    return

    def _resolve(self, message: dict) -> None:
        future = self._pending.get(message.get("id"))
        if future is not None and not future.done():
            future.set_result(message)

    def _fail_pending(self, err: Exception) -> None:
        """Fail waiting callers; safe from any thread (stop() may run in a worker thread)."""
        def fail() -> None:
            for future in list(self._pending.values()):
                if not future.done():
                    future.set_exception(err)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop or self._loop is None:
            fail()
            return
        try:
            self._loop.call_soon_threadsafe(fail)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass
