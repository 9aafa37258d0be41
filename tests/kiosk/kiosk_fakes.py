"""Test doubles of the kiosk's peers, with the agreed method names (locker, vision, pager, qr)."""

from __future__ import annotations

import asyncio

from edge.errors import EdgeError


class FakeLocker:
    """A locker with receipts in given states; records every open, so a test sees which door moved."""

    def __init__(self, receipts: dict[str, dict] | None = None):
        # receipt -> {"status": ..., "compartment": n, "pin": "1234" or None}
        self.receipts = receipts or {}
        self.opened: list[tuple] = []
        self.loaded: list[tuple] = []
        self.door_closed = asyncio.Event()
        self.close_answers: list[bool] = []  # scripted wait_door answers; empty: wait for door_closed

    async def lookup(self, receipt_code):
        r = self.receipts.get(receipt_code)
        if r is None:
            return {"status": "unknown"}
        return {"status": r["status"], "compartment": r.get("compartment"), "pin_set": bool(r.get("pin"))}

    async def verify_pin(self, receipt_code, pin):
        r = self.receipts.get(receipt_code)
        return bool(r and r.get("pin") and r["pin"] == pin)

    async def pickup(self, receipt_code, claim, actor):
        r = self.receipts[receipt_code]
        if r["status"] != "waiting":
            raise EdgeError(f"receipt {receipt_code} is {r['status']}")
        self.opened.append((receipt_code, r["compartment"], claim["method"], claim["ref"], actor))
        r["status"] = "collected"
        return {"compartment": r["compartment"]}

    async def wait_door(self, compartment, state, timeout_s):
        if self.close_answers:
            return self.close_answers.pop(0)
        await self.door_closed.wait()
        return True

    async def load(self, staff_pin, receipt_code, size, pin=None, deadline_days=None):
        if staff_pin != "9999":
            from edge.locker.flows import LockerRefused
            raise LockerRefused("staff")  # what the real locker answers: "staff: Wrong staff code."
        self.loaded.append((receipt_code, size, pin, deadline_days))
        return {"compartment": 3}

    def view(self):
        return {"compartments": {n: {"size": "M", "state": "free"} for n in range(1, 13)}, "alarms": 1}

    def snapshot(self):
        return {"alarms": [{"alarm": "left_open", "target": "compartment:3", "since": 1.0}]}

    def health(self):
        return "ok"


class FakeVision:
    """Answers verify() from a script of decisions; `enrolled` lists the dossiers with face consent."""

    def __init__(self, enrolled=(), decisions=None):
        self._enrolled = set(enrolled)
        self.decisions = list(decisions or [])
        self.calls = 0
        self.gate = None  # an asyncio.Event to hold verify() until a test releases it
        self.live = "no_face"  # what guidance() reports from the camera between verify answers

    async def enrolled(self, dossier):
        return dossier in self._enrolled

    async def verify(self, dossier, frames_rgb=None, timeout_s=2.0):
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if not self.decisions:
            return {"decision": "reject", "score": 0.1, "reason": "no match", "guidance": None}
        d = self.decisions.pop(0)
        return d if isinstance(d, dict) else {"decision": d, "score": 0.9 if d == "accept" else 0.2,
                                               "reason": None, "guidance": None}

    def guidance(self):
        return {"reason": self.live, "text": "", "text_en": ""}

    def health(self):
        return "ok"


class FakeQr:
    def __init__(self, catalog):
        self.catalog = catalog

    async def catalog_lookup(self, code):
        return self.catalog.get(code)

    def health(self):
        return "ok"


class FakePager:
    def __init__(self):
        self.issued: list[tuple] = []
        self.calls: list[tuple] = []

    async def issue(self, service, priority=None, source="desk"):
        self.issued.append((service, priority, source))
        return {"ticket": f"{service}{len(self.issued):03d}", "card": len(self.issued) + 6}

    async def call_next(self, counter):
        self.calls.append(("call_next", counter))
        return {"ticket": "A001", "counter": counter}

    def view(self):
        # the shape of edge.pager.queue.QueueEngine.view()
        return {"counters": {"1": {"paused": False, "ticket": "A001", "service": "general", "card": 7}},
                "services": {"general": {"prefix": "A", "name": "Tiếp nhận hồ sơ", "name_en": "Filing",
                                         "waiting": 2, "next": ["A002", "A003"], "estimated_wait_s": 300}},
                "now_serving": [{"ticket": "A001", "counter": "1", "card": 7}]}

    def health(self):
        return "ok"
