"""Texts the kiosk shares with the services that own the fact (issue 20: one source for each fact).

The face screen tells the citizen what the vision service's quality gate found; the words are the
vision's (edge/vision/guidance.py), so a reason the vision adds or rewords reaches the screen.
"""

import pytest

from edge.kiosk import i18n
from edge.kiosk.flows import guidance_key
from edge.vision.guidance import GUIDANCE, guidance

# `spoof` is no hint: the face check ends and the kiosk asks for the PIN (kiosk.pin_after_spoof).
LIVE_REASONS = sorted(set(GUIDANCE) - {"spoof"})


@pytest.mark.parametrize("reason", LIVE_REASONS)
def test_the_face_screen_says_what_the_vision_service_says(reason):
    key = guidance_key(reason)
    assert key == f"guide.{reason}"
    for lang in i18n.LANGUAGES:
        assert i18n.t(key, lang) == guidance(reason, lang)


def test_an_alarm_is_named_alike_on_the_device_the_dashboard_and_in_the_e_mail():
    """One table of alarm kinds (edge/alarm_kinds.py) for the technician's status screen, the
    office dashboard and the alarm e-mails and webhooks."""
    from edge.alarm_kinds import ALARM_KINDS
    from edge.central import notify
    from edge.central.web.common import ALARM_KINDS as DASHBOARD, pick
    for kind, (vi, en) in ALARM_KINDS.items():
        assert (i18n.t(f"alarm.{kind}"), i18n.t(f"alarm.{kind}", "en")) == (vi, en)
        assert (pick("vi", DASHBOARD[kind]), pick("en", DASHBOARD[kind])) == (vi, en)
        assert notify.describe({"kind": kind, "site": "s", "device": "d"}).startswith(f"{vi} ({kind})")
    # a locker alarm under its older name still reads as the kind it became
    assert notify.describe({"kind": "door_forced", "site": "s", "device": "d"}).startswith(
        ALARM_KINDS["forced_open"][0])
