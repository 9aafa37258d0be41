"""JSON from untrusted senders (device events at central, commands at the device), parsed safely.

`loads_object(data)` returns a dict or raises `UnsafeJson` (a ValueError) whose `reason` is a
short code: `not_json`, `not_object`, `too_deep` (nesting the json module would recurse into
until RecursionError), `bad_number` (NaN, Infinity, `1e999`), `bad_string` (a NUL or a lone
surrogate, which PostgreSQL's jsonb and UTF-8 encoders refuse later). Nothing else escapes it.
"""

from __future__ import annotations

import json
import math
import re

MAX_DEPTH = 16     # nesting of objects/arrays; the project's own messages use at most 4


class UnsafeJson(ValueError):
    """Error raised for a payload that is not a plain, finite, shallow JSON object."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(detail)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):          # 1e999 parses to infinity
        raise ValueError(f"{text[:40]} is out of range for a number")
    return value


def nesting(text: str, *, stop_above: int | None = None) -> int:
    """The deepest bracket nesting of a JSON text (brackets inside strings are skipped).

    With `stop_above`, the walk ends as soon as the nesting passes it (a flood of deeply nested
    messages is refused after a few dozen brackets each, not after reading every character)."""
    return _depths(text, stop_above)[1]


# A JSON string (possibly unterminated: it runs to the end) or one bracket. The regex skips
# strings in C; Python only sees brackets.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?$)|[\[\]{}]', re.DOTALL)


def _depths(text: str, stop_above: int | None = None) -> tuple[int, int]:
    """(depth at the end of `text`, deepest depth on the way), strings skipped."""
    depth = deepest = 0
    for token in _TOKENS.finditer(text):
        ch = token.group()
        if ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    break
        elif ch in "]}":
            depth -= 1
    return depth, deepest


_ID_RE = re.compile(r'"id"\s*:\s*"([A-Za-z0-9_.:-]{1,64})"')


def peek_id(data: bytes | str) -> str | None:
    """The top-level `"id"` string of a payload `loads_object` refused (too deep, a bad number
    elsewhere), when it can be read without parsing the rest: so the refusal can name it."""
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else data
    for match in _ID_RE.finditer(text, 0, 64 * 1024):
        if _depths(text[:match.start()])[0] == 1:
            return match.group(1)
    return None


def loads_object(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> dict:
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as err:
            raise UnsafeJson("not_json", f"not UTF-8: {err}") from err
    else:
        text = data
    if text.count("[") + text.count("{") > max_depth and nesting(text, stop_above=max_depth) > max_depth:   # json recurses per level
        raise UnsafeJson("too_deep", f"nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError as err:
        raise UnsafeJson("too_deep", "nested too deeply to parse") from err
    except ValueError as err:
        raise UnsafeJson("bad_number" if "number" in str(err) else "not_json", str(err)) from err
    if not isinstance(value, dict):
        raise UnsafeJson("not_object", f"payload is {type(value).__name__}, expected an object")
    _check_strings(value)
    return value


def _check_strings(data: dict) -> None:
    stack: list = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            if "\x00" in value:
                raise UnsafeJson("bad_string", "a string holds a NUL character")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as err:   # "\ud800": a lone surrogate
                raise UnsafeJson("bad_string", f"a string is not valid Unicode ({err.reason})") from err
