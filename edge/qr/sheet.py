"""Wall posters of procedure QR codes with their Vietnamese names: PDF (one A4 page each), PNG
or SVG (one file each). QR images by segno; PDF by fpdf2 with a Unicode TTF (DejaVu Sans)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import segno

from edge.qr.errors import QrError

PORTAL_URL = "https://dichvucong.gov.vn/p/home/dvc-chi-tiet-thu-tuc-hanh-chinh.html?ma_thu_tuc={code}"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # Debian fonts-dejavu-core
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",  # fonts-noto-core (in the Pi image)
)
TITLE = "Quét mã QR để xem thủ tục"
TITLE_EN = "Scan to see the procedure"


@dataclass(frozen=True)
class Poster:
    code: str
    name: str
    payload: str  # what the QR encodes
    subtitle: str = ""  # e.g. fee and processing time


def posters(procedures: list[dict], *, payload: str = "url", url_template: str = PORTAL_URL) -> list[Poster]:
    """One poster per procedure; `payload` 'url' (the portal page) or 'code' (the bare code)."""
    result = []
    for p in procedures:
        text = url_template.format(code=p["code"]) if payload == "url" else p["code"]
        bits = []
        if p.get("fee"):
            bits.append(f"Lệ phí: {p['fee']}")
        if p.get("processing_days") is not None:
            days = p["processing_days"]
            bits.append("Trả kết quả trong ngày" if days == 0 else f"Thời hạn: {days} ngày làm việc")
        result.append(Poster(p["code"], p["name"], text, " · ".join(bits)))
    return result


def find_font(path: str | None = None) -> str:
    for candidate in ([path] if path else FONT_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return candidate
    raise QrError(f"no Vietnamese-capable TTF font found ({path or ', '.join(FONT_CANDIDATES)}); "
                  "install Debian's fonts-dejavu-core or pass --font FILE.ttf")


def write(items: list[Poster], out: str | Path, fmt: str | None = None, *, font: str | None = None) -> list[Path]:
    """Write posters to `out` (a .pdf file, or a folder / .png / .svg name); returns the files."""
    if not items:
        raise QrError("no procedures to print")
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".") or "pdf").lower()
    if fmt == "pdf":
        return [_pdf(items, out if out.suffix else out / "posters.pdf", find_font(font))]
    if fmt not in ("png", "svg"):
        raise QrError(f"unknown poster format {fmt!r}; expected pdf, png or svg")
    folder = out.parent if out.suffix else out
    folder.mkdir(parents=True, exist_ok=True)
    if len(items) == 1 and out.suffix:
        targets = [out]
    else:
        targets = [folder / f"{_safe(p.code)}.{fmt}" for p in items]
    for poster, target in zip(items, targets):
        if fmt == "png":
            _png(poster, target, find_font(font))
        else:
            _svg(poster, target)
    return targets


def _safe(code: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in code)


def _qr(text: str) -> segno.QRCode:
    # 'h' error correction where it fits: posters get scratched, folded and photographed badly.
    return segno.make(text, error="h", micro=False, boost_error=True)


def _pdf(items: list[Poster], target: Path, font: str) -> Path:
    import logging

    from fpdf import FPDF
    from PIL import Image

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # font subsetting chatter

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_font("DejaVu", "", font)
    for poster in items:
        pdf.add_page()
        pdf.set_font("DejaVu", size=26)
        pdf.set_xy(15, 20)
        pdf.multi_cell(180, 11, TITLE, align="C")
        pdf.set_font("DejaVu", size=13)
        pdf.set_x(15)
        pdf.multi_cell(180, 7, TITLE_EN, align="C")
        buf = io.BytesIO()
        _qr(poster.payload).save(buf, kind="png", scale=20, border=4)
        pdf.image(Image.open(io.BytesIO(buf.getvalue())), x=45, y=55, w=120, h=120)
        pdf.set_xy(15, 185)
        pdf.set_font("DejaVu", size=22)
        pdf.multi_cell(180, 10, poster.name, align="C")
        pdf.set_x(15)
        pdf.set_font("DejaVu", size=16)
        pdf.multi_cell(180, 9, f"Mã thủ tục: {poster.code}", align="C")
        if poster.subtitle:
            pdf.set_x(15)
            pdf.set_font("DejaVu", size=12)
            pdf.multi_cell(180, 7, poster.subtitle, align="C")
    target.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(target))
    return target


def _png(poster: Poster, target: Path, font: str) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    width, height = 1240, 1754  # A4 at 150 dpi
    page = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(page)
    buf = io.BytesIO()
    _qr(poster.payload).save(buf, kind="png", scale=10, border=4)
    qr = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    qr = qr.resize((840, 840), Image.NEAREST)
    page.paste(qr, ((width - 840) // 2, 300))

    def centred(text: str, y: int, size: int) -> int:
        face = ImageFont.truetype(font, size)
        for line in _wrap(text, face, draw, width - 160):
            w = draw.textlength(line, font=face)
            draw.text(((width - w) / 2, y), line, font=face, fill="black")
            y += int(size * 1.3)
        return y

    centred(TITLE, 120, 64)
    centred(TITLE_EN, 210, 34)
    y = centred(poster.name, 1190, 56)
    y = centred(f"Mã thủ tục: {poster.code}", y + 20, 40)
    if poster.subtitle:
        centred(poster.subtitle, y + 20, 30)
    page.save(target)
    return target


def _wrap(text: str, face, draw, max_width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=face) > max_width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def _svg(poster: Poster, target: Path) -> Path:
    buf = io.BytesIO()
    code = _qr(poster.payload)
    code.save(buf, kind="svg", scale=1, border=4, xmldecl=False, svgns=True, nl=False)
    size = code.symbol_size(scale=1, border=4)[0]
    inner = buf.getvalue().decode("utf-8")
    # Nest segno's <svg> as a scaled child of an A4 page (mm units).
    inner = inner.replace("<svg ", f'<svg x="45" y="60" width="120" height="120" viewBox="0 0 {size} {size}" ', 1)
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<svg xmlns="http://www.w3.org/2000/svg" width="210mm" height="297mm" viewBox="0 0 210 297">',
        '<rect width="210" height="297" fill="white"/>',
        f'<text x="105" y="30" font-family="DejaVu Sans, sans-serif" font-size="11" text-anchor="middle">{escape(TITLE)}</text>',
        f'<text x="105" y="42" font-family="DejaVu Sans, sans-serif" font-size="6" text-anchor="middle">{escape(TITLE_EN)}</text>',
        inner,
        f'<text x="105" y="200" font-family="DejaVu Sans, sans-serif" font-size="9" text-anchor="middle">{escape(poster.name)}</text>',
        f'<text x="105" y="215" font-family="DejaVu Sans, sans-serif" font-size="7" text-anchor="middle">Mã thủ tục: {escape(poster.code)}</text>',
    ]
    if poster.subtitle:
        lines.append(f'<text x="105" y="228" font-family="DejaVu Sans, sans-serif" font-size="5" '
                     f'text-anchor="middle">{escape(poster.subtitle)}</text>')
    lines.append("</svg>")
    target.write_text("\n".join(lines), encoding="utf-8")
    return target
