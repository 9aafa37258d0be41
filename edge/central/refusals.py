"""A device's refusal of a command, said in the office's words (Vietnamese, English fallback).

Devices answer `{"ok": false, "error": "<English text>"}` (edge/mqtt.py CommandDispatcher,
edge/service.py check_command, edge/security.py signatures, edge/locker/flows.py LockerRefused
"<reason>: <detail>"). The dashboard shows `words(error)`; the raw text stays in the raw JSON.
"""

from __future__ import annotations

import re

from edge.locker.flows import MESSAGES as LOCKER_MESSAGES

# (pattern on the device's English text, (vi, en)); {name} is the quoted name the device gave.
# A locker refusal is said in the locker's own words (flows.MESSAGES, as on the kiosk's desk
# screens). The rest are said here for the manager who sent a remote command; the kiosk's screens
# translate the same device texts apart (edge/kiosk/messages.py) on purpose: there the screen itself
# sent the request, so the advice differs (there "reload the page", here "the command's arguments").
KINDS: list[tuple[re.Pattern, tuple[str, str]]] = [(re.compile(p), pair) for p, pair in [
    (r"^unknown command type '([^']*)'", ("Thiết bị không có lệnh “{name}”.", "The device has no command “{name}”.")),
    (r"^unknown service '([^']*)'", ("Thiết bị không chạy dịch vụ “{name}”.", "The device does not run the service “{name}”.")),
    (r"^service (\S+) takes no commands", ("Dịch vụ “{name}” không nhận lệnh.", "The service “{name}” takes no commands.")),
    (r"^(?:unknown argument|missing argument|argument '|'args' must be)",
     ("Tham số của lệnh không hợp lệ.", "The command's arguments are not valid.")),
    (r"^(?:command must be signed|bad signature)",
     ("Lệnh không có chữ ký hợp lệ: kiểm tra khóa lệnh của thiết bị.", "The command's signature is not valid: check the device's command key.")),
    (r"^stale command", ("Lệnh đã quá cũ khi đến thiết bị: kiểm tra đồng hồ của máy chủ và thiết bị.",
                         "The command was too old when it arrived: check the server's and the device's clocks.")),
    (r"^signed command refused: no command key", ("Thiết bị chưa được cài khóa lệnh.", "The device has no command key configured.")),
    (r"^rate limited", ("Thiết bị nhận quá nhiều lệnh cùng lúc: vui lòng thử lại sau.", "Too many commands at once: please try again later.")),
    (r"^interrupted by a restart", ("Thiết bị khởi động lại giữa chừng: chưa rõ kết quả, hãy kiểm tra trạng thái.",
                                    "The device restarted mid-command: outcome unknown, check the state.")),
    (r"^(?:payload|'id' must|'type' must|'ts' must|bad payload)",
     ("Lệnh gửi đi sai định dạng.", "The command was malformed.")),
]]
OTHER = ("Lý do khác (xem JSON gốc).", "Another reason (see the raw JSON).")


def words(error: str, lang: str = "vi") -> str:
    """The refusal `error` (the device's English text) as a sentence in `lang`."""
    pair, name = OTHER, ""
    text = str(error or "")
    reason = text.split(":", 1)[0].strip()
    if reason in LOCKER_MESSAGES:           # LockerRefused: "<reason>: <detail>"
        pair = LOCKER_MESSAGES[reason]
    else:
        for pattern, candidate in KINDS:
            found = pattern.search(text)
            if found:
                pair, name = candidate, (found.group(1) if found.groups() else "")
                break
    chosen = pair[1] if lang == "en" else pair[0]
    return chosen.format(name=name) if "{name}" in chosen else chosen
