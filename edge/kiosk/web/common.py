"""What every screen's handlers share: the app keys, reading a request's JSON, answering JSON,
server-sent event streams and the typed peer check.

A refusal is raised (ValueError, EdgeError…) and answered by `guard.error_middleware` as JSON that
names what was wrong.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from edge.errors import EdgeError
from edge.safejson import UnsafeJson, loads_object

P = TypeVar("P")  # a peer's protocol (edge.peers)
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SSE_KEEPALIVE_S = 15.0
MAX_BODY_BYTES = 16 * 1024
SVC = web.AppKey("svc", object)  # the KioskService behind the app
# The open event stream of a request (RequestKey is aiohttp >= 3.12; a plain key before).
SSE = web.RequestKey("sse", web.StreamResponse) if hasattr(web, "RequestKey") else "sse"
STAFF = web.RequestKey("staff", str) if hasattr(web, "RequestKey") else "staff"  # the logged-in staff id


class Latest:
    """The latest value and a version, with waiters woken on each change (for event streams)."""

    def __init__(self):
        self.value, self.version = None, 0
        self._event = asyncio.Event()

    def publish(self, value) -> None:
        self.value, self.version = value, self.version + 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def next(self, after: int, timeout_s: float):
        if self.version <= after:
            try:
                await asyncio.wait_for(self._event.wait(), timeout_s)
            except asyncio.TimeoutError:
                pass
        return self.value, self.version


# -- requests ---------------------------------------------------------------------------------------

async def read_body(request: web.Request) -> dict:
    # safejson, as for MQTT commands: deep nesting (RecursionError), 1e999 and NUL are refused by name
    try:
        return loads_object(await request.read())
    except UnsafeJson as err:
        if err.reason == "not_object":
            raise ValueError("request body must be a JSON object") from err
        raise ValueError(f"request body is not JSON: {err.detail}") from err


def text_field(body: dict, key: str, max_len: int = 512, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be text")
    if len(value) > max_len:
        raise ValueError(f"'{key}' is longer than {max_len} characters")
    return value


def actor(request: web.Request) -> str:
    """Who the audit names: the logged-in staff member, else the kiosk itself."""
    staff = request.get(STAFF)
    return f"staff:{staff}" if staff else "kiosk"


def need(peer: P | None, name: str) -> P:
    """The peer, typed (edge.peers), or a clear error when that service does not run here."""
    if peer is None:
        raise EdgeError(f"the {name} service is not running on this device")
    return peer


# -- answers ----------------------------------------------------------------------------------------

def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _json_default(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a record from a peer (a ticket…)
        return dataclasses.asdict(value)
    return str(value)


# -- server-sent events -------------------------------------------------------------------------------

def quiet_disconnect(handler):
    """A screen that navigates away closes its event stream: that ends the stream, it is no error."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ConnectionResetError:
            return request.get(SSE) or web.Response(status=204)
    wrapped.__name__ = handler.__name__
    return wrapped


async def sse_open(request: web.Request) -> web.StreamResponse:
    stream = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                         "X-Accel-Buffering": "no"})
    await stream.prepare(request)
    request[SSE] = stream
    return stream


async def sse_send(stream: web.StreamResponse, data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, default=str)
    await stream.write(f"data: {text}\n\n".encode())
