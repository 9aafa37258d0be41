"""`edge doctor | head` ends quietly; `edge bench --help` says what each benchmark measures."""

import os
import subprocess
import sys


def test_a_closed_pipe_ends_the_command_without_a_traceback():
    read, write = os.pipe()
    os.close(read)  # the reader (`head -0`) is gone before the first line
    proc = subprocess.run([sys.executable, "-m", "edge", "doctor", "--offline"], stdout=write,
                          stderr=subprocess.PIPE, timeout=120, text=True)
    os.close(write)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == 141


def test_bench_help_says_what_each_benchmark_measures():
    out = subprocess.run([sys.executable, "-m", "edge", "bench", "--help"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "COLUMNS": "250"}).stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("    ") and line.split()}
    for name, words in {"pager": "button press", "qr": "zxing-cpp", "match": "1M face templates",
                        "kiosk": "Chromium", "locker": "first reply byte", "mqtt": "outbox drain"}.items():
        assert words in lines[name], (name, lines.get(name))
