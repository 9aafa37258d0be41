"""SMS texts: Vietnamese templates, diacritics folding to GSM-7, splitting into parts (pure, no I/O).

Many phones and gateways still split or mangle UCS-2, so `ascii=True` folds every text to the
GSM 03.38 basic alphabet (no diacritics: "Kết quả" -> "Ket qua") and keeps it to ONE 160-character
part, dropping the optional tail (the rating hint) first. With diacritics a text is UCS-2: 70
characters in one part, 67 per part when concatenated (the 6-byte UDH takes the rest).
"""

from __future__ import annotations

import datetime as dt
import string
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.errors import ConfigError

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67
# GSM 03.38 basic alphabet (one septet each); the extension table (^{}[]~|€\) costs two: folded away.
GSM7_BASIC = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
                 "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")

# Each kind: (main text, optional tail). {receipt} {compartment} {pin} {deadline} {office} {code} {score}.
DEFAULT_TEMPLATES: dict[str, tuple[str, str]] = {
    "result_ready": ("{office}: kết quả hồ sơ {receipt} đã sẵn sàng tại tủ nhận kết quả, ngăn {compartment}. "
                     "Mã PIN: {pin}. Hạn nhận: {deadline}.",
                     " Đánh giá: nhắn DG {receipt} 1-5."),
    "reminder": ("{office}: hồ sơ {receipt} đang chờ Ông/Bà tại tủ, ngăn {compartment}, hạn nhận {deadline}. "
                 "Dùng mã PIN đã gửi.", ""),
    "expired": ("{office}: hồ sơ {receipt} đã quá hạn nhận tại tủ ({deadline}). "
                "Ông/Bà vui lòng liên hệ bộ phận một cửa.", ""),
    "otp": ("Mã xác nhận đánh giá hồ sơ {receipt}: {code} (hiệu lực 10 phút). Không chia sẻ mã này.", ""),
    "rating_ok": ("Cảm ơn Ông/Bà đã đánh giá hồ sơ {receipt}: {score}/5.", ""),
    "rating_wrong_phone": ("Số điện thoại này không gắn với hồ sơ {receipt} nên đánh giá chưa được ghi nhận. "
                           "Xin cảm ơn Ông/Bà.", ""),
    "rating_unknown": ("Không tìm thấy hồ sơ {receipt}. Ông/Bà vui lòng kiểm tra lại mã hồ sơ. Xin cảm ơn.", ""),
    "rating_syntax": ("Cú pháp đánh giá: DG <mã hồ sơ> <điểm 1-5>, ví dụ: DG 000.00.01.H29-261207-0001 5. "
                      "Xin cảm ơn Ông/Bà.", ""),
}
PLACEHOLDERS = {"receipt", "compartment", "pin", "deadline", "office", "code", "score"}


def fold(text: str) -> str:
    """Vietnamese (or any) text -> GSM-7 basic characters: diacritics dropped, đ/Đ -> d/D, the rest '?'."""
    text = text.replace("đ", "d").replace("Đ", "D")
    out = []
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.combining(ch):
            continue
        ch = {"“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "—": "-", "…": "...", "\u00a0": " "}.get(ch, ch)
        out.extend(c if c in GSM7_BASIC else "?" for c in ch)
    return "".join(out)


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC for ch in text)


def split_parts(text: str) -> list[str]:
    """The parts a phone will reassemble: one if it fits, else 153 (GSM-7) / 67 (UCS-2) per part."""
    single, part = (GSM7_SINGLE, GSM7_PART) if is_gsm7(text) else (UCS2_SINGLE, UCS2_PART)
    if len(text) <= single:
        return [text]
    return [text[i:i + part] for i in range(0, len(text), part)]


@dataclass(frozen=True)
class Texts:
    """The templates of one office: defaults, overridden per kind by a TOML file."""

    office: str = "Bộ phận một cửa"
    ascii: bool = False
    tz: str = "Asia/Ho_Chi_Minh"
    templates: dict = field(default_factory=lambda: dict(DEFAULT_TEMPLATES))

    @classmethod
    def load(cls, path: str | None, *, office: str | None = None, ascii: bool = False,
             tz: str = "Asia/Ho_Chi_Minh") -> "Texts":
        """`path`: TOML with `office = "…"` and `[templates]` kind = "text" or ["text", "tail"]."""
        templates, problems = dict(DEFAULT_TEMPLATES), []
        data = {}
        if path:
            try:
                data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as err:
                raise ConfigError(f"--sms-templates {path}: {err}") from err
        for kind, value in (data.get("templates") or {}).items():
            if kind not in DEFAULT_TEMPLATES:
                problems.append(f"templates.{kind}: unknown kind; expected one of {sorted(DEFAULT_TEMPLATES)}")
                continue
            if not isinstance(value, (str, list)) or (isinstance(value, list) and not 1 <= len(value) <= 2):
                problems.append(f"templates.{kind}: expected text or [text, tail]")
                continue
            main, tail = (value, "") if isinstance(value, str) else (tuple(value) + ("",))[:2]
            for text in (main, tail):
                if not isinstance(text, str):
                    problems.append(f"templates.{kind}: expected text or [text, tail]")
                    continue
                try:
                    names = {f[1] for f in string.Formatter().parse(text) if f[1]}
                except ValueError as err:
                    problems.append(f"templates.{kind}: {err}")
                    continue
                if names - PLACEHOLDERS:
                    problems.append(f"templates.{kind}: unknown placeholder(s) {sorted(names - PLACEHOLDERS)}; "
                                    f"expected {sorted(PLACEHOLDERS)}")
            templates[kind] = (main, tail)
        if problems:
            raise ConfigError(problems)
        return cls(office=office or data.get("office") or cls.office, ascii=ascii, tz=tz, templates=templates)

    def render(self, kind: str, **values) -> str:
        main, tail = self.templates[kind]
        deadline = values.get("deadline")
        if isinstance(deadline, (int, float)):
            values["deadline"] = dt.datetime.fromtimestamp(deadline, ZoneInfo(self.tz)).strftime("%d/%m/%Y")
        values.setdefault("office", self.office)
        values = {k: "" if v is None else v for k, v in values.items()}
        for name in PLACEHOLDERS:
            values.setdefault(name, "")
        text, extra = main.format(**values), tail.format(**values)
        if not self.ascii:
            return text + extra
        text, extra = fold(text), fold(extra)
        if len(text) + len(extra) <= GSM7_SINGLE:
            return text + extra
        if len(text) <= GSM7_SINGLE:
            return text
        # Still too long (a long office name or dossier code): shorten the office name, never the PIN.
        office = fold(self.office)
        cut = max(0, len(office) - (len(text) - GSM7_SINGLE))
        return fold(main.format(**{**values, "office": self.office[:cut].rstrip()}))[:GSM7_SINGLE]
