"""`edge bench qr --dir DIR` on labelled photographs, in the layouts public sets use.

The smoke runs use small sets made here in each layout (OpenCV's dataset_config.json,
zxing-cpp's image + .txt, labels.json). The full run on real photographs is slow and needs them
on disk: EDGE_QR_PHOTOS=/path/to/set pytest -m slow tests/qr/test_bench_photos.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.qr import bench, labelled
from edge.qr.synth import qr_image


def photo(text: str, angle: float, size=(320, 240)) -> np.ndarray:
    """A code on a gray desk, turned and seen a little from the side, slightly blurred."""
    code = qr_image(text, module_px=4)
    h, w = code.shape
    desk = np.full((size[1], size[0]), 120, np.uint8)
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 0.9)
    turn[:, 2] += (size[0] - w) / 2, (size[1] - h) / 2
    warped = cv2.warpAffine(code, turn, size, borderValue=120)
    return cv2.cvtColor(cv2.GaussianBlur(np.maximum(desk, warped), (0, 0), 0.7), cv2.COLOR_GRAY2BGR)


def side_by_side(*images):
    return np.hstack(images)


def edge_bench(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", "bench", "qr", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def opencv_layout(tmp_path) -> Path:
    """Two folders as in opencv_extra/testdata/cv/qrcode/: single codes and a multi-code scene."""
    root = tmp_path / "qrcode"
    (root / "multiple").mkdir(parents=True)
    cv2.imwrite(str(root / "version_1_up.jpg"), photo("aQqdqecq%hre3?JX", 12))
    cv2.imwrite(str(root / "russian.jpg"), photo("Съешь же ещё этих мягких французских булок", -20))
    (root / "dataset_config.json").write_text(json.dumps({"test_images": [
        {"image_name": "version_1_up.jpg", "x": [[1, 2, 3, 4]], "y": [[1, 2, 3, 4]], "info": ["aQqdqecq%hre3?JX"]},
        {"image_name": "russian.jpg", "info": "Съешь же ещё этих мягких французских булок"},  # a bare text
    ]}, ensure_ascii=False), encoding="utf-8")
    scene = side_by_side(photo("Great Place to work", 5), photo("Great Place to work", -8), photo("计算机视觉", 30))
    cv2.imwrite(str(root / "multiple" / "3_qrcodes.png"), scene)
    (root / "multiple" / "dataset_config.json").write_text(json.dumps({"multiple_images": [
        {"image_name": "3_qrcodes.png", "info": ["Great Place to work", "Great Place to work", "计算机视觉"]},
    ]}, ensure_ascii=False), encoding="utf-8")
    return root


def test_opencv_layout_is_read_with_its_labels(opencv_layout):
    items, layout = labelled.find(opencv_layout)
    assert "dataset_config.json" in layout
    assert {i.name: i.texts for i in items} == {
        "version_1_up.jpg": ("aQqdqecq%hre3?JX",),
        "russian.jpg": ("Съешь же ещё этих мягких французских булок",),
        "3_qrcodes.png": ("Great Place to work", "计算机视觉"),  # one text twice counts once
    }


def test_bench_on_opencv_layout_reports_all_three_decoders_and_their_union(opencv_layout):
    result = edge_bench("--dir", str(opencv_layout), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["frames"] == 3 and report["codes"] == 4
    assert set(report["results"]) == {"edge.qr.decode", "zxing-cpp alone", "pyzbar alone"}
    mine = report["results"]["edge.qr.decode"]
    assert mine["decoded"] == 4 and mine["wrong"] == 0
    assert report["union_missed_by_edge"] == 0
    assert all(r["ms_per_frame"] > 0 for r in report["results"].values())


def test_zxing_sample_layout_uses_the_txt_of_the_same_stem(tmp_path):
    cv2.imwrite(str(tmp_path / "1.png"), photo("Crème brûlée", 3))
    (tmp_path / "1.txt").write_text("Crème brûlée", encoding="utf-8")
    (tmp_path / "1.result.txt").write_text("symbologyIdentifier=]Q1\n", encoding="utf-8")  # metadata: ignored
    cv2.imwrite(str(tmp_path / "2-01.png"), photo("part", 0))  # no 2-01.txt: a structured-append part
    samples, source = bench.load_or_make(str(tmp_path), 0, 0)
    assert [(name, texts) for name, _, texts in samples] == [("1.png", ["Crème brûlée"])]
    assert ".txt" in source
    report = bench.run(samples)
    assert report["results"]["edge.qr.decode"]["decoded"] == 1


def test_a_folder_without_labels_is_refused_with_the_reason(tmp_path):
    cv2.imwrite(str(tmp_path / "photo.png"), photo("1.001193", 0))
    with pytest.raises(SystemExit, match="no labels.json, no dataset_config.json and no image with a .txt label"):
        bench.load_or_make(str(tmp_path), 0, 0)


def test_a_broken_label_file_is_named(tmp_path):
    (tmp_path / "dataset_config.json").write_text('{"test_images": [{"info": ["x"]}]}', encoding="utf-8")
    with pytest.raises(SystemExit, match="dataset_config.json: 'test_images' has an entry without an image_name"):
        bench.load_or_make(str(tmp_path), 0, 0)


@pytest.mark.slow
def test_real_photographs_targets():
    """On a real labelled set (e.g. opencv_extra's testdata/cv/qrcode or zxing-cpp's
    test/samples/qrcode-*): at least zxing-cpp's codes, no more wrong texts than it."""
    folder = os.environ.get("EDGE_QR_PHOTOS")
    if not folder:
        pytest.skip("set EDGE_QR_PHOTOS to a folder of labelled QR photographs")
    samples, _ = bench.load_or_make(folder, 0, 0)
    report = bench.run(samples)
    mine, zxing = report["results"]["edge.qr.decode"], report["results"]["zxing-cpp alone"]
    assert mine["decoded"] >= zxing["decoded"]
    assert mine["wrong"] <= zxing["wrong"]
