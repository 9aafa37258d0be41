"""Errors as the staff screens show them: a message key, its parameters and the field it concerns.

The pager, locker and kiosk raise errors whose text is meant for logs and APIs (English, technical:
"counter 2 is paused: resume it first"). `explain(text)` maps that text to a key of
edge.kiosk.i18n (`err.<code>`, Vietnamese and English, each saying what to do), the values the
sentence needs and the form field it belongs next to. The raw text stays in the JSON answer and
the log; the screens show only the translated sentence. A text no rule knows becomes `err.unknown`
(a translated "could not be done" that still never shows English to a Vietnamese desk), and
tests/kiosk/test_messages.py fails when an error raised in the pager, locker or kiosk code has no rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge.kiosk import i18n


@dataclass(frozen=True)
class Rule:
    """One family of error texts: `pattern` (a regex searched in the text) names its values."""

    code: str
    pattern: str
    field: str | None = None  # the id of the form field (or button) the message is shown beside


# Order matters: the first rule whose pattern matches wins (specific before general).
RULES: tuple[Rule, ...] = (
    # -- pager queue (edge.pager.queue / edge.pager.service) ---------------------------------------
    Rule("cards_out", r"^all (?P<n>\d+) cards are out"),
    Rule("counter_paused", r"^counter (?P<counter>\S+) is paused", "pause"),
    Rule("nothing_current", r"^counter (?P<counter>\S+) is serving no ticket"),
    Rule("rate_nothing", r"^counter (?P<counter>\S+) finished no ticket", "rating"),
    Rule("counter_not_serving", r"^counter (?P<counter>\S+) does not serve (?P<service>.+)$", "to-service"),
    Rule("unknown_counter", r"^unknown counter (?P<counter>.+?); expected"),
    Rule("unknown_service", r"^unknown service (?P<service>.+?); expected", "service"),
    Rule("unknown_priority", r"^unknown priority class", "priority"),
    Rule("recall_limit", r"^ticket (?P<ticket>\S+) was recalled (?P<n>\d+) times", "recall"),
    Rule("already_rated", r"^ticket (?P<ticket>\S+) is already rated", "rating"),
    Rule("rating_range", r"^rating must be", "rating"),
    Rule("ticket_not_waiting", r"^ticket (?P<ticket>\S+) is not waiting"),
    Rule("ticket_cannot_rejoin", r"^ticket (?P<ticket>\S+) cannot rejoin"),
    Rule("ticket_unknown", r"^no ticket (?P<ticket>.+?) today"),
    Rule("transfer_target", r"^transfer needs", "to-service"),
    Rule("appointment_unknown", r"^(unknown appointment code|appointment code must be)"),
    Rule("appointment_other_day", r"^appointment .* is for (?P<day>\S+), not today"),
    Rule("card_served", r"^card (?P<card>\d+) \((?P<ticket>[^)]*)\) is being served at counter (?P<counter>\S+)"),
    Rule("card_not_out", r"^card (?P<card>\S+) is not out"),
    Rule("card_unknown", r"^card (must be|\S+ does not exist)"),
    Rule("transmitter_offline", r"^transmitter offline"),
    # -- the desk camera's ticket (edge.qr.service "refused") --------------------------------------------
    Rule("qr_no_pager", r"^no pager service on this device"),
    Rule("qr_other_office", r"^appointment for another office"),
    Rule("qr_not_in_catalog", r"^procedure not in the catalog"),
    Rule("qr_no_queue", r"^no queue service for this procedure"),
    # -- locker (edge.locker: LockerRefused is "reason: detail") ----------------------------------------
    Rule("staff_pin_locked", r"^staff: too many", "staff_pin"),
    Rule("staff_pin_wrong", r"^staff: ", "staff_pin"),
    Rule("citizen_pin_format", r"^bad_input: PIN must be", "pin"),
    Rule("receipt_not_dossier", r"^bad_input: receipt code .* is not a dossier code", "receipt"),
    Rule("receipt_format", r"^bad_input: receipt code", "receipt"),
    Rule("size_unknown", r"^bad_input: size", "size"),
    Rule("pin_with_phone", r"^bad_input: with a phone number", "pin"),
    Rule("phone_format", r"^phone: ", "phone"),
    Rule("deadline_range", r"^bad_input: deadline_days", "days"),
    Rule("compartment_unknown", r"^bad_input: unknown compartment"),
    Rule("locker_full", r"^full: ", "size"),
    Rule("receipt_duplicate", r"^duplicate: ", "receipt"),
    Rule("receipt_unknown", r"^unknown: ", "receipt"),
    Rule("receipt_collected", r"^collected: ", "receipt"),
    Rule("receipt_expired", r"^expired: ", "receipt"),
    Rule("compartment_busy", r"^busy: "),
    Rule("compartment_maintenance", r"^maintenance: "),
    Rule("compartment_rate", r"^rate: "),
    Rule("not_verified", r"^not_verified: "),
    Rule("pin_locked", r"^pin_locked: ", "pin"),
    Rule("locker_hardware", r"(locker hardware not ready|board \S+ (is )?offline|no reply from|timed out)"),
    # -- the kiosk's own checks (edge.kiosk.web) -------------------------------------------------------
    Rule("deadline_whole", r"^'deadline_days' must be", "days"),
    Rule("service_down", r"^the (?P<service>\S+) service is not running"),
    Rule("staff_login_off", r"^staff login is not configured"),
    Rule("qr_missing", r"^the QR parser is not installed"),
    Rule("bad_request", r"^(unknown counter action|the pager service has no|argument '|request body|'[^']+' must be"
                        r"|'[^']+' is longer|\S+\(\) (got|missing)|unknown argument|missing argument|unknown command type)"),
)

_COMPILED = tuple((rule, re.compile(rule.pattern)) for rule in RULES)


def explain(text: str) -> dict:
    """{"code", "params", "field"} for an error text; `code` is "unknown" when no rule knows it."""
    for rule, pattern in _COMPILED:
        match = pattern.search(text or "")
        if match:
            params = {k: v.strip("'\"") for k, v in match.groupdict().items() if v is not None}
            return {"code": rule.code, "params": params, "field": rule.field}
    return {"code": "unknown", "params": {}, "field": None}


def text(code: str, lang: str = "vi", **params) -> str:
    """The sentence a screen shows for `code` (what the staff screens' JavaScript also does)."""
    return i18n.t(f"err.{code}", lang, **params)
