"""PIN hashing (PBKDF2-SHA256, salted): staff PINs in config, citizen PINs in the store.

`python -m edge.locker.pins 1234` prints a hash to paste into `[locker.staff_pins]`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys

ITERATIONS = 20_000  # the attempt limit is the real defence of a 4-6 digit PIN


def hash_pin(pin: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def check_pin(pin: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        got = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), bytes.fromhex(salt), int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def check_staff_pins(pins: dict) -> str | None:
    """The config check of a `staff_pins` table ([kiosk] and [locker]): every value a hash, never a plain PIN."""
    bad = [k for k, v in pins.items() if not str(v).startswith("pbkdf2_sha256$")]
    return f"hashed PINs (python -m edge.locker.pins 1234), not plain text, for {bad}" if bad else None


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m edge.locker.pins PIN", file=sys.stderr)
        raise SystemExit(2)
    print(hash_pin(sys.argv[1]))
