"""Every error a staff screen can be answered with has a Vietnamese and an English sentence.

The errors are found in the source (each `raise …Error("…")` of the pager, locker and kiosk code a
screen calls), so a new error without a translation fails here, not in front of a citizen.
"""

from __future__ import annotations

import ast
import importlib
import re
import string
from pathlib import Path

import pytest

from edge.kiosk import i18n, messages
from edge.locker.flows import MESSAGES as LOCKER_MESSAGES

ROOT = Path(__file__).resolve().parents[2] / "edge"
# The modules behind the staff screens' APIs (reception, counter, loading) and the kiosk's own checks.
SOURCES = ["pager/queue.py", "pager/service.py", "locker/flows.py", "locker/service.py",
           "locker/kiosk_api.py", "locker/opening.py", "locker/remote.py",  # the locker service's modules
           *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "kiosk/web").glob("*.py")),  # one module per screen
           "service.py"]  # edge/service.py: the command schema every route to an action goes through
# Raised there but never answered to a screen: startup and MQTT-only paths.
NOT_ON_SCREENS = (
    r"^pager has no command", r"^pager: transmitter settings refused", r"^unknown locker command",
    r"^an audit is already running", r"^state must be 'open' or 'closed'", r"^claim must be",
    r"^no result of .* to reclaim", r"^no assignment for", r"^service .* takes no commands",
)
SAMPLE = "7"  # what each {…} of an f-string becomes in the sample text
LOCKER_REFUSED_DEFAULTS = {reason: en for reason, (vi, en) in LOCKER_MESSAGES.items()}  # LockerRefused(reason) alone


def _text_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else SAMPLE for v in node.values)
    return None


def _detail_of(rel: str, node: ast.expr) -> str | None:
    """A literal message, or one made by a helper the module imports (`not_a_dossier_code(code)`): called."""
    text = _text_of(node)
    if text is None and isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        module = importlib.import_module("edge." + rel.removesuffix(".py").replace("/", "."))
        text = getattr(module, node.func.id)(SAMPLE)
    return text


def raised_texts() -> list[tuple[str, str]]:
    """(where, sample message) for every error raised with a literal message in SOURCES."""
    found = []
    for rel in SOURCES:
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            call, name = node.exc, getattr(node.exc.func, "id", getattr(node.exc.func, "attr", ""))
            if name == "LockerRefused":  # its text is "reason: detail" (detail defaults to the English message)
                reason = _text_of(call.args[0])
                detail = _detail_of(rel, call.args[1]) if len(call.args) > 1 else LOCKER_REFUSED_DEFAULTS[reason]
                text = f"{reason}: {detail}"
            elif call.args and (text := _text_of(call.args[0])) is not None:
                pass
            else:
                continue
            if not any(re.search(p, text) for p in NOT_ON_SCREENS):
                found.append((f"{rel}:{node.lineno}", text))
    return found


def qr_refusals() -> list[tuple[str, str]]:
    """The desk camera's refusals (edge.qr.service answers {"refused": "…"} instead of raising)."""
    tree = ast.parse((ROOT / "qr/service.py").read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "refused" and (text := _text_of(value)) is not None:
                    found.append((f"qr/service.py:{node.lineno}", text))
    return found


RAISED = raised_texts() + qr_refusals()


def test_the_walk_finds_the_errors_seen_in_the_issue():
    texts = [t for _, t in RAISED]
    assert "staff: Wrong staff PIN. Enter your staff PIN again." in texts and "bad_input: PIN must be 4-8 digits" in texts
    assert any(t.startswith("counter 7 is paused") for t in texts)
    assert any(t.startswith("all 7 cards are out") for t in texts)
    assert len(RAISED) > 40


@pytest.mark.parametrize("where,text", RAISED, ids=[w for w, _ in RAISED])
def test_every_raised_error_has_a_message_for_people(where, text):
    explained = messages.explain(text)
    assert explained["code"] != "unknown", f"{where}: {text!r} has no rule in edge.kiosk.messages"
    for lang in i18n.LANGUAGES:
        sentence = messages.text(explained["code"], lang, **explained["params"])
        assert "{" not in sentence, f"{where}: a placeholder is left in {sentence!r}"


@pytest.mark.parametrize("code", sorted({r.code for r in messages.RULES} | {"unknown", "offline"}))
def test_every_message_is_in_vietnamese_and_english_and_fills_from_its_rule(code):
    vi, en = i18n.STRINGS[f"err.{code}"]
    assert vi and en and vi != en
    assert re.search(r"[ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđ]", vi.lower()), vi  # Vietnamese, with its marks
    names = {name for text in (vi, en) for _, name, _, _ in string.Formatter().parse(text) if name}
    rule = next((r for r in messages.RULES if r.code == code), None)
    given = set(re.compile(rule.pattern).groupindex) if rule else set()
    assert names <= given, f"err.{code} needs {names - given} that its rule does not capture"


def test_the_issue_s_raw_errors_become_sentences_that_say_what_to_do():
    cases = {
        "staff: Wrong staff PIN. Enter your staff PIN again.": ("staff_pin", "Nhập lại mã PIN cán bộ"),
        "bad_input: PIN must be 4-8 digits": ("pin", "4 đến 8 chữ số"),
        "unknown service 'cu-tru'; expected one of ['dat-dai', 'ho-tich']": ("service", "cu-tru"),
        "all 99 cards are out: collect cards at the counters before issuing more": (None, "Thu lại thẻ"),
        "counter 2 is paused: resume it first": ("pause", "Tiếp tục phục vụ"),
    }
    for raw, (field, words) in cases.items():
        explained = messages.explain(raw)
        assert explained["field"] == field
        assert words in messages.text(explained["code"], "vi", **explained["params"])
    assert messages.explain("something nobody foresaw")["code"] == "unknown"


@pytest.mark.parametrize("reason", sorted(set(LOCKER_MESSAGES) - {"bad_input", "phone"}))
def test_a_locker_refusal_reads_the_same_on_the_desk_screen_and_the_office_dashboard(reason):
    """One sentence per refusal reason (edge/locker/flows.py MESSAGES): the desk's `err.*` key and the
    dashboard's words for a refused remote command say the same thing, in both languages."""
    from edge.central.refusals import words
    from edge.locker.flows import LockerRefused
    raw = str(LockerRefused(reason))
    explained = messages.explain(raw)
    for lang in i18n.LANGUAGES:
        assert messages.text(explained["code"], lang, **explained["params"]) == words(raw, lang)
