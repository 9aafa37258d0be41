"""The locker's and the kiosk's PIN hashes: staff PINs in config, citizen PINs in the store.

The scheme itself (PBKDF2-SHA256, salted; both encodings read) is `edge.pins`, shared with the
central dashboard's staff file; this module keeps the locker's parameters (hex, 20,000
iterations, a 12-byte salt) and the technician's command:

`python -m edge.locker.pins 1234` prints a hash to paste into `[locker.staff_pins]`.
"""

from __future__ import annotations

import sys

from edge import pins
from edge.pins import check_pin  # noqa: F401  (re-exported: the locker's and the kiosk's callers import it here)

ITERATIONS = 20_000  # the attempt limit is the real defence of a 4-6 digit PIN
SALT_BYTES = 12


def hash_pin(pin: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """`pbkdf2_sha256$ITERATIONS$SALT$HASH` with salt and hash in hex."""
    return pins.hash_pin(pin, iterations=iterations, encoding="hex", salt=salt, salt_bytes=SALT_BYTES)


def check_staff_pins(table: dict) -> str | None:
    """The config check of a `staff_pins` table ([kiosk] and [locker]): every value a hash, never a plain PIN."""
    bad = [k for k, v in table.items() if not pins.looks_hashed(v)]
    return f"hashed PINs (python -m edge.locker.pins 1234), not plain text, for {bad}" if bad else None


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m edge.locker.pins PIN", file=sys.stderr)
        raise SystemExit(2)
    print(hash_pin(sys.argv[1]))
