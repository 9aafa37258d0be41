"""The `[kiosk]` section: where the screens listen, session limits, language, the button."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge.config import opt
from edge.locker.pins import check_staff_pins  # the same rule as [locker] staff_pins


@dataclass(frozen=True)
class KioskConfig:
    enabled: bool = opt(True)
    host: str = opt("127.0.0.1", pattern=r"[0-9A-Za-z.:\-\[\]]+",
                    help="address the screens listen on (127.0.0.1: only the local Chromium)")
    port: int = opt(8080, min=0, max=65535, help="TCP port; 0 picks a free one (tests)")
    language: Literal["vi", "en", "device"] = opt("device", help="screen language; 'device' = the top-level language")
    session_timeout_s: float = opt(90.0, min=5, max=3600,
                                   help="an idle pickup session returns to the start screen after this")
    code_attempts: int = opt(3, min=1, max=20, help="wrong receipt codes in one session before the kiosk locks")
    face_attempts: int = opt(3, min=1, max=20, help="rejected face checks before falling back to code + PIN")
    pin_attempts: int = opt(3, min=1, max=20, help="wrong PINs for one receipt before it is locked out")
    lockout_s: float = opt(900.0, min=10, max=86400, help="how long a lockout lasts")
    face_timeout_s: float = opt(2.0, min=0.2, max=30, help="time given to one face check")
    face_pause_s: float = opt(0.8, min=0.0, max=10, help="pause between two face checks, so the citizen can read the hint")
    face_step_s: float = opt(45.0, min=5, max=600,
                             help="the face step's countdown; then the PIN is offered (or the desk, without a PIN)")
    face_retries: int = opt(15, min=1, max=200,
                            help="face checks that ask the citizen to adjust (too far, too dark) before giving up")
    door_timeout_s: float = opt(120.0, min=5, max=3600, help="waiting for the citizen to close the door, per reminder")
    thanks_s: float = opt(8.0, min=1, max=120, help="the thank-you screen stays this long")
    button_pin: str | None = opt(None, help="GPIO of the physical 'get result' button, e.g. 'GPIO17' (None: no button)")
    button_bounce_s: float = opt(0.05, min=0.0, max=1.0, help="debounce of the button")
    counters: list[str] = opt([], help="counter ids shown as links on the index page (pager counters)")
    display_voice: Literal["espeak-ng", "off"] = opt("espeak-ng",
                                                     help="the wall display says each call (espeak-ng's Vietnamese voice, on the device) or only chimes")
    display_voice_text: str = opt("Mời số {ticket} đến quầy {counter}", help="what the display says; {ticket} {counter}")
    display_highlight_s: float = opt(8.0, min=2, max=60, help="the newest call stays large and highlighted this long")
    staff_pins: dict[str, str] = opt({}, check=check_staff_pins,
                                     help="staff id -> PIN hash for the desk screens (python -m edge.locker.pins 1234)")
    require_staff_login: bool = opt(False, help="staff log in even on 127.0.0.1 (always on for any other host)")
    staff_session_s: float = opt(36000.0, min=60, max=86400, help="a staff login lasts this long (a working day)")
    staff_attempts: int = opt(5, min=1, max=20, help="wrong staff PINs (per staff id or per computer) before a lockout")
    staff_lockout_s: float = opt(900.0, min=10, max=86400, help="how long a staff login lockout lasts")

    @property
    def staff_login(self) -> bool:
        """Staff endpoints need a login: on any non-loopback address, or when asked for."""
        from edge.kiosk.staff import is_loopback
        return self.require_staff_login or not is_loopback(self.host)

    def problems(self) -> list[str]:
        """A kiosk reachable from the LAN must not leave the queue controls open to anyone on it."""
        if self.staff_login and not self.staff_pins:
            why = "require_staff_login = true" if self.require_staff_login else f"host = '{self.host}' is not loopback"
            return [f"kiosk.staff_pins: found none, expected at least one staff PIN hash ({why}, so the reception, "
                    f"counter, loading and status screens need a staff login; python -m edge.locker.pins 1234 "
                    f"prints a hash)"]
        return []
