"""What a scanned QR text means: procedure codes and URLs, receipts, appointments, payments,
citizen ID cards (edge.qr.citizen_id: personal data, never logged, published or stored).

Pure: no I/O, no imports from the rest of `edge` but the pure edge.qr.citizen_id. Every recogniser is strict (full match,
anchored regexes without nested repetition, so the time is linear in the text) and the text is
capped before any regex runs. Formats and their public sources: docs/qr.md and shared/qr.md.
No URL is ever fetched or opened: URLs are only split into host, path and query here.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import date

from edge.qr import citizen_id

KINDS = ("procedure", "procedure_url", "receipt", "appointment", "payment", citizen_id.KIND, "unknown")
PRIVATE_KINDS = (citizen_id.KIND,)  # never logged in clear, never published, never stored
PROCEDURE_KINDS = ("procedure", "procedure_url")  # a posted procedure code: reception shows its catalog entry
RECEIPT_KIND = "receipt"  # a dossier's receipt code: what the pickup kiosk collects with
# Default cap: the most characters a QR symbol holds (7,089 digits, version 40-L); the parsers,
# not the decoder, decide what a long text means. The service passes its configured one.
MAX_TEXT_CHARS = 7089
DEFAULT_ALLOWED_HOSTS = ("gov.vn",)  # a host matches itself and every subdomain

# 1.001193, 1.011441.000.00.00.H38 (province version), 1.013229.01 / ....H55.02 (online variant)
PROCEDURE_RE = re.compile(
    r"([1-9])\.(\d{6})(?:\.(\d{3})\.([0-9A-Z]{2})\.([0-9A-Z]{2})\.([A-Z]\d{2}))?(?:\.(\d{2}))?"
)
# Thông tư 01/2018/TT-VPCP art. 19: agency id - YYMMDD - running number of the day.
RECEIPT_STRICT_RE = re.compile(
    r"(\d{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z]\d{2})-(\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))-(\d{4})"
)
# Seen in the wild: shortened agency parts (38.98.H29-210519-0013) and longer sequences.
RECEIPT_LENIENT_RE = re.compile(
    r"([0-9A-Z]{2,3}(?:\.[0-9A-Z]{2,3}){0,3})-(\d{6})-(\d{4,6})"
)
# Local convention of this project (not a national format): LH-<site id>-YYMMDD-NNNN.
APPOINTMENT_RE = re.compile(r"LH-([a-z0-9][a-z0-9-]{0,62})-(\d{6})-(\d{4})", re.IGNORECASE)
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# Query parameters carrying a procedure code, in the order they are trusted (shared/qr.md §2).
PROCEDURE_PARAMS = ("MaTTHCDP", "MaTTHC", "ma", "ma_tt", "ma_thu_tuc", "MaDVC")
UUID_PARAMS = ("formalityId",)
RECEIPT_PARAMS = ("ma_ho_so", "maHoSo", "MaHoSo", "soBienNhan", "so_bien_nhan", "ma")
APPOINTMENT_PARAMS = ("lich_hen", "ma_lich_hen", "appointment")


@dataclass(frozen=True)
class ParsedCode:
    """The meaning of one QR text: a kind from KINDS, its fields, and why when not usable."""

    kind: str
    fields: dict = field(default_factory=dict)
    reason: str | None = None

    def __repr__(self) -> str:
        fields = "<not shown>" if self.kind in PRIVATE_KINDS else repr(self.fields)
        return f"ParsedCode(kind={self.kind!r}, fields={fields}, reason={self.reason!r})"

    @property
    def code(self) -> str | None:
        """The reference worth logging (procedure code, uuid, dossier or appointment code)."""
        return self.fields.get("code") or self.fields.get("uuid")


def parse(text: str, *, allowed_hosts: tuple[str, ...] | list[str] = DEFAULT_ALLOWED_HOSTS,
          max_chars: int = MAX_TEXT_CHARS) -> ParsedCode:
    """Recognise `text`; never raises for any str (bad input gives kind 'unknown' and a reason)."""
    if not isinstance(text, str):
        return ParsedCode("unknown", reason=f"not text ({type(text).__name__})")
    if len(text) > max_chars:
        return ParsedCode("unknown", reason=f"text of {len(text)} characters exceeds the limit of {max_chars}")
    stripped = text.strip()
    if not stripped:
        return ParsedCode("unknown", reason="empty text")
    if stripped.startswith("000201"):
        return parse_payment(stripped)
    if citizen_id.looks_like_card(stripped):
        fields, why = citizen_id.parse_card(stripped)
        return ParsedCode(citizen_id.KIND, fields, why)
    for recognise in (_procedure, _receipt, _appointment):
        found = recognise(stripped)
        if found is not None:
            return found
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", stripped):
        return parse_url(stripped, allowed_hosts)
    return ParsedCode("unknown", reason="not a procedure, receipt, appointment or payment code")


def safe_repr(text: str, kind: str) -> str:
    """`repr(text)`, except for private kinds (a citizen ID card), which are masked."""
    return citizen_id.mask(text) if kind in PRIVATE_KINDS else repr(text)


# -- bare codes --------------------------------------------------------------------------------

def procedure_fields(code: str) -> dict | None:
    """Fields of a procedure code (`None` when `code` is not one)."""
    m = PROCEDURE_RE.fullmatch(code)
    if m is None:
        return None
    fields = {"code": code, "base": f"{m[1]}.{m[2]}"}
    if m[6]:
        fields["agency"] = f"{m[3]}.{m[4]}.{m[5]}.{m[6]}"
        fields["province"] = m[6]
    if m[7]:
        fields["online_variant"] = m[7]
    return fields


def _procedure(text: str) -> ParsedCode | None:
    fields = procedure_fields(text)
    return None if fields is None else ParsedCode("procedure", fields)


def receipt_fields(code: str) -> dict | None:
    """Fields of a dossier (receipt) code, strict form first, then the lenient one."""
    m = RECEIPT_STRICT_RE.fullmatch(code)
    strict = m is not None
    if m is None:
        m = RECEIPT_LENIENT_RE.fullmatch(code)
        if m is None:
            return None
    day = _yymmdd(m[2])
    if day is None:
        return None
    return {"code": code, "agency": m[1], "date": day.isoformat(), "seq": m[3], "strict": strict}


def _receipt(text: str) -> ParsedCode | None:
    fields = receipt_fields(text)
    return None if fields is None else ParsedCode("receipt", fields)


def appointment_fields(code: str) -> dict | None:
    m = APPOINTMENT_RE.fullmatch(code)
    if m is None or not code[:3].upper() == "LH-":
        return None
    day = _yymmdd(m[2])
    if day is None:
        return None
    site = m[1].lower()
    return {"code": f"LH-{site}-{m[2]}-{m[3]}", "site": site, "date": day.isoformat(), "seq": m[3]}


def _appointment(text: str) -> ParsedCode | None:
    fields = appointment_fields(text)
    return None if fields is None else ParsedCode("appointment", fields)


def _yymmdd(digits: str) -> date | None:
    try:
        return date(2000 + int(digits[:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        return None


# -- URLs --------------------------------------------------------------------------------------

def host_allowed(host: str, allowed_hosts) -> bool:
    host = host.lower().rstrip(".")
    return any(host == h or host.endswith("." + h) for h in (a.lower().strip(".") for a in allowed_hosts))


def parse_url(text: str, allowed_hosts=DEFAULT_ALLOWED_HOSTS) -> ParsedCode:
    """A URL from an allowed https host carrying a procedure, receipt or appointment reference.

    The result never holds the URL itself (it may carry personal data): only the host and the
    recognised reference.
    """
    try:
        url = urllib.parse.urlsplit(text)
        host = url.hostname or ""
        url.port  # raises ValueError for a malformed port
    except ValueError:
        return ParsedCode("unknown", reason="malformed URL")
    if url.scheme.lower() != "https":
        return ParsedCode("unknown", {"host": host}, reason=f"URL scheme '{url.scheme}' is not https")
    if not host or not host_allowed(host, allowed_hosts):
        return ParsedCode("unknown", {"host": host}, reason=f"URL host '{host}' is not an allowed host")
    query = _query(url.query)
    base = {"host": host}
    for name in PROCEDURE_PARAMS:
        value = query.get(name)
        if value is None:
            continue
        fields = procedure_fields(value)
        if fields is not None:
            return ParsedCode("procedure_url", {**base, **fields, "param": name,
                                                **_executing_agency(query)})
        if name == "ma_thu_tuc" and value.isdigit():
            return ParsedCode("unknown", base,
                              reason=f"ma_thu_tuc={value[:12]} is a portal internal id, not a procedure code")
    uuid = _uuid_in(url.path, query)
    if uuid is not None:
        return ParsedCode("procedure_url", {**base, "uuid": uuid.lower()})
    for names, recognise, kind in ((RECEIPT_PARAMS, receipt_fields, "receipt"),
                                   (APPOINTMENT_PARAMS, appointment_fields, "appointment")):
        for name in names:
            value = query.get(name)
            fields = recognise(value) if value is not None else None
            if fields is not None:
                return ParsedCode(kind, {**base, **fields, "param": name})
    return ParsedCode("unknown", base, reason="URL of an allowed host without a recognised code")


def _query(query: str) -> dict[str, str]:
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=False, max_num_fields=50)
    except ValueError:
        return {}
    result: dict[str, str] = {}
    for key, value in pairs:
        result.setdefault(key, value.strip())  # the first occurrence wins, never a later one
    return result


def _executing_agency(query: dict[str, str]) -> dict:
    value = query.get("MaCoQuanThucHien", "")
    return {"executing_agency": value} if re.fullmatch(r"[0-9A-Z.]{2,40}", value) else {}


def _uuid_in(path: str, query: dict[str, str]) -> str | None:
    for name in UUID_PARAMS:
        if UUID_RE.fullmatch(query.get(name, "")):
            return query[name]
    segments = [s for s in path.split("/") if s]
    if len(segments) >= 2 and segments[-2] == "thu-tuc-hanh-chinh" and UUID_RE.fullmatch(segments[-1]):
        return segments[-1]
    return None


# -- EMVCo / VietQR ----------------------------------------------------------------------------

def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def parse_tlv(text: str) -> list[tuple[str, str]] | None:
    """EMVCo tag-length-value pairs (2-digit tag, 2-digit length); None if malformed."""
    items, i = [], 0
    while i < len(text):
        if i + 4 > len(text) or not text[i:i + 4].isdigit() or not text[i:i + 4].isascii():
            return None
        tag, length = text[i:i + 2], int(text[i + 2:i + 4])
        value = text[i + 4:i + 4 + length]
        if len(value) != length:
            return None
        items.append((tag, value))
        i += 4 + length
    return items


def parse_payment(text: str) -> ParsedCode:
    """An EMVCo merchant-presented payload: recognised, CRC checked, and always ignored."""
    items = parse_tlv(text)
    if not items or items[0] != ("00", "01"):
        return ParsedCode("unknown", reason="starts like an EMVCo payment code but is not valid TLV")
    if items[-1][0] != "63" or len(items[-1][1]) != 4:
        return ParsedCode("unknown", reason="EMVCo payment code without a final CRC (tag 63)")
    expected = crc16_ccitt_false(text[:-4].encode("utf-8"))
    if items[-1][1].upper() != f"{expected:04X}" or not re.fullmatch(r"[0-9A-F]{4}", items[-1][1]):
        return ParsedCode("unknown", reason="EMVCo payment code with a wrong CRC")
    tags = dict(items)
    fields: dict = {"scheme": "emvco"}
    if tags.get("01") in ("11", "12"):
        fields["dynamic"] = tags["01"] == "12"
    if "54" in tags:
        fields["amount"] = tags["54"]
    if "53" in tags:
        fields["currency"] = tags["53"]
    napas = dict(parse_tlv(tags.get("38", "")) or [])
    if napas.get("00") == "A000000727":
        fields["scheme"] = "vietqr"
        beneficiary = dict(parse_tlv(napas.get("01", "")) or [])
        if re.fullmatch(r"\d{6}", beneficiary.get("00", "")):
            fields["bank_bin"] = beneficiary["00"]  # the bank, never the account number
    elif "A000000775" in tags.get("26", ""):
        fields["scheme"] = "vnpay"
    return ParsedCode("payment", fields,
                      reason=f"{fields['scheme']} payment code: recognised and ignored (not an office code)")


# -- the dossier-code rule ---------------------------------------------------------------------------
# One rule for every route that puts a result in the locker (the loading screen, the MQTT `load`
# command, the locker's own demo) and for the pickup kiosk that finds it: a code staff can load is
# a code a citizen can collect. Moved here from edge.kiosk.receipts, which re-exports it.
DOSSIER_EXAMPLE = "000.00.01.H29-261207-0001"
DOSSIER_MAX_CHARS = 512  # a scanned lookup URL carrying a code; a typed code is at most 64


def dossier_code(text: str | None) -> str | None:
    """The dossier code in a scanned payload (bare code or lookup URL) or a typed code; None if none."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text or len(text) > DOSSIER_MAX_CHARS:
        return None
    parsed = parse(text)  # URLs first, with their case intact (parameter names are case-sensitive)
    if parsed.kind == "receipt":
        return parsed.fields["code"]
    typed = re.sub(r"\s+", "", text).upper()  # typed in lower case or with stray spaces
    fields = receipt_fields(typed) if len(typed) <= 64 else None
    return fields["code"] if fields else None


def not_a_dossier_code(text: object) -> str:
    """Why `text` is refused, in the words every route uses (after the reason word `bad_input`)."""
    shown = (text if isinstance(text, str) else type(text).__name__).strip()[:40]
    return (f"receipt code '{shown}' is not a dossier code: expected agency id-YYMMDD-number, "
            f"e.g. {DOSSIER_EXAMPLE} (Thông tư 01/2018/TT-VPCP), the only form the pickup kiosk can find")


def require_dossier_code(text: str | None) -> str:
    """The dossier code in `text`, or a ValueError that says what a dossier code looks like."""
    code = dossier_code(text)
    if code is None:
        # "bad_input: receipt code" is how the locker words a bad code: the staff screens translate both alike.
        raise ValueError(f"bad_input: {not_a_dossier_code(text or '')}")
    return code
