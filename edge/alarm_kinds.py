"""Every alarm kind, as staff read it (Vietnamese, English): the one table of these names.

Read by the device's status screen (edge/kiosk/i18n.py keys `alarm.<kind>`, for the technician),
the office dashboard (edge/central/web/common.py ALARM_KINDS) and the alarm e-mails and webhooks
(edge/central/notify.py describe). The kinds are raised by the locker (left_open, forced_open,
sensor_fault, board_offline, open_not_detected), the pager (transmitter_offline) and central
itself (device_offline, poison, cards_low, sms_failed, sms_stuck). Pure data, no imports.
"""

from __future__ import annotations

ALARM_KINDS: dict[str, tuple[str, str]] = {
    "left_open": ("Cửa ngăn để mở", "Door left open"),
    "forced_open": ("Cửa ngăn bị mở không qua lệnh", "Door forced open"),
    "sensor_fault": ("Lỗi cảm biến cửa", "Door sensor fault"),
    "board_offline": ("Bo mạch tủ mất kết nối", "Locker board offline"),
    "open_not_detected": ("Không thấy cửa mở", "Open not detected"),
    "transmitter_offline": ("Bộ phát thẻ rung mất kết nối", "Pager transmitter offline"),
    "device_offline": ("Thiết bị mất kết nối", "Device offline"),
    "poison": ("Thiết bị gửi dữ liệu hỏng", "Device sends malformed data"),
    "cards_low": ("Sắp hết thẻ rung", "Pager cards running out"),
    "sms_failed": ("Gửi SMS cho công dân thất bại", "Citizen SMS failed"),
    "sms_stuck": ("SMS chờ modem quá lâu (kiểm tra gammu-smsd và modem)",
                  "SMS stuck at the modem (check gammu-smsd and the modem)"),
}
# Older names of two locker kinds, still in stored events: they read as the kind they became.
OLD_NAMES = {"door_left_open": "left_open", "door_forced": "forced_open"}


def name(kind: str, lang: str = "vi") -> str | None:
    """The kind's name in `lang` ("en", else Vietnamese), or None for a kind not in the table."""
    pair = ALARM_KINDS.get(OLD_NAMES.get(kind, kind))
    return None if pair is None else (pair[1] if lang == "en" else pair[0])
