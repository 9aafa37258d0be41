"""What the citizen in front of the camera is told, by quality reason (Vietnamese, English).

The one table of these sentences: the vision service reports them (`guidance()`, a verify's
`guidance_text`), and the pickup kiosk's face screen shows the same ones as i18n keys
`guide.<reason>` (edge/kiosk/i18n.py takes them from here). Pure data, no imports, so the kiosk
can read it without loading OpenCV.
"""

from __future__ import annotations

# reason (edge.vision.quality) -> (Vietnamese, English)
GUIDANCE = {
    "ok": ("Giữ nguyên, đang kiểm tra", "Hold still, checking"),
    "no_face": ("Không thấy khuôn mặt. Vui lòng đứng trước camera.",
                "No face seen. Please stand in front of the camera."),
    "multiple_faces": ("Chỉ một người đứng trước camera", "Only one person in front of the camera, please"),
    "too_small": ("Vui lòng lại gần camera hơn", "Please come closer to the camera"),
    "blurred": ("Vui lòng đứng yên", "Please hold still"),
    "pose": ("Vui lòng nhìn thẳng vào camera", "Please face the camera directly"),
    "too_dark": ("Quá tối, vui lòng đứng gần đèn hơn", "Too dark: please move into the light"),
    "too_bright": ("Quá sáng, vui lòng tránh ánh sáng chiếu thẳng", "Too bright: please step out of direct light"),
    "spoof": ("Không xác nhận được người thật trước camera. Ông/Bà vui lòng tự đứng trước camera, "
              "không dùng ảnh hoặc màn hình",
              "Could not confirm a live person: please stand in front of the camera yourself, "
              "not a photo or a screen"),
    # the verify in progress asks for a head turn; the exact prompt is its `challenge` (edge.vision.motion)
    "challenge": ("Ông/Bà vui lòng làm theo yêu cầu trên màn hình, chậm rãi", "Please do what the screen asks, slowly"),
}


def guidance(reason: str, language: str = "vi") -> str:
    """The sentence for `reason` in `language` ("vi", else English); an unknown reason reads as "ok"."""
    vi, en = GUIDANCE.get(reason, GUIDANCE["ok"])
    return vi if language == "vi" else en
