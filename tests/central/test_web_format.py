"""How the dashboard writes durations, chart axes and CSV cells (no database needed)."""

from __future__ import annotations

import pytest

from edge.central.web.charts import bar_chart, nice_top
from edge.central.web.common import csv_cell, fmt_duration


@pytest.mark.parametrize("seconds,vi,en", [
    (None, "–", "–"), (45, "45 giây", "45 s"), (54.4, "54 giây", "54 s"), (720, "12 phút", "12 min"),
    (749, "12 phút", "12 min"), (3900, "1 giờ 05 phút", "1 h 05 min"), (5 * 86400, "5 ngày", "5 days"),
])
def test_durations_read_as_people_say_them(seconds, vi, en):
    assert fmt_duration(seconds, "vi") == vi and fmt_duration(seconds, "en") == en


def test_a_wait_chart_under_a_minute_has_an_axis_that_means_something():
    chart = bar_chart([0.4, 0.9, None, 0.7], ["1", "2", "3", "4"], title="wait", integer=False)
    ticks = [tick["text"] for tick in chart.ticks]
    assert len(set(ticks)) == len(ticks) >= 3 and ticks[0] == "0" and float(ticks[-1]) >= 0.9
    assert len(chart.bars) == 3                     # the day without data is a gap, not a zero bar


def test_counts_get_whole_ticks_and_an_empty_chart_says_so():
    assert nice_top(3, integer=True) == (3.0, 1.0)
    assert nice_top(97, integer=True)[0] == 100
    assert all(float(t["text"]).is_integer() for t in bar_chart([1, 3, 2], ["a", "b", "c"], title="n").ticks)
    assert bar_chart([0, 0, None], ["a", "b", "c"], title="n").empty


@pytest.mark.parametrize("value,shown", [
    ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"), ("+1", "'+1"), ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("HS-001", "HS-001"), (12, 12), ({"a": 1}, '{"a": 1}'),
])
def test_csv_cells_cannot_run_as_spreadsheet_formulas(value, shown):
    assert csv_cell(value) == shown
