"""QrService: reads a camera, decodes QR codes, dedupes, emits events, and at the reception desk
turns a procedure code into a pager ticket and an appointment code into a check-in.

Events (`qr/event`): `code_scanned` {kind, code?, procedure?, action?, ticket?, refused?} — the
code is a procedure code, portal uuid, dossier or appointment reference, never a full URL or a
free text (they may carry personal data); `catalog_imported`.

A citizen ID card (kind `citizen_id`, personal data) is handed only to the subscribers that
asked for it (`subscribe(private=True)`: the reception form that needs it) and is never logged
in clear, never written to the store or its event outbox (so never published over MQTT) and never
remembered: the dedupe memory keeps a keyed hash of each text, not the text.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from edge.errors import CommandError, DeviceError, EdgeError
from edge.qr import catalog
from edge.qr.codes import PRIVATE_KINDS, PROCEDURE_KINDS
from edge.qr.config import QrConfig
from edge.service import Service, ServiceContext

log = logging.getLogger(__name__)
ACTIONABLE = (*PROCEDURE_KINDS, "appointment")
MAX_SEEN = 1000  # dedupe memory: codes remembered at most


class QrService(Service):
    name = "qr"
    commands = {"lookup": {"code": str}}
    wedged_after_s = 60.0

    def __init__(self, ctx: ServiceContext):
        super().__init__(ctx)
        self.config: QrConfig = ctx.config
        self.source: Any = None
        self._sim_dir: Path | None = None
        self._decoder = None
        self._seen: dict[bytes, float] = {}  # keyed hash of a text -> when it was last seen
        self._seen_key = os.urandom(16)  # per process: the hashes cannot be looked up elsewhere
        self._subscribers: list[tuple[asyncio.Queue, bool]] = []  # (queue, wants private kinds)
        self._source_error: str | None = None
        self.frames = 0
        self.scans = 0
        self.last: dict | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        from edge.qr.decoder import Decoder

        self._decoder = Decoder(budget_ms=self.config.budget_ms, max_text_chars=self.config.max_text_chars,
                                allowed_hosts=self.config.allowed_hosts, use_zbar=self.config.use_zbar)
        await asyncio.to_thread(self._load_catalog)
        self.source = await asyncio.to_thread(self._open_source)
        self.publish_state()

    def _load_catalog(self) -> None:
        store = self.ctx.store
        catalog.setup(store)
        if catalog.count(store) == 0:
            path = self.config.catalog or catalog.SAMPLE
            summary = catalog.import_file(store, path, actor="qr-service")
            log.info("qr: catalog imported from %s (%d procedures)", path, summary["total"])

    def _open_source(self):
        from edge.hw.camera import open_source

        return open_source(self.config.camera, width=self.config.width, height=self.config.height,
                           sim=self._sim_camera)

    def _sim_camera(self):
        """Camera 'sim': the demo's generated posters, receipt and appointment, from this catalog."""
        from edge.qr.sim import SimCamera

        self._sim_dir = Path(tempfile.mkdtemp(prefix="edge-qr-sim-"))
        return SimCamera(self._sim_dir, catalog.procedures(self.ctx.store), site=self.ctx.site,
                         interval_s=self.config.sim_interval_s, clock=self.ctx.clock,
                         codes_per_loop=self.config.sim_codes_per_loop,
                         size=(self.config.width, self.config.height))

    async def run(self) -> None:
        period = 1.0 / self.config.fps
        while True:
            self.heartbeat()
            if self.source is None:
                await self.ctx.sleep(1.0)  # the context's sleep: asyncio.sleep, or a test's clock
                continue
            try:
                frame = await asyncio.to_thread(self.source.read)
            except DeviceError as err:
                self._source_failed(err)
                await self.ctx.sleep(min(5.0, period * 5))
                continue
            self._source_recovered()
            await self.scan_frame(frame, rgb=True)
            await self.ctx.sleep(period)

    async def stop(self) -> None:
        if self.source is not None and hasattr(self.source, "close"):
            await asyncio.to_thread(self.source.close)
        self.source = None
        if self._sim_dir is not None:
            shutil.rmtree(self._sim_dir, ignore_errors=True)
            self._sim_dir = None

    def _source_failed(self, err: Exception) -> None:
        if self._source_error is None:  # log the first failure, not every retry
            log.warning("qr: camera %s failed: %s", self.config.camera, err)
        self._source_error = str(err)

    def _source_recovered(self) -> None:
        if self._source_error is not None:
            log.info("qr: camera %s is back", self.config.camera)
            self._source_error = None

    def health(self) -> str:
        return "degraded" if self._source_error else "ok"

    def snapshot(self) -> dict:
        return {"camera": self.config.camera, "action": self.config.action, "frames": self.frames,
                "scans": self.scans, "last": self.last, "camera_error": self._source_error is not None}

    # -- scanning -----------------------------------------------------------------------------
    async def scan_frame(self, frame, *, rgb: bool = False) -> list[dict]:
        """Decode one frame and handle each new code; returns what was handled (for tests)."""
        import cv2

        from edge.qr.errors import QrInputError

        if rgb and getattr(frame, "ndim", 0) == 3 and frame.shape[2] == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)  # camera sources give RGB
        try:
            scans = await asyncio.to_thread(self._decoder.decode, frame)
        except QrInputError as err:
            log.warning("qr: bad frame from %s: %s", self.config.camera, err)
            return []
        self.frames += 1
        handled = []
        for scan in scans:
            if self._is_repeat(scan.text):
                continue
            handled.append(await self.handle_scan(scan))
        return handled

    def _is_repeat(self, text: str) -> bool:
        now = self.ctx.clock()
        window = self.config.dedupe_s
        if len(self._seen) >= MAX_SEEN:
            self._seen = {t: at for t, at in self._seen.items() if now - at < window}
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), key=self._seen_key, digest_size=16).digest()
        last = self._seen.get(key)
        self._seen[key] = now
        return last is not None and now - last < window

    async def handle_scan(self, scan) -> dict:
        """Look the code up, act on it (desk), emit `code_scanned`, tell the subscribers."""
        if scan.kind in PRIVATE_KINDS:
            return self._handle_private(scan)
        event: dict[str, Any] = {"kind": scan.kind}
        code = scan.code if scan.kind != "unknown" else None
        if code:
            event["code"] = code
        if scan.reason:
            event["reason"] = scan.reason
        if scan.kind == "unknown":
            event["chars"] = len(scan.text)
        procedure = None
        if scan.kind in PROCEDURE_KINDS:
            procedure = await asyncio.to_thread(catalog.lookup, self.ctx.store, code)
            event["procedure"] = procedure["code"] if procedure else None
        if self.config.action == "ticket" and scan.kind in ACTIONABLE:
            event.update(await self._act(scan, code, procedure))
        self.scans += 1
        self.last = {"kind": scan.kind, "code": code, "ts": self.ctx.clock()}
        with self.ctx.store.transaction() as tx:
            tx.emit(self.name, "code_scanned", **event)
            self.publish_state(tx)
        self._log(event, procedure)
        self._notify({**event, "fields": dict(scan.fields), "procedure": procedure})
        return event

    def _handle_private(self, scan) -> dict:
        """A citizen ID card: to the private subscribers only; no event, no store, no clear log."""
        item: dict[str, Any] = {"kind": scan.kind}
        if scan.reason:
            item["reason"] = scan.reason  # names the wrong field, never its value
        self.scans += 1
        self.last = {"kind": scan.kind, "code": None, "ts": self.ctx.clock()}
        self.publish_state()
        readers = self._notify({**item, "fields": dict(scan.fields), "procedure": None}, private=True)
        log.info("qr: scanned a citizen ID card (%s; contents not logged), handed to %d reader(s)",
                 "valid" if scan.reason is None else "invalid", readers)
        return item

    async def _act(self, scan, code: str | None, procedure: dict | None) -> dict:
        pager = self.ctx.pager()
        if pager is None:
            return {"action": "none", "refused": "no pager service on this device"}
        try:
            if scan.kind == "appointment":
                site = scan.fields.get("site")
                if site != self.ctx.site:  # a booking for another office must not take a place here
                    return {"action": "checkin", "refused": f"appointment for another office ({site})"}
                result = await pager.checkin(code)
                return {"action": "checkin", "ticket": result.get("ticket"), "card": result.get("card")}
            queue = (procedure or {}).get("queue_service") or self.config.default_queue_service
            if procedure is None and self.config.default_queue_service is None:
                return {"action": "ticket", "refused": "procedure not in the catalog"}
            if not queue:
                return {"action": "ticket", "refused": "no queue service for this procedure"}
            result = await pager.issue(queue, priority=None, source="qr")
            return {"action": "ticket", "queue_service": queue, "ticket": result.get("ticket"),
                    "card": result.get("card")}
        except EdgeError as err:
            return {"action": "checkin" if scan.kind == "appointment" else "ticket", "refused": str(err)}

    def _log(self, event: dict, procedure: dict | None) -> None:
        name = f" ({procedure['name']})" if procedure else ""
        outcome = ""
        if event.get("ticket"):
            outcome = f" -> ticket {event['ticket']}" + (f" card {event['card']}" if event.get("card") else "")
        elif event.get("refused"):
            outcome = f" -> refused: {event['refused']}"
        what = event.get("code") or event.get("reason") or ""
        log.info("qr: scanned %s %s%s%s", event["kind"], what, name, outcome)

    # -- for the kiosk ------------------------------------------------------------------------
    def subscribe(self, maxsize: int = 50, *, private: bool = False) -> asyncio.Queue:
        """A queue receiving every handled scan (the event fields plus `fields` and `procedure`).

        `private=True` also receives citizen ID cards (kind `citizen_id`, with the card's fields):
        only for the desk action that fills a form from it, which must not keep them after.

        Not the device's event bus (edge.events): the bus carries only what a store transaction
        committed, and an ID card is never written to the store; a scan's `fields` and catalog
        entry are not in its `code_scanned` event either.
        """
        queue: asyncio.Queue = asyncio.Queue(maxsize=maxsize)
        self._subscribers.append((queue, private))
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._subscribers = [(q, p) for q, p in self._subscribers if q is not queue]

    def _notify(self, item: dict, *, private: bool = False) -> int:
        """Put `item` in the subscribers' queues (only the private ones' for a private item)."""
        readers = 0
        for queue, wants_private in self._subscribers:
            if private and not wants_private:
                continue
            if queue.full():
                queue.get_nowait()  # a slow reader loses the oldest scan, never blocks the camera
            queue.put_nowait(item)
            readers += 1
        return readers

    def catalog_lookup(self, code: str) -> dict | None:
        """The catalog entry for a procedure code, variant or portal uuid (None if unknown)."""
        return catalog.lookup(self.ctx.store, code)

    async def handle_command(self, type: str, args: dict, cmd_id: str | None = None) -> dict:
        if type == "lookup":
            return {"procedure": await asyncio.to_thread(catalog.lookup, self.ctx.store, args["code"])}
        raise CommandError(f"qr takes no command {type!r}")

    async def demo(self) -> None:
        if self._sim_dir is None:
            return
        log.info("qr: demo camera shows the generated posters, receipt and appointment in %s", self._sim_dir)
        pager = self.ctx.pager()
        queue = self.config.default_queue_service
        if pager is not None and queue:
            # The booking system would do this; the demo books the code its camera will show.
            try:
                await pager.book(self.source.appointment, queue, self.ctx.clock())
                log.info("qr: demo booked appointment %s for %s", self.source.appointment, queue)
            except EdgeError as err:
                log.warning("qr: demo could not book an appointment: %s", err)
