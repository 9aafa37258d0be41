"""`edge locker open|status|scan` for technicians, against the simulators (`--port sim`)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def edge(*args):
    done = subprocess.run([sys.executable, "-m", "edge", "locker", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("driver,board,lock,frame", [
    ("kerong", 0, 1, "02 00 31 03 36"),
    ("8a", 1, 1, "8a 01 01 11 9b"),
    ("modbus", 1, 1, "01 05 02 00 00 03 8c 73"),
])
def test_open_prints_the_exact_frame_and_the_door(driver, board, lock, frame):
    rc, out, _ = edge("open", "--driver", driver, "--port", "sim", "--board", str(board), "--lock", str(lock), "--json")
    result = json.loads(out)
    assert rc == 0 and result["ok"] and result["sent"] == frame and result["frames"] == 1
    assert result["door_open"] in (True, None)  # Modbus echoes carry no door bit


def test_status_text_and_json():
    rc, out, _ = edge("status", "--driver", "kerong", "--port", "sim", "--board", "2")
    assert rc == 0 and "kerong board 2" in out and "lock 16: closed" in out
    rc, out, _ = edge("status", "--driver", "8a", "--port", "sim", "--board", "3", "--json", "--polarity", "open_low")
    result = json.loads(out)
    assert rc == 0 and len(result["locks"]) == 24 and {lock["door"] for lock in result["locks"]} == {"closed"}


@pytest.mark.parametrize("args,code,message", [
    (("open", "--driver", "kerong", "--port", "sim", "--board", "16", "--lock", "1"), 2, "board 16 out of range: expected 0..15"),
    (("open", "--driver", "8a", "--port", "sim", "--board", "1", "--lock", "0"), 2, "lock 0 out of range"),
    (("status", "--driver", "kerong", "--port", "/dev/nonexistent-locker", "--board", "0"), 1, "could not open port"),
    (("status", "--driver", "gpio", "--port", "gpio", "--board", "1"), 1, "GPIO unavailable"),
])
def test_bad_input_gets_a_clear_error_and_no_traceback(args, code, message):
    if "gpio" in args and Path("/proc/device-tree/model").exists():
        pytest.skip("this machine has real GPIO")
    rc, out, err = edge(*args)
    assert rc == code and message in err and "Traceback" not in err


def test_gpio_open_on_the_mock_factory():
    rc, out, _ = edge("open", "--driver", "gpio", "--port", "sim", "--board", "1", "--lock", "2", "--json")
    assert rc == 0 and json.loads(out)["door_open"] is True
