"""`edge vision faces/enrol/verify/delete` as a technician runs them."""

import json
import subprocess
import sys

from tests.vision.conftest import FACES


def edge(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "edge", "vision", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_faces_lists_boxes_and_gate(model_dir):
    out = edge("faces", "--json", "--models", str(model_dir), str(FACES / "obama.jpg"), str(FACES / "two_people.jpg"))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows[0]["gate"] == "ok" and len(rows[0]["faces"]) == 1
    assert rows[1]["gate"] == "multiple_faces" and len(rows[1]["faces"]) == 2
    assert "embedding" not in out.stdout


def test_enrol_verify_delete_round_trip(tmp_path, model_dir):
    config = tmp_path / "edge.toml"
    config.write_text(f'site = "s1"\ndevice = "kiosk-01"\nrole = "kiosk"\ndata_dir = "{tmp_path / "data"}"\n'
                      f'[vision]\ncamera = "none"\nmodel_dir = "{model_dir}"\nthreads = 1\n'
                      'liveness_motion = "off"\n')  # still images: no head turn to see (test_liveness.py)
    common = ["--config", str(config), "--dossier", "HS-1", "--json"]
    out = edge("enrol", *common, "--actor", "clerk-1", *[str(FACES / "obama.jpg")] * 3)
    assert out.returncode == 0 and json.loads(out.stdout)["ok"], out.stderr
    out = edge("verify", *common, *[str(FACES / "obama2.jpg")] * 3)
    assert out.returncode == 0 and json.loads(out.stdout)["decision"] == "accept", out.stdout + out.stderr
    out = edge("verify", *common, *[str(FACES / "biden.jpg")] * 3)
    assert out.returncode == 1 and json.loads(out.stdout)["decision"] == "reject"
    out = edge("delete", *common, "--reason", "pickup")
    assert out.returncode == 0 and json.loads(out.stdout) == {"deleted": True}
    out = edge("verify", *common, str(FACES / "obama2.jpg"))
    assert json.loads(out.stdout)["reason"] == "not_enrolled"
    bad = edge("enrol", *common, "--actor", "clerk-1", str(tmp_path / "edge.toml"))
    assert bad.returncode == 2 and "not a readable image" in bad.stderr


def test_bench_smoke_json(model_dir):
    out = subprocess.run([sys.executable, "-m", "edge", "bench", "embed", "--json", "--repeat", "1", "--no-dlib",
                          "--threads", "1", "--models", str(model_dir)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["edge"]["frame"]["p50_ms"] > 0 and result["peak_rss_mb_edge"] > 0
    assert result["edge_decisions"]["biden.jpg"] == "reject" and result["edge_decisions"]["obama2.jpg"] == "accept"
    assert "bench embed:" in out.stderr  # progress goes to stderr
