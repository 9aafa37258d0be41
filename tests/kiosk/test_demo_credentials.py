"""The demo's start message lists only results a newcomer can collect at /kiosk (QA, issue 19): the
locker's own demo results (-9001 and up) are loaded and collected by the demo itself, so typing one
only ever answered "already collected"."""

from datetime import datetime

from edge.demo import _print_credentials, demo_config
from edge.kiosk import demo_results
from edge.kiosk.demo_results import RESULTS, scanned_receipt_result
from edge.locker.service import demo_receipt


class OneInstant(datetime):
    """The demo's "now", held still: the message and the test read the same day even at midnight."""

    held = datetime.now()

    @classmethod
    def now(cls, tz=None):
        return cls.held


def test_the_start_message_lists_the_results_a_visitor_can_collect(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo_results, "datetime", OneInstant)
    config = demo_config("mqtt://127.0.0.1:1", str(tmp_path))
    _print_credentials(config)
    out = capsys.readouterr().out
    assert demo_receipt(1) not in out and "-9001" not in out
    receipt = scanned_receipt_result(config.site)
    assert receipt.code.endswith(OneInstant.held.strftime("%y%m%d") + "-0001")
    for result in RESULTS + (receipt,):
        line = next((line for line in out.splitlines() if result.code in line), None)
        assert line is not None, f"{result.code} missing from:\n{out}"
        assert f"PIN {result.pin}" in line
    assert "face, or PIN 1357" in out and "staff PIN 1234" in out
