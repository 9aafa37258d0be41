"""`edge bench match` runs end to end at a small size and reports every field, the recall
contract included (no timing asserted). 5,000 templates still train the index (64 lists) and
run every method and FAISS baseline; 20,000 only made the builds longer. `--warmup-s 0`: the
0.15 s of untimed calls before each of the 60 timed blocks steady the figures, which a smoke
does not read. The contract at scale is `edge bench match` itself (docs/gallery.md)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_match_smoke():
    out = subprocess.run(
        [sys.executable, "-m", "edge", "bench", "match", "--size", "5000", "--dims", "64",
         "--rounds", "3", "--recall-queries", "300", "--warmup-s", "0", "--json"],
        capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    (r,) = report["results"]
    assert r["dim"] == 64 and r["size"] == 5_000 and r["fast_index"] and r["lists"] >= 16
    methods = r["methods"]
    assert {"numpy", "exact", "index"} <= set(methods)
    for m in methods.values():
        assert m["single_ms"] > 0 and m["batch16_ms"] > 0 and 0 <= m["recall_at_1"] <= 1
        assert m["build_s"] >= 0 and m["bytes_per_identity"] > 0
    assert r["recall_at_1"] == methods["index"]["recall_at_1"] >= 0.99 and r["queries"] == 300
    assert methods["exact"]["recall_at_1"] == 1.0
    if "faiss_ivf" in methods:  # faiss-cpu is a dev dependency; the bench skips it when absent
        assert methods["faiss_ivf"]["setting"].startswith("nprobe ")
        assert methods["faiss_hnsw"]["setting"].startswith("efSearch ")
        assert "beats_faiss_ivf" in r["verdict"]
    assert {"recall_ok", "memory_ok", "exact_ok", "memory_vs_float32"} <= set(r["verdict"])
    assert r["copy_bandwidth_gb_s"] > 0


def test_a_size_too_small_for_an_index_is_refused_by_name():
    """Below 2,048 templates the gallery trains no index: the bench says so instead of a KeyError."""
    out = subprocess.run([sys.executable, "-m", "edge", "bench", "match", "--size", "1500"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--size >= 2048" in out.stderr and "Traceback" not in out.stderr
