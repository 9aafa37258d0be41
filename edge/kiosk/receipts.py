"""The one dossier-code rule shared by staff loading and citizen pickup.

A code that the loading screen accepts must be one the pickup screen can find, so both go
through `dossier_code` (the QR service's parser, edge.qr.codes: the Thông tư 01/2018 form
`000.00.01.H29-261207-0001`, the shortened forms seen in the wild, or a lookup URL carrying one).
"""

from __future__ import annotations

import re

from edge.qr.codes import parse, receipt_fields

EXAMPLE = "000.00.01.H29-261207-0001"
MAX_CHARS = 512


def dossier_code(text: str | None) -> str | None:
    """The dossier code in a scanned payload (bare code or lookup URL) or a typed code; None if none."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text or len(text) > MAX_CHARS:
        return None
    parsed = parse(text)  # URLs first, with their case intact (parameter names are case-sensitive)
    if parsed.kind == "receipt":
        return parsed.fields["code"]
    typed = re.sub(r"\s+", "", text).upper()  # typed in lower case or with stray spaces
    fields = receipt_fields(typed) if len(typed) <= 64 else None
    return fields["code"] if fields else None


def require_dossier_code(text: str | None) -> str:
    """The dossier code in `text`, or a ValueError that says what a dossier code looks like."""
    code = dossier_code(text)
    if code is None:
        shown = (text or "").strip()[:40]
        # "bad_input: receipt code" is how the locker words a bad code: the staff screens translate both alike.
        raise ValueError(f"bad_input: receipt code '{shown}' is not a dossier code: expected agency id-YYMMDD-number, "
                         f"e.g. {EXAMPLE} (Thông tư 01/2018/TT-VPCP), the only form the pickup kiosk can find")
    return code
