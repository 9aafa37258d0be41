"""The converter: a checked ONNX graph, idempotent re-runs, clear errors on damaged weights."""

import os

import numpy as np
import onnx
import pytest

from edge.vision import convert as conv
from edge.vision.dlibdat import ModelFormatError, Reader, read_layers


@pytest.mark.parametrize("hex_bytes, value", [
    ("0105", 5), ("8105", -5), ("020001", 256), ("0100", 0), ("0380129f", 0x9F1280), ("0496000000", 150),
])
def test_dlib_integers(hex_bytes, value):
    assert Reader(bytes.fromhex(hex_bytes)).int() == value


def test_dlib_float_is_mantissa_then_exponent():
    # 122.782 as dlib writes the red mean of the input layer: 0xf59062 * 2^-17
    assert Reader(bytes.fromhex("036290f5" "8111")).float() == pytest.approx(122.782, abs=1e-3)


def test_truncated_and_bad_bytes_are_refused():
    with pytest.raises(ModelFormatError, match="truncated"):
        Reader(bytes.fromhex("03 01 02")).int()
    with pytest.raises(ModelFormatError, match="control byte"):
        Reader(bytes.fromhex("0f")).int()


def test_convert_writes_a_checked_model_then_skips(tmp_path):
    lines = []
    target = conv.convert(tmp_path, progress=lines.append)
    model = onnx.load(str(target))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version >= 13
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") == 29 and "Pad" in ops  # zero-pad before the mismatched residual adds
    assert any("wrote" in line for line in lines)
    stamp = target.stat().st_mtime_ns
    lines.clear()
    conv.convert(tmp_path, progress=lines.append)
    assert target.stat().st_mtime_ns == stamp and any("up to date" in line for line in lines)
    target.write_bytes(b"damaged")  # a corrupted output is noticed by its checksum and rebuilt
    conv.convert(tmp_path, progress=lines.append)
    assert target.stat().st_size > 20_000_000


def test_converted_model_matches_the_setup_model(tmp_path, model_dir):
    import onnxruntime as ort

    chips = np.random.default_rng(1).integers(0, 255, (2, 150, 150, 3), dtype=np.uint8)
    fresh = ort.InferenceSession(str(conv.convert(tmp_path)), providers=["CPUExecutionProvider"])
    setup = ort.InferenceSession(str(model_dir / conv.EMBEDDING_MODEL), providers=["CPUExecutionProvider"])
    assert np.allclose(fresh.run(None, {"chips": chips})[0], setup.run(None, {"chips": chips})[0], atol=1e-6)


def test_damaged_weights_give_a_clear_error(tmp_path):
    data = conv.dlib_weights_path().read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError):
        conv.convert(tmp_path / "out", source=cut)
    assert not (tmp_path / "out" / conv.EMBEDDING_MODEL).exists()
    other = tmp_path / "other.dat"
    other.write_bytes(os.urandom(4096))
    with pytest.raises(ModelFormatError, match="not dlib's face-recognition ResNet"):
        conv.build_model(read_layers(other.read_bytes()))


def test_cli_convert_reports_progress(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "edge", "vision", "convert", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "vision convert: wrote" in out.stderr and (tmp_path / conv.EMBEDDING_MODEL).is_file()
