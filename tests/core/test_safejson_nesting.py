"""safejson measures nesting without parsing: brackets inside strings never count, and a flood of
deeply nested messages is refused after a few brackets each (edge.safejson.nesting)."""

import random

import pytest

from edge.safejson import MAX_DEPTH, UnsafeJson, loads_object, nesting


def walk(text: str) -> int:
    """The plain character walk the regex scan must agree with (strings skipped, escapes too)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


@pytest.mark.parametrize("text, expected", [
    ('{"a": "[[[[", "b": [1]}', 2),
    ('{"a": "\\"[[", "b": {"c": [[]]}}', 4),
    ('{"a": "unterminated [[[[', 1),
    ('{"a": "ends in a backslash \\', 1),
    ('["\\\\", [[]]]', 3),
    ('{"a": "line\\\nbreak [", "b": []}', 2),
])
def test_brackets_inside_strings_do_not_count(text, expected):
    assert nesting(text) == expected == walk(text)


def test_the_scan_agrees_with_a_character_walk_on_random_texts():
    rng = random.Random(20)
    for _ in range(20_000):
        text = "".join(rng.choice('[]{}"\\a\n:,') for _ in range(rng.randint(0, 40)))
        assert nesting(text) == walk(text), text


def test_a_deep_message_is_refused_by_name_and_the_scan_stops_early():
    deep = "[" * 100_000 + "]" * 100_000
    assert nesting(deep, stop_above=MAX_DEPTH) == MAX_DEPTH + 1
    with pytest.raises(UnsafeJson) as err:
        loads_object('{"a": ' + deep + "}")
    assert err.value.reason == "too_deep"
