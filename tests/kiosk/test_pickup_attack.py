"""A printed photo of the citizen held up to the kiosk camera, against the REAL vision service
(MiniFASNet pair + motion check on, as shipped for the kiosk role) and the REAL locker on its
simulator: the kiosk refuses it with the message that names a photo, offers the PIN, and no door
moves. The attack frames come from the vision area's synthetic set (edge/vision/attackset.py)."""

from __future__ import annotations

import cv2
import pytest

from edge.vision import attackset  # prints and screens of the sample faces, re-photographed
from kiosk_harness import at_step, shot
from test_night_pickup import CODE, Rig, _rgb, open_kiosk, scan

pytestmark = pytest.mark.browser


@pytest.fixture
def rig_printed_photo(tmp_path):
    folder = tmp_path / "printed-photo"
    folder.mkdir()
    # The citizen's photo printed and moved in front of the camera as a head would turn.
    for i, frame in enumerate(attackset.moved_flat(_rgb("obama2.jpg"), "print", "turn_left", frames=8)):
        cv2.imwrite(str(folder / f"{i:02d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    rig = Rig(tmp_path, str(folder), liveness=True)  # an absolute path: the camera loops over these frames
    yield rig
    rig.close()


def test_a_printed_photo_is_refused_at_the_kiosk_and_the_pin_offered(rig_printed_photo, page, tmp_path):
    rig = rig_printed_photo
    rig.load_result(face=True)
    before = rig.pulses()
    open_kiosk(page, rig)
    scan(page, CODE)
    at_step(page, "face")
    # The randomised prompt of the verify in progress, over the live (mirrored) picture.
    page.wait_for_function("/quay mặt sang (trái|phải)/.test(document.querySelector('#challenge').textContent)",
                           timeout=30_000)
    page.wait_for_function("document.querySelector('#camera').naturalWidth > 0", timeout=30_000)
    shot(page, tmp_path, "attack-print-face")
    at_step(page, "pin", timeout=90_000)  # two refusals (face_attempts = 2)
    notice = page.inner_text("#pin-notice")
    assert "ảnh in hay màn hình không dùng được" in notice, notice
    shot(page, tmp_path, "attack-print-pin-offered")
    assert rig.pulses() == before and not rig.bus.door(0, 7).open
    verdicts = rig.store.query("SELECT detail FROM audit WHERE action = 'vision.verify'")
    assert verdicts and all('"spoof"' in r["detail"] or '"challenge"' in r["detail"] for r in verdicts), verdicts
