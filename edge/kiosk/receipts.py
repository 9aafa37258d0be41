"""The one dossier-code rule shared by staff loading and citizen pickup.

A code that the loading screen accepts must be one the pickup screen can find. The rule lives in
edge.qr.codes (below the kiosk and the locker, so the locker's `load` applies it whatever route a
loading comes by: this screen, the MQTT command, the demo): the Thông tư 01/2018 form
`000.00.01.H29-261207-0001`, the shortened forms seen in the wild, or a lookup URL carrying one.
"""

from __future__ import annotations

from edge.qr.codes import DOSSIER_EXAMPLE as EXAMPLE  # noqa: F401
from edge.qr.codes import DOSSIER_MAX_CHARS as MAX_CHARS  # noqa: F401
from edge.qr.codes import dossier_code, require_dossier_code  # noqa: F401
