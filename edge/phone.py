"""Vietnamese mobile numbers: check, normalise to +84…, mask for logs (pure, no I/O).

A phone number is personal data (Decree 13/2023): it travels only on `…/locker/notify`, and
everywhere else (events, state, logs, audit) appears masked as `091****678`.
"""

from __future__ import annotations

import re
from typing import Any

from edge.errors import EdgeError

# Mobile prefixes since the 2018 renumbering: 03x Viettel, 05x Vietnamobile/Gmobile, 07x MobiFone,
# 08x VinaPhone/Viettel/MobiFone/Itel, 09x all. Ten digits with the leading 0.
NATIONAL_RE = re.compile(r"^0[35789]\d{8}$")
SEPARATORS = " .-()"
MESSAGE_VI = ("Số điện thoại không hợp lệ: cần số di động Việt Nam 10 chữ số bắt đầu bằng 03, 05, 07, 08, 09 "
              "(hoặc +84…).")
MESSAGE_EN = "Invalid phone number: expected a Vietnamese mobile number, 10 digits starting 03/05/07/08/09 (or +84…)."


class BadPhone(EdgeError, ValueError):
    """Error raised when a phone number is not a Vietnamese mobile number (the number itself is never echoed)."""

    def __init__(self, why: str):
        self.why = why
        self.message_vi, self.message_en = MESSAGE_VI, MESSAGE_EN
        super().__init__(f"phone: {why}; {MESSAGE_EN}")


def normalise(value: Any) -> str:
    """`0912 345 678`, `+84 912345678` -> `+84912345678`; raises BadPhone for anything else."""
    if not isinstance(value, str):
        raise BadPhone(f"must be text, found {type(value).__name__}")
    text = value.strip()
    for sep in SEPARATORS:
        text = text.replace(sep, "")
    if not text:
        raise BadPhone("empty")
    if text.startswith("+84"):
        text = "0" + text[3:]
    elif text.startswith("0084"):
        text = "0" + text[4:]
    if not text.isascii() or not text.isdigit():
        raise BadPhone("contains letters or symbols")
    if len(text) != 10:
        raise BadPhone(f"{len(text)} digits, expected 10")
    if not NATIONAL_RE.match(text):
        raise BadPhone("not a mobile prefix (03, 05, 07, 08, 09)")
    return "+84" + text[1:]


def optional(value: Any) -> str | None:
    """None or an empty field means no phone; anything else must be a valid number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return normalise(value)


def national(phone: str) -> str:
    """`+84912345678` -> `0912345678`."""
    return "0" + phone[3:] if phone.startswith("+84") else phone


def mask(phone: str | None) -> str | None:
    """`+84912345678` -> `091****678`: enough for staff to recognise, not to call."""
    if not phone:
        return None
    digits = national(phone)
    return digits[:3] + "*" * max(0, len(digits) - 6) + digits[-3:] if len(digits) > 6 else "***"


def redact(fields: dict) -> dict:
    """A copy of `fields` with every phone masked and every PIN hidden (for audit and logs)."""
    out = {}
    for key, value in fields.items():
        if key in ("phone", "phone_number") and isinstance(value, str):
            try:
                out[key] = mask(normalise(value))
            except BadPhone:
                out[key] = "***"
        elif key in ("pin", "otp") and value is not None:
            out[key] = "***"
        else:
            out[key] = value
    return out
