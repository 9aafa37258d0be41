"""The commands page says what happened in words (done / refused with the reason / no answer),
the raw JSON on demand; a too-large form gets a translated page, not aiohttp's English 413 (QA, issue 19)."""

from __future__ import annotations

import re

from .test_cmd import DEVICE, SITE, device, signed_in  # noqa: F401  (device: a fixture)


def results(listing: str) -> list[str]:
    """The recent commands' result cells, as text without the raw JSON."""
    cells = re.findall(r'<td data-status="[^"]*">(.*?)</td>', listing, re.S)
    return [re.sub(r"<details>.*?</details>|<[^>]+>", "", c, flags=re.S).strip() for c in cells]


def test_recent_commands_say_done_or_refused_in_words_with_raw_json_on_demand(tmp_path, central_app, device):  # noqa: F811
    browser = signed_in(tmp_path, central_app, device)
    csrf = browser.csrf()
    base = {"csrf": csrf, "site": SITE, "device": DEVICE, "service": "locker"}
    browser.post("/commands", {**base, "type": "status", "args": "{}"})
    _, _, refused = browser.post("/commands", {**base, "type": "explode", "args": "{}"})
    assert "Thiết bị từ chối" in refused
    _, _, listing = browser.get("/commands")
    done, = [c for c in results(listing) if c.startswith("Thiết bị đã thực hiện")]
    refusal, = [c for c in results(listing) if c.startswith("Thiết bị từ chối")]
    assert "{" not in done and "explode" in refusal          # the device's reason names the command
    assert refusal.endswith("Thiết bị không có lệnh “explode”.") and "unknown command type" not in refusal
    assert "unknown command type &#39;explode&#39;" in listing      # the raw text stays in the raw JSON
    assert '<summary>JSON gốc</summary><pre>{' in listing and '&#34;doors&#34;: 12' in listing


def test_a_too_large_form_is_a_translated_page(tmp_path, central_app, device):  # noqa: F811
    browser = signed_in(tmp_path, central_app, device)
    status, _, html = browser.post("/commands", {"csrf": browser.csrf(), "site": SITE, "device": DEVICE,
                                                 "service": "locker", "type": "status", "args": "x" * 70000})
    assert status == 413
    assert "Nội dung gửi lên quá lớn (tối đa 64 KB)" in html and "Request Entity Too Large" not in html


def test_the_devices_refusal_kinds_are_said_in_the_offices_words():
    from edge.central.refusals import words
    from edge.locker.flows import LockerRefused
    assert words("bad signature") == "Lệnh không có chữ ký hợp lệ: kiểm tra khóa lệnh của thiết bị."
    assert words("stale command: ts 5 is more than 60 s from now", "en").startswith("The command was too old")
    assert words(str(LockerRefused("bad_input", "PIN must be 4-8 digits"))) == "Dữ liệu không hợp lệ."
    assert words(str(LockerRefused("full"))) == "Không còn ngăn trống cỡ này. Chọn cỡ khác hoặc để trống."
    assert words("missing argument 'compartment' (int)") == "Tham số của lệnh không hợp lệ."
    assert words("rate limited: more than 5 commands/s for locker", "en").startswith("Too many commands")
    assert words("something new the device says") == "Lý do khác (xem JSON gốc)."


def test_every_door_moving_command_has_its_words_on_the_confirmation_page():
    """The second confirmation names the command in words: one entry per door-moving command, no more."""
    from edge.central.web.commands import DOOR_COMMAND_TEXT
    from edge.locker.commands import DOOR_COMMANDS

    assert set(DOOR_COMMAND_TEXT) == set(DOOR_COMMANDS)
    assert all(vi and en for vi, en in DOOR_COMMAND_TEXT.values())
