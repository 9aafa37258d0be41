"""Camera-like test frames with known QR payloads, generated from a seed (segno + OpenCV).

Used by `edge bench qr`, the tests and the demo. Each frame is 640×480 BGR with 0–3 codes
under rotation, perspective, blur, motion blur, noise, glare, low contrast, JPEG and clutter.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import cv2
import numpy as np
import segno

WIDTH, HEIGHT = 640, 480

PROCEDURE_CODES = ["1.001193", "1.000894", "2.000806", "1.004222", "2.000815", "1.001612", "1.011441",
                   "1.011441.000.00.00.H38", "1.000494.000.00.00.H29", "1.013229.01", "2.000815.000.00.00.H55.02"]
VIETNAMESE = ["Đăng ký khai sinh", "Đăng ký kết hôn", "Chứng thực bản sao từ bản chính",
              "Đăng ký thường trú", "Đăng ký thành lập hộ kinh doanh", "Quầy số 3 — Tư pháp hộ tịch",
              "Bộ phận một cửa phường Ba Đình", "Trả kết quả: tủ số 12"]
VIETQR = ("00020101021238570010A00000072701270006970403011300110123456780208QRIBFTTA5303704540618"
          "00005802VN62340107NPS68690819thanh toan don hang63042E2E")
OLD_PORTAL = "https://dichvucong.gov.vn/p/home/dvc-chi-tiet-thu-tuc-hanh-chinh.html?ma_thu_tuc="


@dataclass
class Sample:
    """One generated frame and the exact texts of the codes drawn in it."""

    image: np.ndarray
    texts: list[str]
    tags: list[str] = field(default_factory=list)


def payload(rng: np.random.Generator, index: int) -> str:
    """A realistic office payload; `index` makes texts in one frame distinct."""
    choice = rng.integers(0, 6)
    if choice == 0:
        return PROCEDURE_CODES[index % len(PROCEDURE_CODES)] if index < len(PROCEDURE_CODES) \
            else f"1.{rng.integers(0, 999999):06d}"
    if choice == 1:
        return OLD_PORTAL + PROCEDURE_CODES[rng.integers(0, 7)] + f"&i={index}"
    if choice == 2:
        return f"000.00.{rng.integers(1, 99):02d}.H29-2{rng.integers(4, 6)}0{rng.integers(1, 10)}1{rng.integers(0, 10)}-{rng.integers(0, 9999):04d}"
    if choice == 3:
        return f"LH-hn-badinh-26011{rng.integers(0, 10)}-{rng.integers(0, 9999):04d}"
    if choice == 4:
        return VIETNAMESE[rng.integers(0, len(VIETNAMESE))] + ("" if index == 0 else f" {index}")
    return VIETQR if index == 0 else f"{VIETNAMESE[0]} {index}"


def qr_image(text: str, module_px: int = 1, border: int = 4, error: str = "m") -> np.ndarray:
    """A clean gray QR image (0 black, 255 white) of `text`, UTF-8 encoded."""
    code = segno.make(text, error=error, micro=False, encoding="utf-8" if not text.isascii() else None)
    buf = io.BytesIO()
    code.save(buf, kind="png", scale=module_px, border=border)
    return cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)


def clutter(rng: np.random.Generator) -> np.ndarray:
    base = rng.integers(90, 230)
    gx = np.linspace(-rng.integers(0, 50), rng.integers(0, 50), WIDTH)[None, :]
    gy = np.linspace(-rng.integers(0, 40), rng.integers(0, 40), HEIGHT)[:, None]
    img = np.clip(base + gx + gy, 0, 255).astype(np.uint8)
    img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    for _ in range(rng.integers(3, 12)):
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        x, y = int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT))
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(10, 200)), y + int(rng.integers(10, 120))), color, -1)
        elif kind == 1:
            cv2.line(img, (x, y), (int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT))), color,
                     int(rng.integers(1, 5)))
        else:
            cv2.putText(img, "MOT CUA 1.001193", (x, y), cv2.FONT_HERSHEY_SIMPLEX, float(rng.uniform(0.4, 1.2)),
                        color, int(rng.integers(1, 3)))
    return img


def place(canvas: np.ndarray, code: np.ndarray, rng: np.random.Generator, cell: tuple[int, int, int, int]) -> None:
    """Warp `code` into `cell` (x, y, w, h) of `canvas` with rotation and perspective."""
    x0, y0, cw, ch = cell
    h, w = code.shape
    # What a camera resolves is pixels per module: 2.2 (barely) to 6 (close up), within the cell.
    side = min(float(rng.uniform(2.2, 6.0)) * w, 0.95 * min(cw, ch))
    angle = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    unit = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) @ rot.T
    unit += rng.uniform(-0.12, 0.12, (4, 2))  # perspective: a poster seen at an angle
    # Shrink until the whole code lies inside its cell: a clipped code is not a fair test.
    reach = np.abs(unit).max(axis=0) * 2
    side = min(side, 0.98 * cw / reach[0], 0.98 * ch / reach[1])
    span = reach * side / 2
    cx = x0 + cw / 2 + rng.uniform(-1, 1) * max(0.0, cw / 2 - span[0])
    cy = y0 + ch / 2 + rng.uniform(-1, 1) * max(0.0, ch / 2 - span[1])
    corners = unit * side + [cx, cy]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    m = cv2.getPerspectiveTransform(src, np.float32(corners))
    warped = cv2.warpPerspective(code, m, (canvas.shape[1], canvas.shape[0]), flags=cv2.INTER_AREA,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = cv2.warpPerspective(np.full_like(code, 255), m, (canvas.shape[1], canvas.shape[0]),
                               flags=cv2.INTER_LINEAR)
    paper = rng.integers(200, 256)
    ink = rng.integers(0, 60)
    tone = (warped.astype(np.float32) / 255.0) * (paper - ink) + ink
    alpha = mask.astype(np.float32)[..., None] / 255.0
    canvas[:] = (canvas * (1 - alpha) + tone[..., None] * alpha).astype(np.uint8)


def degrade(img: np.ndarray, rng: np.random.Generator, tags: list[str]) -> np.ndarray:
    if rng.random() < 0.35:
        sigma = float(rng.uniform(0.8, 2.2))
        img = cv2.GaussianBlur(img, (0, 0), sigma)
        tags.append("blur")
    if rng.random() < 0.25:
        length = int(rng.integers(5, 13))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (length, length))
        img = cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))
        tags.append("motion")
    if rng.random() < 0.35:
        lo, hi = int(rng.integers(60, 120)), int(rng.integers(140, 190))
        img = (lo + img.astype(np.float32) * (hi - lo) / 255.0).astype(np.uint8)
        tags.append("lowcontrast")
    if rng.random() < 0.3:
        glare = np.zeros(img.shape[:2], np.float32)
        cv2.circle(glare, (int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT))),
                   int(rng.integers(40, 160)), float(rng.uniform(80, 200)), -1)
        glare = cv2.GaussianBlur(glare, (0, 0), 30)
        img = np.clip(img.astype(np.float32) + glare[..., None], 0, 255).astype(np.uint8)
        tags.append("glare")
    if rng.random() < 0.4:
        noise = rng.normal(0, rng.uniform(5, 22), img.shape)
        img = np.clip(img + noise, 0, 255).astype(np.uint8)
        tags.append("noise")
    if rng.random() < 0.5:
        quality = int(rng.integers(15, 60))
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        img = cv2.imdecode(enc, cv2.IMREAD_COLOR)
        tags.append("jpeg")
    return img


def make_frame(rng: np.random.Generator) -> Sample:
    canvas = clutter(rng)
    count = int(rng.choice([0, 1, 1, 1, 1, 2, 2, 3]))
    cells = {0: [], 1: [(0, 0, WIDTH, HEIGHT)],
             2: [(0, 0, WIDTH // 2, HEIGHT), (WIDTH // 2, 0, WIDTH // 2, HEIGHT)],
             3: [(0, 0, WIDTH // 2, HEIGHT // 2), (WIDTH // 2, 0, WIDTH // 2, HEIGHT // 2),
                 (WIDTH // 4, HEIGHT // 2, WIDTH // 2, HEIGHT // 2)]}[count]
    texts: list[str] = []
    tags = [f"codes={count}"]
    for index, cell in enumerate(cells):
        text = payload(rng, index)
        while text in texts:
            text += "."
        texts.append(text)
        place(canvas, qr_image(text, module_px=1), rng, cell)
    return Sample(degrade(canvas, rng, tags), texts, tags)


def make_set(count: int, seed: int = 1) -> list[Sample]:
    """`count` frames, the same for the same seed."""
    rng = np.random.default_rng(seed)
    return [make_frame(rng) for _ in range(count)]
