"""SimCamera: a camera that films generated posters, receipts and other QR codes in turn.

The images are written as PNG files into a folder (a temporary one under `edge demo`) so a
person can look at them; `read()` returns the image of the current slot as an RGB frame, like
the vision camera sources.
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


class SimCamera:
    """Shows each generated image for `interval_s` seconds, in a loop."""

    def __init__(self, folder: str | Path, procedures: list[dict], *, site: str = "demo",
                 interval_s: float = 4.0, clock: Callable[[], float] = time.time,
                 size: tuple[int, int] = (640, 480), seed: int = 7):
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
        for index, (label, text) in enumerate(demo_payloads(procedures, site, datetime.now())):
            frame = self._frame(text, rng)
            cv2.imwrite(str(self.folder / f"{index:02d}-{label}.png"), frame)
            self.frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            self.texts.append(text)

    def _frame(self, text: str, rng: np.random.Generator) -> np.ndarray:
        frame = clutter(rng)
        if text:
            place(frame, qr_image(text), rng, (120, 60, 400, 360))
        if frame.shape[1::-1] != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        return frame

    def read(self) -> np.ndarray:
        slot = int((self.clock() - self.started) / self.interval_s) % len(self.frames)
        return self.frames[slot].copy()

    def close(self) -> None:
        pass
