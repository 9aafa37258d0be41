"""One PIN-hash scheme (edge.pins) for the locker, the kiosk and the central dashboard.

Hashes of both encodings are already in config files and databases (hex from the locker's
`python -m edge.locker.pins`, base64 from `edge central staff-hash`); each must keep verifying
wherever a staff member types the PIN.
"""

import subprocess
import sys

import pytest

from edge import pins
from edge.central import auth
from edge.locker import pins as locker_pins

# Written by the code before edge.pins existed (the locker's hex, the central's base64 form).
HEX_1357 = ("pbkdf2_sha256$1000$6c6f636b65722d73616c7421$"
            "5d6c5b679b1442c0c3e7665ca596ad3378880f78cebd982f32afba8512bdefcc")
BASE64_246810 = "pbkdf2_sha256$1000$Y2VudHJhbC1zYWx0LTE2Yg==$q0q4ZOh5jB8K9H4ZraI2KwyLWwmH/OPNM9kPoIIhfsA="
# The demo's staff PIN 1234 as edge/demo.toml [locker.staff_pins] holds it.
DEMO_1234 = ("pbkdf2_sha256$20000$b9b80dee9172236a5fe42a76$"
             "6dae17f2d5b0f6afc1a8504736b42f1b9f9f3d9f9c6076682b8c6fe9576f8370")

CHECKERS = [pins.check_pin, locker_pins.check_pin, auth.check_pin]


@pytest.mark.parametrize("check", CHECKERS)
def test_hashes_of_both_old_encodings_verify_everywhere(check):
    assert check("1357", HEX_1357) and not check("1358", HEX_1357)
    assert check("246810", BASE64_246810) and not check("246811", BASE64_246810)
    assert check("1234", DEMO_1234) and not check("4321", DEMO_1234)


def test_each_caller_keeps_its_encoding_and_iteration_count():
    scheme, iterations, salt, digest = locker_pins.hash_pin("2468").split("$")
    assert (scheme, iterations, len(salt), len(digest)) == ("pbkdf2_sha256", "20000", 24, 64)
    int(salt + digest, 16)  # hex
    scheme, iterations, salt, digest = auth.hash_pin("2468").split("$")
    assert (scheme, iterations, len(salt), len(digest)) == ("pbkdf2_sha256", "200000", 24, 44)
    assert digest.endswith("=")
    # A salt given (the dummy hashes for unknown staff ids) gives the same hash as before.
    assert locker_pins.hash_pin("1357", salt=b"locker-salt!", iterations=1000) == HEX_1357
    assert auth.hash_pin("246810", salt=b"central-salt-16b", iterations=1000) == BASE64_246810


@pytest.mark.parametrize("stored", [
    "1234",                                               # a plain PIN pasted into the config
    "",
    "bcrypt$1000$abcd$" + "0" * 64,                       # another scheme
    "pbkdf2_sha256$1000$abcd$" + "0" * 63,                # a digest neither 64 hex nor 44 base64
    "pbkdf2_sha256$1000$zz$" + "0" * 64,                  # a salt that is not hex
    "pbkdf2_sha256$many$6c6f$" + "0" * 64,                # iterations not a number
    "pbkdf2_sha256$0$6c6f$" + "0" * 64,                   # no iterations
    "pbkdf2_sha256$1000$Y2Vu$" + "!" * 43 + "=",          # a digest that is not base64
    "pbkdf2_sha256$1000$6c6f$" + "0" * 64 + "$extra",
])
def test_anything_that_is_not_such_a_hash_refuses_without_an_error(stored):
    assert pins.check_pin("1234", stored) is False


def test_config_checks_refuse_plain_pins_in_both_places():
    assert locker_pins.check_staff_pins({"an": DEMO_1234, "binh": BASE64_246810}) is None
    problem = locker_pins.check_staff_pins({"an": "2468", "binh": "pbkdf2_sha256$1000"})
    assert "python -m edge.locker.pins 1234" in problem and "'an'" in problem and "'binh'" in problem
    with pytest.raises(auth.ConfigError, match="PIN hash must be pbkdf2_sha256"):
        auth.parse_staff("login lan 2468 operator Lan\n")
    assert auth.parse_staff(f"login lan {HEX_1357} operator Lan\n").logins["lan"].pin_hash == HEX_1357


def test_the_technicians_command_prints_a_hash_of_the_pin():
    """`python -m edge.locker.pins 1234`, as docs/locker.md tells a technician."""
    run = subprocess.run([sys.executable, "-m", "edge.locker.pins", "1234"], capture_output=True, text=True, check=True)
    printed = run.stdout.strip()
    assert printed.startswith("pbkdf2_sha256$20000$") and locker_pins.check_pin("1234", printed)
    run = subprocess.run([sys.executable, "-m", "edge.locker.pins"], capture_output=True, text=True)
    assert run.returncode == 2 and "usage: python -m edge.locker.pins PIN" in run.stderr
