"""`edge bench match` runs end to end at a small size and reports every field (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_match_smoke():
    out = subprocess.run(
        [sys.executable, "-m", "edge", "bench", "match", "--size", "20000", "--dims", "64",
         "--rounds", "3", "--recall-queries", "200", "--json"],
        capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    (r,) = report["results"]
    assert r["dim"] == 64 and r["size"] == 20_000 and r["fast_index"]
    for table in ("single_ms", "batch16_ms"):
        assert {"numpy", "exact", "fast"} <= set(r[table]) and all(v > 0 for v in r[table].values())
    assert 0.99 <= r["recall_at_1"] <= 1.0 and r["queries"] == 200
    assert r["copy_bandwidth_gb_s"] > 0 and r["floor_ms"]["fast"] < r["floor_ms"]["exact"]
    assert r["bytes_per_template"] == {"exact": 256, "fast": 288, "fast_scan": 32}
    assert set(r["verdict"]) >= {"exact_vs_numpy", "fast_speedup_vs_numpy", "exact_ok", "fast_ok"}
