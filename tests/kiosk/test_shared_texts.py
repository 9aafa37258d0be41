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
