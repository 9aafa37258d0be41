"""Signed commands: an HMAC-SHA256 over the command with a timestamp and a nonce.

Anything that opens a door must be signed by the central service with the device's key.
The signature covers site, device, service, id, type, args, ts and nonce (canonical JSON), so a
command cannot be replayed to another device or service, nor changed in flight. A command older
than the allowed age, or whose nonce was already seen, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from edge.errors import CommandAuthError, ConfigError

SIGNED_FIELDS = ("id", "type", "args", "ts", "nonce")


def load_key(path: str | Path) -> bytes:
    """Read a device HMAC key (hex or raw, at least 16 bytes); refuse a world-readable file."""
    path = Path(path)
    try:
        data = path.read_bytes().strip()
        mode = path.stat().st_mode
    except OSError as err:
        raise ConfigError(f"command key {path}: {err.strerror}") from err
    if mode & 0o077:
        raise ConfigError(f"command key {path}: permissions {oct(mode & 0o777)}, expected 0600 or stricter")
    try:
        key = bytes.fromhex(data.decode("ascii"))
    except ValueError:
        key = data
    if len(key) < 16:
        raise ConfigError(f"command key {path}: {len(key)} bytes, expected at least 16")
    return key


def new_key() -> str:
    """A fresh key as hex (what `edge central` and the image's first boot write)."""
    return secrets.token_hex(32)


def _message(site: str, device: str, service: str, cmd: dict) -> bytes:
    body = {"site": site, "device": device, "service": service, **{k: cmd.get(k) for k in SIGNED_FIELDS}}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_command(key: bytes, site: str, device: str, service: str, cmd: dict) -> dict:
    """Return a copy of `cmd` with a fresh `nonce` (if absent) and its `sig`."""
    signed = dict(cmd)
    signed.setdefault("nonce", os.urandom(12).hex())
    signed["sig"] = hmac.new(key, _message(site, device, service, signed), hashlib.sha256).hexdigest()
    return signed


def check_signature(key: bytes, site: str, device: str, service: str, cmd: dict, *, now: float, max_age_s: float) -> None:
    """Raise CommandAuthError unless `cmd` is signed with `key`, fresh, and has a nonce.

    Replay by nonce is checked by the caller against the store (it must survive restarts).
    """
    sig = cmd.get("sig")
    if not isinstance(sig, str) or not cmd.get("nonce"):
        raise CommandAuthError("command must be signed (missing 'sig' or 'nonce')")
    expected = hmac.new(key, _message(site, device, service, cmd), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(sig, expected):
        raise CommandAuthError("bad signature")
    ts = cmd.get("ts")
    if not isinstance(ts, (int, float)) or abs(now - ts) > max_age_s:
        raise CommandAuthError(f"stale command: ts {ts!r} is more than {max_age_s:g} s from now")
