"""The QR code of the chip-based citizen ID card (căn cước công dân 2021, thẻ căn cước 2024).

Layout (public sources in docs/qr.md): fields separated by `|`, in this order —
12-digit personal ID number | old 9-digit ID number (may be empty) | full name |
date of birth ddmmyyyy | sex (Nam/Nữ) | place of residence | date of issue ddmmyyyy.
The 2021 card (Thông tư 06/2021/TT-BCA) prints it on the front. The 2024 card (Thông tư
16/2024/TT-BCA, from 1 July 2024) moves the QR to the back and names the same data plus a
cancelled ID number "if any"; no public source gives its exact serialisation, so trailing fields
after the seventh are accepted and kept apart (`extra`), never guessed at.

The 12-digit number (Thông tư 07/2016/TT-BCA, later 59/2021/TT-BCA): 3 digits province of birth
registration, 1 digit sex and century (0/1 male/female born 1900–1999, 2/3 2000–2099, 4/5
2100–2199 …), 2 digits year of birth, 6 random digits.

This is personal data (Decree 13/2023, Law 91/2025/QH15): a text that looks like a card is
always of this kind, valid or not, so that callers keep it out of logs, events and stores; the
reasons given never quote the card's values. Pure: no I/O, no imports from the rest of `edge`.
"""

from __future__ import annotations

import re
from datetime import date

KIND = "citizen_id"

# Province codes of the 12-digit number (Thông tư 07/2016/TT-BCA, annex): the 63 provinces as
# they were in 2016. Numbers already issued keep their code after the 2025 merger of provinces.
PROVINCE_CODES = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn", "008": "Tuyên Quang",
    "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu", "014": "Sơn La", "015": "Yên Bái",
    "017": "Hòa Bình", "019": "Thái Nguyên", "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang",
    "025": "Phú Thọ", "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định", "037": "Ninh Bình",
    "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh", "044": "Quảng Bình", "045": "Quảng Trị",
    "046": "Thừa Thiên Huế", "048": "Đà Nẵng", "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định",
    "054": "Phú Yên", "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng", "070": "Bình Phước",
    "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai", "077": "Bà Rịa - Vũng Tàu",
    "079": "TP Hồ Chí Minh", "080": "Long An", "082": "Tiền Giang", "083": "Bến Tre", "084": "Trà Vinh",
    "086": "Vĩnh Long", "087": "Đồng Tháp", "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ",
    "093": "Hậu Giang", "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}
FIELDS = ("id_number", "old_id_number", "name", "birth_date", "sex", "residence", "issue_date")
SEXES = {"nam": "Nam", "nữ": "Nữ", "nu": "Nữ"}
FIRST_ISSUE_YEAR = 2016  # the first 12-digit cards (căn cước công dân mã vạch)
MAX_NAME_CHARS = 100
MAX_RESIDENCE_CHARS = 300
# A card's text starts with its 12-digit number and a bar: what makes a text private here.
_LOOKS_LIKE_A_CARD = re.compile(r"\s*\d{12}\s*\|")
_NAME_RE = re.compile(r"[^\W\d_]+(?:[ '.\-][^\W\d_]+)*")  # letters (any script), single separators


def looks_like_card(text: str) -> bool:
    """True for a text that starts like a card's QR (12 digits and a bar), valid or not."""
    return bool(_LOOKS_LIKE_A_CARD.match(text))


def parse_card(text: str, today: date | None = None) -> tuple[dict, str | None]:
    """(fields, None) for a valid card, or (fields read so far, why not valid) — never raises.

    The reason names the field that is wrong, never its value.
    """
    parts = [p.strip() for p in text.strip().split("|")]
    if len(parts) < len(FIELDS):
        return {}, f"citizen ID card QR with {len(parts)} fields, expected at least {len(FIELDS)}"
    fields: dict = dict(zip(FIELDS, parts))
    extra = parts[len(FIELDS):]
    if extra:
        fields["extra"] = extra
    today = today or date.today()
    for check in (_check_numbers, _check_name, _check_sex, _check_dates, _check_residence, _check_number_digits):
        why = check(fields, today)
        if why is not None:
            return fields, why
    fields["province"] = PROVINCE_CODES[fields["id_number"][:3]]
    return fields, None


def _check_numbers(fields: dict, today: date) -> str | None:
    if not re.fullmatch(r"\d{12}", fields["id_number"]):
        return "the ID number is not 12 digits"
    if fields["old_id_number"] and not re.fullmatch(r"\d{9}|\d{12}", fields["old_id_number"]):
        return "the old ID number is neither empty nor 9 (or 12) digits"
    if fields["id_number"][:3] not in PROVINCE_CODES:
        return "the ID number's first three digits are not a province code"
    return None


def _check_name(fields: dict, today: date) -> str | None:
    name = " ".join(fields["name"].split())
    if not name or len(name) > MAX_NAME_CHARS or not _NAME_RE.fullmatch(name):
        return "the full name is empty, too long or not made of letters"
    fields["name"] = name
    return None


def _check_sex(fields: dict, today: date) -> str | None:
    sex = SEXES.get(fields["sex"].lower())
    if sex is None:
        return "the sex is neither Nam nor Nữ"
    fields["sex"] = sex
    return None


def _check_dates(fields: dict, today: date) -> str | None:
    born = _ddmmyyyy(fields["birth_date"])
    if born is None or born > today:
        return "the date of birth is not a past ddmmyyyy date"
    issued = _ddmmyyyy(fields["issue_date"])
    if issued is None or issued > today or issued < born or issued.year < FIRST_ISSUE_YEAR:
        return f"the date of issue is not a ddmmyyyy date between birth ({FIRST_ISSUE_YEAR} at the earliest) and today"
    fields["birth_date"], fields["issue_date"] = born.isoformat(), issued.isoformat()
    return None


def _check_residence(fields: dict, today: date) -> str | None:
    residence = " ".join(fields["residence"].split())
    if not residence or len(residence) > MAX_RESIDENCE_CHARS:
        return "the place of residence is empty or too long"
    fields["residence"] = residence
    return None


def _check_number_digits(fields: dict, today: date) -> str | None:
    """The 4th digit gives sex and century, the 5th–6th the year of birth: both must agree."""
    number = fields["id_number"]
    code = int(number[3])
    sex = "Nam" if code % 2 == 0 else "Nữ"
    year = 1900 + 100 * (code // 2) + int(number[4:6])
    if sex != fields["sex"]:
        return "the ID number's sex digit does not match the sex field"
    if year != int(fields["birth_date"][:4]):
        return "the ID number's century and year digits do not match the date of birth"
    return None


def _ddmmyyyy(digits: str) -> date | None:
    if not re.fullmatch(r"\d{8}", digits):
        return None
    try:
        return date(int(digits[4:]), int(digits[2:4]), int(digits[:2]))
    except ValueError:
        return None


def mask(text: str) -> str:
    """What a log or a screen of staff tools may show of a card's text: nothing of its values."""
    return f"<citizen ID card, {len(text)} characters, not shown>"
