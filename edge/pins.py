"""PIN hashing, one scheme for the whole project: PBKDF2-SHA256 with a random salt.

A hash reads `pbkdf2_sha256$ITERATIONS$SALT$DIGEST`. Two encodings of SALT and DIGEST are in use
and both stay valid, because hashes of each are already in config files and databases:

- hex: the locker's and the kiosk's staff PINs and the citizens' pickup PINs
  (`python -m edge.locker.pins 1234`, 20,000 iterations);
- base64: the central dashboard's staff file (`edge central staff-hash`, 200,000 iterations).

`check_pin` reads either (told apart by the digest: 64 hex characters, or 44 base64 characters
ending in '='); `hash_pin` writes the encoding and iteration count its caller asks for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "pbkdf2_sha256"
ENCODINGS = ("hex", "base64")
_DIGEST_BYTES = 32  # SHA-256


def hash_pin(pin: str, *, iterations: int, encoding: str = "hex", salt: bytes | None = None,
             salt_bytes: int = 16) -> str:
    """A new hash of `pin`; `salt` is for reproducible hashes (dummies, tests), else a random one."""
    if encoding not in ENCODINGS:
        raise ValueError(f"PIN hash encoding {encoding!r} is not one of {', '.join(ENCODINGS)}")
    salt = salt or secrets.token_bytes(salt_bytes)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt, iterations)
    return f"{SCHEME}${iterations}${_encode(salt, encoding)}${_encode(digest, encoding)}"


def check_pin(pin: str, stored: str) -> bool:
    """Whether `pin` matches `stored` (either encoding); False for anything that is not such a hash."""
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        encoding = _encoding_of(digest)
        if encoding is None:
            return False
        want = _decode(digest, encoding)
        got = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), _decode(salt, encoding), int(iterations))
    except (ValueError, TypeError, AttributeError):
        return False
    return hmac.compare_digest(got, want)


def looks_hashed(value: object) -> bool:
    """Whether a config value is written as a PIN hash (four `$`-separated fields of this scheme), not a plain PIN."""
    return isinstance(value, str) and value.startswith(SCHEME + "$") and value.count("$") == 3


def _encoding_of(digest: str) -> str | None:
    if len(digest) == 2 * _DIGEST_BYTES:
        return "hex"
    if len(digest) == 44 and digest.endswith("="):  # base64 of 32 bytes
        return "base64"
    return None


def _encode(raw: bytes, encoding: str) -> str:
    return raw.hex() if encoding == "hex" else base64.b64encode(raw).decode("ascii")


def _decode(text: str, encoding: str) -> bytes:
    # Both raise a ValueError on a bad string (binascii.Error is one).
    return bytes.fromhex(text) if encoding == "hex" else base64.b64decode(text)
