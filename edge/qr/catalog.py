"""The procedure catalog in the store: import from CSV/JSON with validation, and lookups.

Synchronous and usable without the QR service (the kiosk calls `lookup(store, code)`). An
import is all or nothing: every problem of the file is reported with its row and column, and
nothing is written unless the whole file is valid.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from edge.qr.codes import PROCEDURE_RE, UUID_RE, procedure_fields
from edge.qr.errors import CatalogError
from edge.store import Store

MIGRATIONS = [
    """
    CREATE TABLE qr_procedure (
        code            TEXT PRIMARY KEY,   -- national code, or a province/online variant
        name            TEXT NOT NULL,      -- Vietnamese name as published
        name_en         TEXT NOT NULL DEFAULT '',
        level           TEXT NOT NULL DEFAULT '',
        agency          TEXT NOT NULL DEFAULT '',
        fee             TEXT NOT NULL DEFAULT '',
        processing_days INTEGER,            -- working days; 0 = the same day; NULL unknown
        papers          TEXT NOT NULL DEFAULT '[]',  -- JSON list of required papers
        queue_service   TEXT NOT NULL DEFAULT '',    -- pager service id at the reception desk
        uuid            TEXT UNIQUE,        -- id on the 2026 national portal, when known
        updated         REAL NOT NULL
    );
    """,
]

COLUMNS = ("code", "name", "name_en", "level", "agency", "fee", "processing_days", "papers", "queue_service", "uuid")
LEVELS = ("", "trung ương", "tỉnh", "huyện", "xã")
MAX_FILE_BYTES = 5_000_000
MAX_ROWS = 20_000
SAMPLE = Path(__file__).with_name("data") / "catalog.csv"
_SERVICE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def setup(store: Store) -> None:
    """Create or upgrade the catalog tables (idempotent)."""
    store.migrate("qr", MIGRATIONS)


# -- reading files -----------------------------------------------------------------------------

def read_file(path: str | Path) -> list[dict]:
    """Validated rows of a CSV (UTF-8, header row) or JSON (list of objects) catalog file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CatalogError(f"{path}: {size} bytes, more than the {MAX_FILE_BYTES} a catalog may have")
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError as err:
        raise CatalogError(f"{path}: no such file") from err
    except UnicodeDecodeError as err:
        raise CatalogError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except OSError as err:
        raise CatalogError(f"{path}: cannot read ({err.strerror})") from err
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise CatalogError(f"{path}: not valid JSON: {err}") from err
        if isinstance(data, dict) and isinstance(data.get("procedures"), list):
            data = data["procedures"]
        if not isinstance(data, list):
            raise CatalogError(f"{path}: expected a JSON list of procedures (or {{\"procedures\": [...]}})")
        return validate_rows(data, str(path))
    return validate_rows(_csv_rows(text, str(path)), str(path))


def _csv_rows(text: str, label: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise CatalogError(f"{label}: empty file (expected a header row: {', '.join(COLUMNS)})")
    unknown = [c for c in reader.fieldnames if c not in COLUMNS]
    if unknown:
        raise CatalogError(f"{label}: unknown column(s) {unknown}; expected some of {list(COLUMNS)}")
    rows = []
    try:
        for row in reader:
            if None in row:
                raise CatalogError(f"{label}: line {reader.line_num}: more fields than columns")
            rows.append({k: v for k, v in row.items() if v is not None})
    except csv.Error as err:
        raise CatalogError(f"{label}: line {reader.line_num}: {err}") from err
    return rows


def validate_rows(rows: list, label: str = "catalog") -> list[dict]:
    """Normalised rows, or CatalogError listing every problem ('row N: column: found …, expected …')."""
    problems: list[str] = []
    if len(rows) > MAX_ROWS:
        raise CatalogError(f"{label}: {len(rows)} rows, more than {MAX_ROWS}")
    seen: dict[str, int] = {}
    seen_uuid: dict[str, int] = {}
    result = []
    for number, raw in enumerate(rows, start=1):
        where = f"{label}: row {number}"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected an object, found {type(raw).__name__}")
            continue
        row, row_problems = _validate_row(raw)
        problems.extend(f"{where}: {p}" for p in row_problems)
        if row_problems:
            continue
        if row["code"] in seen:
            problems.append(f"{where}: code: {row['code']!r} already on row {seen[row['code']]}")
            continue
        if row["uuid"] and row["uuid"] in seen_uuid:
            problems.append(f"{where}: uuid: already on row {seen_uuid[row['uuid']]}")
            continue
        seen[row["code"]] = number
        if row["uuid"]:
            seen_uuid[row["uuid"]] = number
        result.append(row)
    if problems:
        raise CatalogError(problems)
    if not result:
        raise CatalogError(f"{label}: no procedures")
    return result


def _validate_row(raw: dict) -> tuple[dict, list[str]]:
    problems = [f"{k}: unknown column; expected some of {list(COLUMNS)}" for k in raw if k not in COLUMNS]

    def text(name: str, limit: int, required: bool = False) -> str:
        value = raw.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            problems.append(f"{name}: found {value!r}, expected text")
            return ""
        value = value.strip()
        if required and not value:
            problems.append(f"{name}: missing, expected text")
        elif len(value) > limit:
            problems.append(f"{name}: {len(value)} characters, expected at most {limit}")
        elif any(ord(c) < 0x20 for c in value):
            problems.append(f"{name}: contains control characters")
        return value

    row = {"code": text("code", 40, True), "name": text("name", 300, True), "name_en": text("name_en", 300),
           "level": text("level", 20), "agency": text("agency", 200), "fee": text("fee", 200),
           "queue_service": text("queue_service", 32), "uuid": text("uuid", 36).lower()}
    if row["code"] and not PROCEDURE_RE.fullmatch(row["code"]):
        problems.append(f"code: found {row['code']!r}, expected a procedure code such as 1.001193 "
                        "or 1.011441.000.00.00.H38")
    if row["level"] not in LEVELS:
        problems.append(f"level: found {row['level']!r}, expected one of {[l for l in LEVELS if l]} or empty")
    if row["queue_service"] and not _SERVICE_RE.fullmatch(row["queue_service"]):
        problems.append(f"queue_service: found {row['queue_service']!r}, expected a pager service id (a-z 0-9 _ -)")
    if row["uuid"] and not UUID_RE.fullmatch(row["uuid"]):
        problems.append(f"uuid: found {row['uuid']!r}, expected a UUID")
    row["processing_days"] = _days(raw.get("processing_days"), problems)
    row["papers"] = _papers(raw.get("papers"), problems)
    return row, problems


def _days(value, problems: list[str]) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 365:
        problems.append(f"processing_days: found {value!r}, expected whole working days 0..365 (0 = same day)")
        return None
    return value


def _papers(value, problems: list[str]) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):  # CSV: papers separated by ';'
        value = [p.strip() for p in value.split(";") if p.strip()]
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        problems.append("papers: expected a list of texts (CSV: separated by ';')")
        return []
    if len(value) > 40 or any(len(p) > 300 for p in value):
        problems.append("papers: expected at most 40 papers of at most 300 characters")
        return []
    return [p.strip() for p in value]


# -- the store ---------------------------------------------------------------------------------

def import_rows(store: Store, rows: list[dict], *, actor: str = "cli", replace: bool = False) -> dict:
    """Write validated rows in one transaction (with an audit record and an event).

    `replace` deletes procedures not in `rows`; otherwise rows are added or updated.
    """
    setup(store)
    now = store.clock()
    with store.transaction() as tx:
        existing = {r[0] for r in tx.execute("SELECT code FROM qr_procedure").fetchall()}
        codes = {r["code"] for r in rows}
        removed = 0
        if replace:
            stale = sorted(existing - codes)
            for code in stale:
                tx.execute("DELETE FROM qr_procedure WHERE code = ?", (code,))
            removed = len(stale)
        # A uuid moving to another code: clear it first so the UNIQUE constraint holds.
        for row in rows:
            if row["uuid"]:
                tx.execute("UPDATE qr_procedure SET uuid = NULL WHERE uuid = ? AND code != ?", (row["uuid"], row["code"]))
        for row in rows:
            tx.execute(
                "INSERT INTO qr_procedure(code, name, name_en, level, agency, fee, processing_days, papers, "
                "queue_service, uuid, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(code) DO UPDATE SET name=excluded.name, name_en=excluded.name_en, "
                "level=excluded.level, agency=excluded.agency, fee=excluded.fee, "
                "processing_days=excluded.processing_days, papers=excluded.papers, "
                "queue_service=excluded.queue_service, uuid=excluded.uuid, updated=excluded.updated",
                (row["code"], row["name"], row["name_en"], row["level"], row["agency"], row["fee"],
                 row["processing_days"], json.dumps(row["papers"], ensure_ascii=False),
                 row["queue_service"], row["uuid"] or None, now),
            )
        added = len(codes - existing)
        summary = {"added": added, "updated": len(codes & existing), "removed": removed,
                   "total": tx.execute("SELECT count(*) FROM qr_procedure").fetchone()[0]}
        tx.audit(actor, "qr_catalog_import", **summary)
        tx.emit("qr", "catalog_imported", **summary)
    return summary


def import_file(store: Store, path: str | Path, *, actor: str = "cli", replace: bool = False) -> dict:
    return import_rows(store, read_file(path), actor=actor, replace=replace)


def count(store: Store) -> int:
    setup(store)
    return store.query("SELECT count(*) FROM qr_procedure")[0][0]


def lookup(store: Store, code: str) -> dict | None:
    """The procedure for a code, a province/online variant of a catalogued code, or a portal UUID.

    The answer has every catalog column plus `matched` (the catalog code that answered).
    """
    if not isinstance(code, str) or not 0 < len(code) <= 64:
        return None
    setup(store)
    code = code.strip()
    candidates = [code]
    fields = procedure_fields(code)
    if fields is not None and fields["base"] != code:
        # 1.011441.000.00.00.H38.02 -> 1.011441.000.00.00.H38 -> 1.011441
        if "online_variant" in fields and "agency" in fields:
            candidates.append(f"{fields['base']}.{fields['agency']}")
        candidates.append(fields["base"])
    for candidate in candidates:
        rows = store.query("SELECT * FROM qr_procedure WHERE code = ?", (candidate,))
        if rows:
            return _row(rows[0])
    if UUID_RE.fullmatch(code):
        rows = store.query("SELECT * FROM qr_procedure WHERE uuid = ?", (code.lower(),))
        if rows:
            return _row(rows[0])
    return None


def procedures(store: Store) -> list[dict]:
    setup(store)
    return [_row(r) for r in store.query("SELECT * FROM qr_procedure ORDER BY code")]


def _row(row) -> dict:
    result = dict(row)
    result["papers"] = json.loads(result["papers"])
    result["matched"] = result["code"]
    return result
