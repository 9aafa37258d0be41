"""Parse and check device messages (design §3 topics and payloads); pure, no I/O.

`parse(topic, payload_bytes)` returns a `Status`, `State`, `Event` or `CommandResult` (a device's
answer on `…/{service}/cmd/result`), or raises `BadMessage`
whose `reason` is a short fixed code used for counting (`not_json`, `missing_id`, …).

Whatever the bytes, `parse` raises nothing but `BadMessage`: a payload nested deeper than
`MAX_DEPTH` (which would raise RecursionError in the json module), NaN/Infinity (`1e999`), a
NUL or a lone surrogate in a string (PostgreSQL's jsonb refuses both) are refused here, so the
consumer quarantines the message instead of failing on it (see `ingest.py`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from edge import safejson
from edge.errors import ProtocolError

PREFIX = "motcua/v1/"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_DEPTH = 16          # nesting of objects/arrays in a payload; our devices send at most 4
SERVICE_HEALTH = ("ok", "degraded", "down")
# ts must look like epoch seconds between 2020 and 2100: catches milliseconds and garbage.
TS_MIN, TS_MAX = 1_577_836_800.0, 4_102_444_800.0
# Keys that must never reach the central database (design §3, §7): dropped and counted.
FORBIDDEN_KEYS = frozenset({
    "embedding", "embeddings", "face", "face_image", "image", "photo", "template", "descriptor",
    "id_card", "cccd", "cmnd", "phone", "phone_number",
})


class BadMessage(ProtocolError):
    """Error raised when an MQTT message from a device breaks the topic or payload contract."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def sender(topic: str) -> tuple[str, str]:
    """(site, device) named by a topic's levels, as far as they can be read ('' where not): the
    broker ACL binds the device level to the publisher's account, so this names who sent it."""
    if not topic.startswith(PREFIX):
        return "", ""
    levels = topic[len(PREFIX):].split("/")
    site = levels[0] if levels and NAME_RE.match(levels[0]) else ""
    device = levels[1] if len(levels) > 1 and NAME_RE.match(levels[1]) else ""
    return site, device


@dataclass(frozen=True)
class Status:
    site: str
    device: str
    state: str
    ts: float
    version: str
    services: dict


@dataclass(frozen=True)
class State:
    site: str
    device: str
    service: str
    ts: float
    snapshot: dict


@dataclass(frozen=True)
class Event:
    site: str
    device: str
    service: str
    id: str
    seq: int
    ts: float
    type: str
    body: dict          # the device's event JSON (forbidden keys removed)
    redacted: tuple = ()


@dataclass(frozen=True)
class CommandResult:
    """A device's answer on `…/{service}/cmd/result` (central subscribes to the `device` ones)."""
    site: str
    device: str
    service: str
    id: str
    data: dict          # {"id", "ok", ...}; for `resend`: "resent", "missing": [[a, b], ...]


def subscriptions(group: str = "central") -> tuple[list[str], list[str]]:
    """(shared, plain) topic filters: events are split across instances by the shared
    subscription; status and state are retained, and MQTT 5 never sends retained messages to a
    shared subscription (§4.8.2), so every instance subscribes to them directly (upserts are
    idempotent)."""
    events = f"{PREFIX}+/+/+/event"
    results = f"{PREFIX}+/+/device/cmd/result"     # answers to gap-recovery requests
    # An empty group means one instance on a plain subscription: mosquitto 2.0 does not keep
    # shared subscriptions across a broker restart, a plain one in a persistent session it does.
    shared = [f"$share/{group}/{t}" if group else t for t in (events, results)]
    plain = [f"{PREFIX}+/+/status", f"{PREFIX}+/+/+/state"]
    return shared, plain


def parse(topic: str, payload: bytes) -> Status | State | Event | CommandResult:
    try:
        return _parse(topic, payload)
    except BadMessage:
        raise
    except Exception as err:     # a shape no check above foresaw: still a bad message, not a bug to retry
        raise BadMessage("invalid", f"{topic}: {type(err).__name__}: {err}") from err


def _parse(topic: str, payload: bytes) -> Status | State | Event | CommandResult:
    site, device, service, kind = _split_topic(topic)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise BadMessage("too_large", f"{len(payload)} bytes on {topic} (limit {MAX_PAYLOAD_BYTES})")
    data = _json_object(topic, payload)
    if kind == "status":
        return _status(site, device, data, topic)
    if kind == "state":
        return State(site, device, service, _ts(data, topic, required=False), data)
    if kind == "result":
        return _result(site, device, service, data, topic)
    return _event(site, device, service, data, topic)


def _split_topic(topic: str) -> tuple[str, str, str | None, str]:
    if not topic.startswith(PREFIX):
        raise BadMessage("bad_topic", f"{topic!r} is outside {PREFIX}")
    parts = topic[len(PREFIX):].split("/")
    if len(parts) == 3 and parts[2] == "status":
        site, device, service, kind = parts[0], parts[1], None, "status"
    elif len(parts) == 4 and parts[3] in ("state", "event"):
        site, device, service, kind = parts
    elif len(parts) == 5 and parts[3:] == ["cmd", "result"]:
        site, device, service, kind = parts[0], parts[1], parts[2], "result"
    else:
        raise BadMessage("bad_topic", f"{topic!r} is not …/status, …/{{service}}/state, …/{{service}}/event "
                         f"or …/{{service}}/cmd/result")
    for label, name in (("site", site), ("device", device), ("service", service)):
        if name is not None and not NAME_RE.match(name):
            raise BadMessage("bad_topic", f"{label} {name!r} in {topic!r} is not [a-z0-9_-]")
    return site, device, service, kind


def _json_object(topic: str, payload: bytes) -> dict:
    try:
        return safejson.loads_object(payload, max_depth=MAX_DEPTH)
    except safejson.UnsafeJson as err:
        raise BadMessage(err.reason, f"{topic}: {err.detail}") from err


def _ts(data: dict, topic: str, *, required: bool = True) -> float:
    ts = data.get("ts")
    if ts is None and not required:
        return 0.0
    if ts is None:
        raise BadMessage("missing_ts", f"{topic}: no 'ts'")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts) or not TS_MIN <= ts <= TS_MAX:
        raise BadMessage("bad_ts", f"{topic}: ts {ts!r} is not epoch seconds")
    return float(ts)


def _status(site: str, device: str, data: dict, topic: str) -> Status:
    state = data.get("state")
    if state not in ("online", "offline"):
        raise BadMessage("bad_state", f"{topic}: state {state!r}, expected 'online' or 'offline'")
    services = data.get("services", {})
    if not isinstance(services, dict) or any(not isinstance(v, str) for v in services.values()):
        raise BadMessage("bad_services", f"{topic}: services must map name -> 'ok'|'degraded'|'down'")
    version = data.get("version", "")
    if not isinstance(version, str):
        raise BadMessage("bad_version", f"{topic}: version {version!r} is not a string")
    return Status(site, device, state, _ts(data, topic), version, services)


def _result(site: str, device: str, service: str, data: dict, topic: str) -> CommandResult:
    cmd_id = data.get("id")
    if not isinstance(cmd_id, str) or not ID_RE.match(cmd_id):
        raise BadMessage("bad_result", f"{topic}: id {cmd_id!r} is not a short string")
    if not isinstance(data.get("ok"), bool):
        raise BadMessage("bad_result", f"{topic}: 'ok' must be true or false, found {data.get('ok')!r:.40}")
    missing = data.get("missing", [])
    if not isinstance(missing, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(isinstance(n, int) and not isinstance(n, bool) for n in r)
            and 0 <= r[0] <= r[1] for r in missing):
        raise BadMessage("bad_result", f"{topic}: 'missing' must be [[from_seq, to_seq], ...], found {missing!r:.80}")
    return CommandResult(site, device, service, cmd_id, data)


def _event(site: str, device: str, service: str, data: dict, topic: str) -> Event:
    event_id = data.get("id")
    if event_id is None:
        raise BadMessage("missing_id", f"{topic}: no 'id'")
    if not isinstance(event_id, str) or not ID_RE.match(event_id):
        raise BadMessage("bad_id", f"{topic}: id {event_id!r} is not a short string")
    seq = data.get("seq")
    if seq is None:
        raise BadMessage("missing_seq", f"{topic}: no 'seq'")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
        raise BadMessage("bad_seq", f"{topic}: seq {seq!r} is not a non-negative integer")
    kind = data.get("type")
    if not isinstance(kind, str) or not NAME_RE.match(kind):
        raise BadMessage("bad_type", f"{topic}: type {kind!r} is not a short name")
    ts = _ts(data, topic)
    redacted = tuple(sorted(k for k in data if k.lower() in FORBIDDEN_KEYS))
    body = {k: v for k, v in data.items() if k not in redacted}
    return Event(site, device, service, event_id, seq, ts, kind, body, redacted)
