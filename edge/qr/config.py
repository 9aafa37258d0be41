"""The `[qr]` section: camera source, decoding budget and limits, URL hosts, dedupe, desk action."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge.config import opt


def _hosts(value: list[str]) -> str | None:
    for host in value:
        if not host or "/" in host or ":" in host or " " in host or host != host.lower():
            return "lower-case host names such as 'gov.vn' (no scheme, port or path)"
    return None


@dataclass(frozen=True)
class QrConfig:
    enabled: bool = opt(True)
    camera: str = opt("sim", pattern=r"sim|none|picamera2|(opencv|replay):.+",
                      help="'sim' (generated posters and receipts), 'replay:PATH' (image, folder or video), "
                           "'opencv:/dev/video0', 'picamera2' or 'none' (decode only on request)")
    width: int = opt(640, min=64, max=4096, help="camera frame width")
    height: int = opt(480, min=64, max=4096, help="camera frame height")
    fps: float = opt(5.0, min=0.1, max=60, help="frames decoded per second (the Pi has other work)")
    budget_ms: float = opt(150.0, min=5, max=5000,
                           help="time per frame for the harder decoding passes (the fast path always runs)")
    max_text_chars: int = opt(7089, min=16, max=7089,
                              help="longer decoded texts are refused, never passed on (default: the most a QR "
                                   "symbol holds, 7,089 digits or 2,953 bytes; the parsers decide what a text means)")
    use_zbar: bool = opt(True, help="ZBar (pyzbar) as the second decoder")
    allowed_hosts: list[str] = opt(["gov.vn"], check=_hosts,
                                   help="https hosts (and their subdomains) whose URLs may carry a procedure code")
    dedupe_s: float = opt(10.0, min=0, max=3600, help="the same code seen again within this is ignored")
    action: Literal["none", "ticket"] = opt(
        "none", help="'ticket' at the reception desk: a procedure code issues a pager ticket, "
                     "an appointment code checks in")
    default_queue_service: str | None = opt(
        None, help="pager service for procedures without a queue_service in the catalog (None: refuse)")
    catalog: str | None = opt(None, help="CSV or JSON catalog imported at start when the store has none "
                                         "(None: the bundled sample catalog)")
    sim_interval_s: float = opt(4.0, min=0.1, max=600, help="camera 'sim': seconds each generated image is shown")
    sim_codes_per_loop: int = opt(0, min=0, max=100,
                                  help="camera 'sim': procedure codes shown per loop, in turn (0: all of them); "
                                       "at a ticket desk each one issues a ticket, so the demo shows one")
