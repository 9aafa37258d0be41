"""`edge qr …` and `edge bench qr` as a user runs them: real processes, real files."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import cv2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.qr import bench, catalog
from edge.qr.synth import qr_image

OLD = "https://dichvucong.gov.vn/p/home/dvc-chi-tiet-thu-tuc-hanh-chinh.html?ma_thu_tuc="


def edge(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_scan_prints_one_json_line_per_image(tmp_path):
    good = tmp_path / "birth.png"
    cv2.imwrite(str(good), qr_image("Đăng ký khai sinh", module_px=4))
    code = tmp_path / "code.jpg"
    cv2.imwrite(str(code), qr_image("1.001193", module_px=4))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    result = edge("qr", "scan", "--json", str(good), str(code), str(broken), str(tmp_path / "missing.png"))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(good), str(code), str(broken), str(tmp_path / "missing.png")]
    assert lines[0]["codes"] == [{"text": "Đăng ký khai sinh", "kind": "unknown"}]
    assert lines[1]["codes"] == [{"text": "1.001193", "kind": "procedure"}]
    assert all(isinstance(line["ms"], (int, float)) for line in lines)
    assert "not a readable image" in lines[2]["error"]
    assert lines[3]["error"] == "no such file"
    assert result.returncode == 1


def test_scan_of_good_images_exits_zero(tmp_path):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), qr_image("000.00.01.H29-240115-0001", module_px=4))
    result = edge("qr", "scan", str(image))
    assert result.returncode == 0
    assert json.loads(result.stdout)["codes"] == [{"text": "000.00.01.H29-240115-0001", "kind": "receipt"}]


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=2000))
def test_random_file_bytes_are_an_error_line_not_a_crash(tmp_path_factory, data):
    from edge.qr.cli import _read_image

    path = tmp_path_factory.mktemp("fuzz") / "x.png"
    path.write_bytes(data)
    image, why = _read_image(str(path))
    assert image is not None or why


def test_truncated_png_is_refused(tmp_path):
    from edge.qr.cli import _read_image

    ok, png = cv2.imencode(".png", qr_image("1.001193", module_px=4))
    path = tmp_path / "cut.png"
    path.write_bytes(png.tobytes()[:200])
    image, why = _read_image(str(path))
    assert image is None and "not a readable image" in why


def test_parse_command():
    result = edge("qr", "parse", OLD + "1.001193")
    assert json.loads(result.stdout)["fields"]["code"] == "1.001193"


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_sheet_writes_one_poster_per_code(tmp_path, fmt):
    result = edge("qr", "sheet", "--out", str(tmp_path / "out"), "--format", fmt, "--codes", "1.001193,2.000815")
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "out").iterdir())
    assert [f.name for f in files] == [f"1.001193.{fmt}", f"2.000815.{fmt}"]
    if fmt == "png":
        scan = edge("qr", "scan", str(files[0]))
        assert json.loads(scan.stdout)["codes"] == [{"text": OLD + "1.001193", "kind": "procedure_url"}]
    else:
        text = files[0].read_text(encoding="utf-8")
        assert "Đăng ký khai sinh" in text and "Mã thủ tục: 1.001193" in text


def test_sheet_pdf_with_vietnamese_font(tmp_path):
    out = tmp_path / "posters.pdf"
    result = edge("qr", "sheet", "--out", str(out), "--payload", "code")
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    assert b"DejaVu" in data
    sample_size = len(catalog.read_file(catalog.SAMPLE))
    assert len(re.findall(rb"/Type\s*/Page(?!s)", data)) == sample_size  # one A4 page per procedure


def test_sheet_refuses_unknown_codes_and_fonts(tmp_path):
    result = edge("qr", "sheet", "--out", str(tmp_path / "p.pdf"), "--codes", "9.999999")
    assert result.returncode == 1 and "not in the catalog: 9.999999" in result.stderr
    result = edge("qr", "sheet", "--out", str(tmp_path / "p.pdf"), "--font", str(tmp_path / "none.ttf"))
    assert result.returncode == 1 and "no Vietnamese-capable TTF font" in result.stderr


def test_catalog_import_and_show(tmp_path):
    db = tmp_path / "edge.db"
    good = tmp_path / "good.csv"
    good.write_text("code,name,queue_service\n1.001193,Đăng ký khai sinh,hotich\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name\n1.0011934,X\n", encoding="utf-8")
    result = edge("qr", "catalog", "import", str(bad), "--db", str(db))
    assert result.returncode == 1
    assert "row 1: code: found '1.0011934'" in result.stderr and "nothing imported" in result.stderr
    result = edge("qr", "catalog", "import", str(good), "--db", str(db))
    assert result.returncode == 0 and "1 added" in result.stdout
    shown = edge("qr", "catalog", "show", "1.001193.01", "--db", str(db))
    assert json.loads(shown.stdout)["name"] == "Đăng ký khai sinh"
    assert edge("qr", "catalog", "show", "2.000815", "--db", str(db)).returncode == 1


def test_bench_smoke_on_a_small_set(tmp_path):
    samples, _ = bench.load_or_make(str(tmp_path / "frames"), frames=12, seed=5)
    assert (tmp_path / "frames" / bench.LABELS).is_file()
    again, source = bench.load_or_make(str(tmp_path / "frames"), frames=999, seed=0)
    assert len(again) == 12 and "labels.json" in source  # a saved set is reused as it is
    report = bench.run(again)
    assert set(report["results"]) == {"edge.qr.decode", "zxing-cpp alone", "pyzbar alone"}
    mine = report["results"]["edge.qr.decode"]
    assert mine["wrong"] == 0
    assert mine["decoded"] >= report["results"]["zxing-cpp alone"]["decoded"]
    assert "edge.qr.decode" in bench.table(report, source)


def test_bench_command_json(tmp_path):
    result = edge("bench", "qr", "--frames", "6", "--seed", "2", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["frames"] == 6 and "gain_vs_zxing_pct" in report


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_bench_targets_on_the_full_set(seed):
    """The issue's targets on 240 frames (time is reported by `edge bench qr`, not asserted here)."""
    samples, _ = bench.load_or_make(None, frames=240, seed=seed)
    report = bench.run(samples)
    mine = report["results"]["edge.qr.decode"]
    assert mine["wrong"] == 0
    assert report["gain_vs_zxing_pct"] >= 15.0
    assert mine["decoded"] >= report["union_zxing_pyzbar"]
