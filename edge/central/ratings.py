"""Citizens' ratings tied to their phone: `DG <dossier> <1-5>` by SMS, or the `/danh-gia` web page
with a one-time code sent by SMS, so staff cannot rate on a citizen's behalf.

A rating counts only from the phone the result-ready SMS went to (`sms_messages`); one rating
per dossier, a new one replaces the old. Bad input (malformed text, unknown dossier, another
number, a flood of code requests) gets a clear, polite answer and stores no rating.
`list_ratings` adds the counter panel's 1-5 key presses (pager `rating` events) as channel
"counter". No phone number leaves this module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass

import psycopg

from edge import phone as phones
from edge.central import sms

CODE_TTL_S = 600
CODE_ATTEMPTS = 5
CODES_PER_PHONE_PER_HOUR = 3
REQUESTS_PER_CLIENT_PER_HOUR = 10
REPLIES_PER_PHONE_PER_HOUR = 5      # answers to DG texts: a flood of texts must not cost a flood of SMS
COMMENT_MAX = 500
RECEIPT_RE = re.compile(r"^[A-Z0-9][A-Z0-9._/-]{0,63}$")
# DG or ĐG (any case), the dossier code, a score 1-5; spaces anywhere between.
SMS_RE = re.compile(r"^\s*[dđ]\s*g\s+(\S+)\s+(\S+)\s*$", re.IGNORECASE)
DG_START = re.compile(r"^\s*[dđ]\s*g(\s|$)", re.IGNORECASE)

MIGRATIONS = [
    """
    CREATE TABLE ratings (
        site text NOT NULL, receipt text NOT NULL,
        score smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
        channel text NOT NULL CHECK (channel IN ('sms', 'web')),
        comment text, ts timestamptz NOT NULL DEFAULT now(), replaced int NOT NULL DEFAULT 0,
        PRIMARY KEY (site, receipt)
    );
    CREATE INDEX ratings_by_ts ON ratings (ts);
    -- One-time codes of the web rating (hashed; the phone only as a keyed hash), and the
    -- request log the rate limits count (purged after a day).
    CREATE TABLE rating_codes (
        id bigserial PRIMARY KEY, site text NOT NULL, receipt text NOT NULL, phone_key text NOT NULL,
        code_hash text NOT NULL, created timestamptz NOT NULL DEFAULT now(),
        attempts int NOT NULL DEFAULT 0, used boolean NOT NULL DEFAULT false
    );
    CREATE INDEX rating_codes_lookup ON rating_codes (receipt, phone_key, created DESC);
    CREATE TABLE rating_requests (key text NOT NULL, ts timestamptz NOT NULL DEFAULT now());
    CREATE INDEX rating_requests_key ON rating_requests (key, ts);
    CREATE TABLE rating_secret (secret text NOT NULL);
    INSERT INTO rating_secret SELECT md5(random()::text || clock_timestamp()::text) || md5(random()::text);
    """,
]

REFUSALS = {
    "receipt": ("Mã hồ sơ không hợp lệ (chỉ gồm chữ, số và . - _ /).",
                "Invalid dossier code (letters, digits and . - _ / only)."),
    "phone": (phones.MESSAGE_VI, phones.MESSAGE_EN),
    "unknown": ("Không tìm thấy hồ sơ gắn với số điện thoại này. Ông/Bà vui lòng kiểm tra lại.",
                "No dossier with this phone number was found. Please check both."),
    "rate_phone": ("Số điện thoại này đã nhận nhiều mã trong một giờ qua. Ông/Bà vui lòng thử lại sau.",
                   "Too many codes for this number in the last hour. Please try again later."),
    "rate_client": ("Có quá nhiều yêu cầu từ thiết bị này. Ông/Bà vui lòng thử lại sau.",
                    "Too many requests from this device. Please try again later."),
    "code": ("Mã xác nhận không đúng hoặc đã hết hạn.", "The confirmation code is wrong or has expired."),
    "score": ("Điểm đánh giá phải từ 1 đến 5.", "The rating must be from 1 to 5."),
    "comment": (f"Góp ý dài quá {COMMENT_MAX} ký tự.", f"The comment is longer than {COMMENT_MAX} characters."),
}


class RatingRefused(ValueError):
    """Error raised when a rating or a code request is refused; `.message_vi`/`.message_en` say why."""

    def __init__(self, reason: str):
        self.reason = reason
        self.message_vi, self.message_en = REFUSALS[reason]
        super().__init__(f"{reason}: {self.message_en}")


@dataclass(frozen=True)
class SmsRating:
    receipt: str
    score: int


def parse_sms(text: str) -> SmsRating | None:
    """`DG HS-1 5`, `đg  hs-1   5`, `ĐG HS-1 5` -> SmsRating; None if not a DG text at all;
    raises RatingRefused('score'/'receipt') for a DG text that is malformed."""
    text = unicodedata.normalize("NFC", text or "")
    if not DG_START.match(text):
        return None
    m = SMS_RE.match(text)
    if not m:
        raise RatingRefused("score")
    receipt, score = m.group(1).upper(), m.group(2)
    if not RECEIPT_RE.match(receipt):
        raise RatingRefused("receipt")
    if score not in ("1", "2", "3", "4", "5"):
        raise RatingRefused("score")
    return SmsRating(receipt, int(score))


def _dossier_sites(conn: psycopg.Connection, receipt: str) -> list[tuple[str, str | None]]:
    """(site, phone) of the result-ready texts sent for this dossier, newest first."""
    return [tuple(r) for r in conn.execute(
        "SELECT site, phone FROM sms_messages WHERE receipt = %s AND kind = 'result_ready' ORDER BY id DESC",
        (receipt,))]


def store_rating(conn: psycopg.Connection, site: str, receipt: str, score: int, channel: str,
                 comment: str | None = None) -> None:
    """One rating per dossier: a new one replaces the old (and says how often that happened)."""
    conn.execute(
        "INSERT INTO ratings AS r (site, receipt, score, channel, comment) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (site, receipt) DO UPDATE SET score = EXCLUDED.score, channel = EXCLUDED.channel, "
        "comment = EXCLUDED.comment, ts = now(), replaced = r.replaced + 1",
        (site, receipt, score, channel, comment))


def handle_sms(conn: psycopg.Connection, sender: str, text: str):
    """An incoming SMS. Returns (reply kind, values, site, receipt, to) or None (not for us, no reply)."""
    try:
        to = phones.normalise(sender)
    except phones.BadPhone:
        return None                          # a short code or a brand name: nobody to answer
    try:
        parsed = parse_sms(text)
    except RatingRefused:
        return "rating_syntax", {}, "", "", to
    if parsed is None:
        return None                          # not a rating: no answer (SMS cost money)
    found = _dossier_sites(conn, parsed.receipt)
    if not found:
        return "rating_unknown", {"receipt": parsed.receipt}, "", parsed.receipt, to
    site = next((s for s, p in found if p == to), None)
    if site is None:
        return "rating_wrong_phone", {"receipt": parsed.receipt}, found[0][0], parsed.receipt, to
    store_rating(conn, site, parsed.receipt, parsed.score, "sms")
    return "rating_ok", {"receipt": parsed.receipt, "score": parsed.score}, site, parsed.receipt, to


def may_reply(conn: psycopg.Connection, phone: str) -> bool:
    """True (and counted) while this number got fewer than REPLIES_PER_PHONE_PER_HOUR answers."""
    key = "reply:" + _key(conn, "reply", phone)
    if _recent(conn, key) >= REPLIES_PER_PHONE_PER_HOUR:
        return False
    conn.execute("INSERT INTO rating_requests (key) VALUES (%s)", (key,))
    return True


# -- the web flow -------------------------------------------------------------------------------

def _receipt(value) -> str:
    receipt = value.strip().upper() if isinstance(value, str) else ""
    if not RECEIPT_RE.match(receipt):
        raise RatingRefused("receipt")
    return receipt


def _phone(value) -> str:
    try:
        return phones.normalise(value)
    except phones.BadPhone as err:
        raise RatingRefused("phone") from err


def _key(conn: psycopg.Connection, *parts: str) -> str:
    """A keyed hash (the install's own secret): phone numbers are never stored in these tables."""
    secret = conn.execute("SELECT secret FROM rating_secret LIMIT 1").fetchone()[0]
    return hmac.new(secret.encode(), "|".join(parts).encode(), hashlib.sha256).hexdigest()


def _recent(conn: psycopg.Connection, key: str) -> int:
    return conn.execute("SELECT count(*) FROM rating_requests WHERE key = %s AND ts > now() - interval '1 hour'",
                        (key,)).fetchone()[0]


def request_code(conn: psycopg.Connection, texts, receipt, phone, client: str) -> str:
    """Send a one-time code to `phone` if it is the dossier's number; returns the masked number."""
    receipt, phone = _receipt(receipt), _phone(phone)
    with conn.transaction():
        client_key, phone_key = "client:" + _key(conn, "client", client), "phone:" + _key(conn, "phone", phone)
        if _recent(conn, client_key) >= REQUESTS_PER_CLIENT_PER_HOUR:
            raise RatingRefused("rate_client")
        conn.execute("INSERT INTO rating_requests (key) VALUES (%s)", (client_key,))
    with conn.transaction():
        if _recent(conn, phone_key) >= CODES_PER_PHONE_PER_HOUR:
            raise RatingRefused("rate_phone")
        site = next((s for s, p in _dossier_sites(conn, receipt) if p == phone), None)
        if site is None:
            raise RatingRefused("unknown")
        conn.execute("INSERT INTO rating_requests (key) VALUES (%s)", (phone_key,))
        code = f"{secrets.randbelow(10 ** 6):06d}"
        conn.execute("INSERT INTO rating_codes (site, receipt, phone_key, code_hash) VALUES (%s, %s, %s, %s)",
                     (site, receipt, _key(conn, "who", receipt, phone), _key(conn, "code", code)))
        sms.queue_text(conn, ref=f"otp:{uuid.uuid4().hex}", kind="otp", phone=phone, site=site, receipt=receipt,
                       body=texts.render("otp", receipt=receipt, code=code), has_pin=True,
                       deadline=dt.datetime.now(dt.timezone.utc).timestamp() + CODE_TTL_S)
        conn.execute("DELETE FROM rating_requests WHERE ts < now() - interval '1 day'")
    return phones.mask(phone)


def submit(conn: psycopg.Connection, receipt, phone, code, score, comment=None) -> str:
    """Record a web rating after checking its one-time code; returns the site."""
    receipt, phone = _receipt(receipt), _phone(phone)
    if isinstance(score, str) and score.strip().isdigit():
        score = int(score.strip())
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise RatingRefused("score")
    comment = (comment or "").strip() if isinstance(comment, (str, type(None))) else None
    if comment is None or len(comment) > COMMENT_MAX:
        raise RatingRefused("comment")
    code = code.strip() if isinstance(code, str) else ""
    with conn.transaction():
        row = conn.execute(
            "SELECT id, site, code_hash, attempts FROM rating_codes WHERE receipt = %s AND phone_key = %s "
            "AND NOT used AND created > now() - make_interval(secs => %s) ORDER BY id DESC LIMIT 1 FOR UPDATE",
            (receipt, _key(conn, "who", receipt, phone), CODE_TTL_S)).fetchone()
        if row is None or row[3] >= CODE_ATTEMPTS:
            raise RatingRefused("code")
        if not (code.isdigit() and len(code) == 6 and hmac.compare_digest(_key(conn, "code", code), row[2])):
            conn.execute("UPDATE rating_codes SET attempts = attempts + 1 WHERE id = %s", (row[0],))
            wrong = True
        else:
            conn.execute("UPDATE rating_codes SET used = true WHERE id = %s", (row[0],))
            store_rating(conn, row[1], receipt, score, "web", comment or None)
            wrong = False
    if wrong:   # outside the transaction so the failed attempt is counted
        raise RatingRefused("code")
    return row[1]


# -- reading ------------------------------------------------------------------------------------

def list_ratings(conn: psycopg.Connection, site: str | None = None, since: float | None = None,
                 until: float | None = None) -> list[dict]:
    """SMS and web ratings per dossier, and the counter panel's ratings per ticket; never a phone."""
    args = (site, site, since, since, until, until)
    where = ("(%s::text IS NULL OR site = %s) AND (%s::float8 IS NULL OR ts >= to_timestamp(%s)) "
             "AND (%s::float8 IS NULL OR ts < to_timestamp(%s))")
    out = [{"site": r[0], "receipt": r[1], "score": r[2], "channel": r[3], "ts": r[4], "comment": r[5],
            "replaced": r[6]}
           for r in conn.execute(f"SELECT site, receipt, score, channel, extract(epoch FROM ts)::float8, comment, "
                                 f"replaced FROM ratings WHERE {where} ORDER BY ts", args)]
    for r in conn.execute(
            f"SELECT site, device, body, extract(epoch FROM ts)::float8 FROM events WHERE service = 'pager' "
            f"AND type = 'rating' AND {where} ORDER BY ts", args):
        body = r[2] or {}
        score = body.get("score", body.get("rating"))
        if isinstance(score, int) and not isinstance(score, bool) and 1 <= score <= 5:
            out.append({"site": r[0], "receipt": None, "score": score, "channel": "counter", "ts": r[3],
                        "device": r[1], "ticket": body.get("ticket"),
                        # the pager's events name the queue (`queue`); older ones said `service`
                        "service": body.get("queue") or body.get("service"),
                        "counter": body.get("counter")})
    out.sort(key=lambda x: x["ts"])
    return out


def summary(ratings: list[dict]) -> list[dict]:
    """Per site, channel and counter/service: count and average (for the dashboard)."""
    groups: dict = {}
    for r in ratings:
        key = (r["site"], r["channel"], r.get("service") or "", r.get("counter") or "")
        groups.setdefault(key, []).append(r["score"])
    return [{"site": k[0], "channel": k[1], "service": k[2], "counter": k[3], "count": len(v),
             "average": round(sum(v) / len(v), 2)} for k, v in sorted(groups.items())]
