"""The wall display's spoken call ("Mời số A012 đến quầy 2"): a WAV rendered on the device itself by
espeak-ng's Vietnamese voice (`espeak-ng -v vi`, a Raspberry Pi OS package), never by a cloud service.

`[kiosk] display_voice` switches it per office ("espeak-ng" or "off"); the display asks
`GET /api/display/voice?ticket=A012&counter=2` after each new call and plays the answer after its chime.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import struct
from collections import OrderedDict

from aiohttp import web

log = logging.getLogger(__name__)

TICKET_RE = re.compile(r"^[A-Z]{0,3}[0-9]{1,5}$")
COUNTER_RE = re.compile(r"^[0-9A-Za-z-]{1,16}$")
ESPEAK_TIMEOUT_S = 10.0
ESPEAK_SPEED_WPM = 140  # a little slower than espeak's 175: a hall echoes
CACHE_SIZE = 64  # WAVs kept (a few tens of kB each): a recall or a second display costs nothing


def spoken_text(ticket: str, counter: str, template: str) -> str:
    """The sentence to say; the ticket's digits one by one ("A không một hai"), as halls expect."""
    letters = ticket.rstrip("0123456789")
    digits = " ".join(ticket[len(letters):])
    return template.format(ticket=f"{letters} {digits}".strip(), counter=counter)


class Voice:
    """espeak-ng run as a subprocess (argument list, no shell), its WAVs cached by sentence."""

    def __init__(self, mode: str, template: str, program: str = "espeak-ng"):
        self.mode, self.template, self.program = mode, template, program
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._missing_logged = False

    async def wav(self, ticket: str, counter: str) -> bytes:
        """The call as WAV bytes; ValueError on a bad ticket/counter, LookupError when there is no voice."""
        if not TICKET_RE.match(ticket or ""):
            raise ValueError(f"ticket {ticket!r} is not a queue number like A012")
        if not COUNTER_RE.match(counter or ""):
            raise ValueError(f"counter {counter!r} is not a counter id")
        if self.mode == "off":
            raise LookupError("the voice call is off for this office ([kiosk] display_voice = 'off')")
        text = spoken_text(ticket, counter, self.template)
        if text in self._cache:
            self._cache.move_to_end(text)
            return self._cache[text]
        data = await self._render(text)
        self._cache[text] = data
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return data

    async def _render(self, text: str) -> bytes:
        path = shutil.which(self.program)
        if path is None:
            if not self._missing_logged:  # said once, not at every call
                log.warning("kiosk: %s is not installed: the display calls numbers with a chime only", self.program)
                self._missing_logged = True
            raise LookupError(f"{self.program} is not installed (apt-get install espeak-ng)")
        proc = await asyncio.create_subprocess_exec(path, "-v", "vi", "-s", str(ESPEAK_SPEED_WPM), "--stdout", text,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), ESPEAK_TIMEOUT_S)
        except asyncio.TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise LookupError(f"{self.program} took longer than {ESPEAK_TIMEOUT_S:g} s") from exc
        if proc.returncode != 0 or not out.startswith(b"RIFF"):
            raise LookupError(f"{self.program} failed ({proc.returncode}): {err.decode(errors='replace').strip()[:200]}")
        return with_real_sizes(out)


def with_real_sizes(wav: bytes) -> bytes:
    """espeak-ng --stdout cannot seek back, so its WAV header says "unknown length" (0x7fffffff);
    a browser then shows a 13-hour clip. Write the real RIFF and data sizes."""
    buf = bytearray(wav)
    struct.pack_into("<I", buf, 4, len(buf) - 8)
    data = buf.find(b"data", 12)
    if data >= 0:
        struct.pack_into("<I", buf, data + 4, len(buf) - data - 8)
    return bytes(buf)


def handler(service_of):
    """GET /api/display/voice?ticket=…&counter=… → audio/wav; 404 when off, 503 when espeak-ng is missing."""
    async def voice(request: web.Request) -> web.Response:
        svc = service_of(request)
        try:
            data = await svc.voice.wav(request.query.get("ticket", ""), request.query.get("counter", ""))
        except LookupError as err:
            status = 404 if svc.voice.mode == "off" else 503
            return web.json_response({"ok": False, "error": str(err), "code": "voice_unavailable"}, status=status)
        return web.Response(body=data, content_type="audio/wav", headers={"Cache-Control": "max-age=3600"})
    return voice
