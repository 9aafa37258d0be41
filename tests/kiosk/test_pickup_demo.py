"""`edge demo` as a newcomer runs it: the results it loads can be collected in Chromium, the face
one by the face the replay camera shows, and the receipt the QR camera simulator shows in its loop
fills in the code field (real locker simulator, real vision models, real QR service).

The demo runs with its built-in config, only the waits made for a visitor to watch shortened
(QUICKER): the same services, results and code paths, a minute less of looking at the screen."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge.kiosk.demo_results import RESULTS
from kiosk_harness import at_step, record_steps, saw_step, shot

pytestmark = pytest.mark.browser

FACE = next(r for r in RESULTS if r.face_photos)
PIN_ONLY = next(r for r in RESULTS if not r.face_photos)
READY_S = 150.0  # every service on one busy machine, the face models included
# edge/demo.toml's waits for a visitor, shortened: the thank-you screen (8 s; 3 s, not 1, so that the
# page hears of it even when a busy machine sends it late), the simulated citizen closing a door
# (3 s), the QR demo camera's loop of 7 images (3 s each, and its 10 s dedupe). The face check gets
# the time a busy test machine needs (it ends as soon as its frames are in: the demo camera gives 2
# a second and a check wants 3, so in 2 s a starved check is a retry, and the retries could use up
# the face step's 45 s).
QUICKER = {"kiosk": {"thanks_s": 3.0, "face_timeout_s": 15.0, "face_step_s": 120.0},
           "locker": {"sim": {"auto_close_s": 1.0}}, "qr": {"sim_interval_s": 0.5, "dedupe_s": 1.0}}
# `edge demo ARGS` with QUICKER merged into its built-in config before it is validated.
RUN_DEMO = """
import json, sys
import edge.demo
from edge import config

quicker, validate, built_in = json.loads(sys.argv[1]), config.from_dict, edge.demo.demo_config

def merged(data, changes):
    for key, value in changes.items():
        data[key] = merged(dict(data.get(key) or {}), value) if isinstance(value, dict) else value
    return data

def demo_config(*args):
    config.from_dict = lambda data: validate(merged(data, quicker))
    try:
        return built_in(*args)
    finally:
        config.from_dict = validate

edge.demo.demo_config = demo_config
from edge.cli import main
sys.exit(main(sys.argv[2:]))
"""


class Demo:
    """`edge demo` (QUICKER) in a subprocess; its console lines are read on a thread."""

    def __init__(self, seconds: float, errors: Path):
        self.errors = errors  # its stderr (log lines, a traceback): told when it never printed what we wait for
        with open(errors, "w") as stderr:
            self.proc = subprocess.Popen([sys.executable, "-c", RUN_DEMO, json.dumps(QUICKER), "demo", "--seconds",
                                          str(seconds)], stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout_s: float = READY_S) -> re.Match:
        deadline = time.monotonic() + timeout_s
        for line in self.seen:
            if m := re.search(pattern, line):
                return m
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if m := re.search(pattern, line):
                return m
        exited = "" if self.proc.poll() is None else f" (it exited with {self.proc.returncode})"
        raise AssertionError(f"the demo never printed /{pattern}/{exited}; it printed:\n" + "\n".join(self.seen[-40:])
                             + "\nand on stderr:\n" + self.errors.read_text(errors="replace")[-3000:])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def demo(tmp_path):
    d = Demo(seconds=300, errors=tmp_path / "demo-stderr.txt")
    try:
        yield d
    finally:
        d.stop()


def keypad(page, text):
    for key in text:
        page.click(f"#codepad button[data-key='{key}']")


def test_the_demo_results_are_collected_in_the_browser(demo, page, tmp_path):
    url = demo.wait_for(r"^\s+kiosk\s+(http://\S+/kiosk)$").group(1)
    demo.wait_for(re.escape(FACE.code) + r"\s+face")
    demo.wait_for(re.escape(PIN_ONLY.code) + r"\s+PIN")
    scanned = demo.wait_for(r"(\S+)\s+PIN (\d+)\s+\(the receipt the QR demo camera shows")
    demo.wait_for("the demo session was cancelled")  # the demo's own button press is over
    record_steps(page)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    shot(page, tmp_path, "demo-1-start")
    page.click("#start")
    at_step(page, "code")
    keypad(page, FACE.code.replace(".", "").replace("-", ""))  # the separators come by themselves
    assert page.input_value("#code") == FACE.code
    page.click("#code-submit")
    # The replay camera shows the enrolled person: the face step opens the door by itself (the
    # demo's still photo cannot turn its head, so edge/demo.toml switches only the challenge off).
    at_step(page, "face", "open")
    at_step(page, "open", timeout=120_000)
    assert re.fullmatch(r"Ngăn số \d+ đang mở", page.inner_text("#open-title"))
    shot(page, tmp_path, "demo-3-open")
    saw_step(page, "thanks", timeout=30_000)  # the simulator closes the door (its screen may be gone again)
    # The PIN result: its code, then its PIN on the keypad.
    at_step(page, "start", timeout=30_000)
    page.click("#start")
    at_step(page, "code")
    keypad(page, PIN_ONLY.code.replace(".", "").replace("-", ""))
    page.click("#code-submit")
    at_step(page, "pin")
    for key in PIN_ONLY.pin:
        page.click(f"#keypad button[data-key='{key}']")
    page.click("#keypad button[data-key='✓']")
    at_step(page, "open", timeout=20_000)
    # The receipt the QR demo camera shows in its loop: it fills in the code field of a started
    # session (it never starts one, never spends a try); the citizen confirms it, then the PIN.
    at_step(page, "start", timeout=30_000)
    page.click("#start")
    at_step(page, "code")
    page.wait_for_function(f"document.querySelector('#code').value === '{scanned.group(1)}'", timeout=45_000)
    assert "Đã đọc mã QR" in page.inner_text("#code-notice")
    shot(page, tmp_path, "demo-4-scanned")
    page.click("#code-submit")
    at_step(page, "pin")
    for key in scanned.group(2):
        page.click(f"#keypad button[data-key='{key}']")
    page.click("#keypad button[data-key='✓']")
    at_step(page, "open", timeout=20_000)
