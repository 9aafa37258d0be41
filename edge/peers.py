"""What the services of one device may ask of each other, as `typing.Protocol`s.

A service reaches another through its context (`ctx.locker()`, `ctx.pager()`, `ctx.vision()`,
`ctx.qr()`, edge.service.ServiceContext), typed by the protocols below, so a caller never probes
a peer by name (`hasattr`, `getattr`) and knows each answer's type. Each protocol lists only what
some caller uses; the real classes (edge/locker/service.py, edge/pager/service.py,
edge/vision/service.py, edge/qr/service.py) and the test doubles in edge.testing are checked
against them, method by method (names, async-ness, parameters), by tests/core/test_peers.py.

Who asks what:
- the kiosk asks the locker (`LockerPeer`), the pager (`PagerPeer`), vision (`VisionPeer`) and
  the QR service (`QrPeer`);
- the locker tells vision what it loaded, handed out or took back (`VisionForLocker`);
- the QR service asks the pager for tickets and check-ins (`PagerForQr`).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol


class Peer(Protocol):
    """What every service answers (edge.service.Service)."""

    def health(self) -> str: ...

    def snapshot(self) -> dict: ...  # the retained state; "alarms", when listed, is a list of dicts


class LockerPeer(Peer, Protocol):
    """The locker as the kiosk's pickup flow and loading screen use it."""

    async def lookup(self, receipt_code: str) -> dict: ...

    async def verify_pin(self, receipt_code: str, pin: str) -> bool: ...

    async def pickup(self, receipt_code: str, claim: dict, actor: str) -> dict: ...

    async def wait_door(self, compartment: int, state: str, timeout_s: float) -> bool: ...

    async def load(self, staff_pin: str, receipt_code: str, size: str | None, pin: str | None = None,
                   deadline_days: int | None = None, *, accessible: bool = False, face_enrolled: bool = False,
                   phone: str | None = None) -> dict: ...

    async def mark_face_enrolled(self, receipt_code: str, enrolled: bool = True) -> None: ...

    def view(self) -> dict: ...  # {"compartments": {n: {...}}, "free": int, "alarms": int, ...}


class VisionForLocker(Protocol):
    """Vision as the locker tells it about dossiers (best effort, after the locker's commit)."""

    async def enrolled(self, dossier: str) -> bool: ...

    async def result_waiting(self, dossier: str, waiting: bool = True) -> bool: ...

    async def delete(self, dossier: str, reason: str) -> bool: ...


class VisionPeer(VisionForLocker, Peer, Protocol):
    """Vision as the kiosk's face step uses it (and the locker, through the same context)."""

    async def verify(self, dossier: str, frames_rgb: list | None = None, timeout_s: float = 2.0) -> dict: ...

    def guidance(self) -> dict: ...  # {"reason", "text", "text_en"}: what the camera sees now

    def preview(self) -> bytes | None: ...  # one JPEG for the kiosk's own screen, or None


class PagerForQr(Protocol):
    """The pager as the QR service uses it: a ticket for a procedure, a check-in for an appointment."""

    async def issue(self, service: str, priority: str | None = None, source: str = "desk") -> dict: ...

    async def checkin(self, appointment_code: str) -> dict: ...

    async def book(self, code: str, service: str, slot: float) -> dict: ...


class PagerPeer(PagerForQr, Peer, Protocol):
    """The pager as the desk screens use it (reception, counter panel, wall display)."""

    async def action(self, name: str, args: Any) -> dict: ...  # checked by the pager's `commands`

    def view(self) -> dict: ...  # edge.pager.queue.QueueEngine.view() plus "transmitter"

    def priorities(self) -> list[str]: ...  # the priority classes a desk may give a ticket

    def counters(self) -> list[str]: ...  # the counters configured (one counter screen each)

    def utc_offset_h(self) -> float: ...  # the office's hours from UTC (the wall display's clock)


class QrPeer(Peer, Protocol):
    """The QR service as the kiosk follows its camera and looks procedures up."""

    def subscribe(self, maxsize: int = 50, *, private: bool = False) -> asyncio.Queue: ...

    def unsubscribe(self, queue: asyncio.Queue) -> None: ...

    def catalog_lookup(self, code: str) -> dict | None: ...


# Which protocol each peer name stands for, for `ServiceContext` and the conformance test.
BY_NAME: dict[str, type] = {"locker": LockerPeer, "pager": PagerPeer, "vision": VisionPeer, "qr": QrPeer}
