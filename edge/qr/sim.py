"""SimCamera: a camera that films generated posters, receipts and other QR codes in turn.

The images are written as PNG files into a folder (a temporary one under `edge demo`) so a
person can look at them; `read()` returns the image of the current slot as an RGB frame, like
the sources of `edge.hw.camera`, which builds it for the spec 'sim'.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from edge.qr.synth import OLD_PORTAL, VIETQR, clutter, place, qr_image

BLANK = "blank"
# Procedures the demo shows first when the catalog has them (the demo pager serves their queues).
DEMO_CODES = ("1.001193", "1.011441", "1.000894", "1.011441.000.00.00.H38")


def appointment_code(site: str, day: datetime) -> str:
    return f"LH-{site}-{day.strftime('%y%m%d')}-0001"


def demo_payloads(procedures: list[dict], site: str, day: datetime) -> list[tuple[str, str]]:
    """(label, text) of what the demo camera shows: posters, a receipt, an appointment, traps."""
    yymmdd = day.strftime("%y%m%d")
    order = {code: i for i, code in enumerate(DEMO_CODES)}
    procedures = sorted(procedures, key=lambda p: (order.get(p["code"], len(order)), p["code"]))
    items = [(f"poster-{p['code']}", OLD_PORTAL + p["code"]) for p in procedures[:3]]
    items += [(f"code-{p['code']}", p["code"]) for p in procedures[3:4]]
    items += [
        ("receipt", f"000.00.01.H29-{yymmdd}-0001"),
        ("appointment", appointment_code(site, day)),
        ("vietqr", VIETQR),
        ("vietnamese-text", "Đăng ký khai sinh"),
        ("foreign-url", "https://example.com/?ma_thu_tuc=1.001193"),
        (BLANK, ""),
    ]
    return items


def loop_schedule(labels: list[str], codes_per_loop: int = 0) -> list[int]:
    """Image indexes of one full cycle. With `codes_per_loop` > 0 each loop shows only that many of
    the procedure images (posters and bare codes), in turn, then every other image: at a ticket
    desk each procedure code issues a ticket, and the demo's counters must serve faster than that."""
    codes = [i for i, label in enumerate(labels) if label.startswith(("poster-", "code-"))]
    others = [i for i in range(len(labels)) if i not in codes]
    if not codes_per_loop or codes_per_loop >= len(codes):
        return list(range(len(labels)))
    schedule: list[int] = []
    for loop in range(len(codes)):  # after len(codes) loops every code has been shown codes_per_loop times
        start = loop * codes_per_loop
        schedule += [codes[(start + k) % len(codes)] for k in range(codes_per_loop)] + others
    return schedule


class SimCamera:
    """Shows each generated image for `interval_s` seconds, in a loop."""

    def __init__(self, folder: str | Path, procedures: list[dict], *, site: str = "demo",
                 interval_s: float = 4.0, clock: Callable[[], float] = time.time,
                 size: tuple[int, int] = (640, 480), seed: int = 7, codes_per_loop: int = 0):
        self.folder = Path(folder)
        self.appointment = appointment_code(site, datetime.now())
        self.folder.mkdir(parents=True, exist_ok=True)
        self.interval_s = interval_s
        self.clock = clock
        self.started = clock()  # the loop starts at the first image (posters before the appointment)
        self.size = size
        rng = np.random.default_rng(seed)
        self.frames: list[np.ndarray] = []
        self.texts: list[str] = []
        labels = []
        for index, (label, text) in enumerate(demo_payloads(procedures, site, datetime.now())):
            frame = self._frame(text, rng)
            cv2.imwrite(str(self.folder / f"{index:02d}-{label}.png"), frame)
            self.frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            self.texts.append(text)
            labels.append(label)
        self.schedule = loop_schedule(labels, codes_per_loop)

    def _frame(self, text: str, rng: np.random.Generator) -> np.ndarray:
        frame = clutter(rng)
        if text:
            place(frame, qr_image(text), rng, (120, 60, 400, 360))
        if frame.shape[1::-1] != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        return frame

    def read(self) -> np.ndarray:
        slot = int((self.clock() - self.started) / self.interval_s) % len(self.schedule)
        return self.frames[self.schedule[slot]].copy()

    def close(self) -> None:
        pass
