"""Build the face-embedding ONNX model from dlib's ResNet weights (`edge vision convert`).

The weights come from the `face-recognition-models` PyPI package (public domain); nothing is
downloaded. The graph is written with onnx.helper: uint8 NHWC chips in, mean-subtract and /256
as dlib's input layer does, 29 convolutions with the affine (frozen batch-norm) layers folded
into them, residual adds, global average pool, fc 256->128 without bias. dlib's residual add
zero-pads the smaller tensor (channels, and bottom/right rows and columns), so an explicit Pad
goes before each Add whose inputs differ in shape. Re-running is cheap: the output is left alone
when its recorded checksum still matches both the source weights and the file on disk.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from edge.vision.dlibdat import Layer, ModelFormatError, read_layers

EMBEDDING_MODEL = "dlib_face_recognition_resnet_model_v1.onnx"
MANIFEST = "manifest.json"
OPSET = 13
CONVERTER_VERSION = 1  # bump when the graph changes, so old outputs are rebuilt
CHIP_SIZE = 150


def dlib_weights_path() -> Path:
    import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location())


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert(out_dir: str | Path, *, source: str | Path | None = None, force: bool = False,
            progress: Callable[[str], None] = lambda text: None) -> Path:
    """Write the embedding model into `out_dir` (skipped when up to date); returns its path."""
    out_dir = Path(out_dir)
    source = Path(source) if source else dlib_weights_path()
    target = out_dir / EMBEDDING_MODEL
    manifest_path = out_dir / MANIFEST
    progress(f"checking {source.name}")
    source_sha = sha256(source)
    if not force and _up_to_date(manifest_path, target, source_sha):
        progress(f"{target} is up to date (checksum matches), nothing to do")
        return target
    started = time.monotonic()
    progress(f"reading dlib weights ({source.stat().st_size / 1e6:.1f} MB)")
    layers = read_layers(source.read_bytes())
    progress(f"parsed {len(layers)} layers; building the ONNX graph")
    model = build_model(layers, progress=progress)
    import onnx

    progress("checking the graph with onnx.checker")
    onnx.checker.check_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".onnx.tmp")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(target)  # atomic: a half-written model is never left under the real name
    manifest = _read_manifest(manifest_path)
    manifest[EMBEDDING_MODEL] = {"source": source.name, "source_sha256": source_sha,
                                 "sha256": sha256(target), "converter": CONVERTER_VERSION, "opset": OPSET}
    _write_manifest(manifest_path, manifest)
    progress(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.1f} s")
    return target


def _up_to_date(manifest_path: Path, target: Path, source_sha: str) -> bool:
    entry = _read_manifest(manifest_path).get(EMBEDDING_MODEL, {})
    return (target.exists() and entry.get("source_sha256") == source_sha
            and entry.get("converter") == CONVERTER_VERSION and entry.get("sha256") == sha256(target))


def _read_manifest(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_manifest(path: Path, manifest: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


# -- graph ---------------------------------------------------------------------------------------

class _Graph:
    """Collects nodes and initialisers while tracking each tensor's static NCHW shape."""

    def __init__(self):
        self.nodes: list = []
        self.inits: list = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, prefix: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], shape: tuple[int, ...], **attrs) -> str:
        from onnx import helper

        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        self.shapes[out] = shape
        return out


def _pool_out(size: int, window: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - window) // stride


def _conv(g: _Graph, x: str, con: Layer, affine: Layer) -> str:
    # Fold the affine layer: scale * (W x + b) + shift == (scale W) x + (scale b + shift).
    scale, shift = affine.params["scale"], affine.params["shift"]
    weight = con.params["weight"] * scale[:, None, None, None]
    bias = con.params["bias"] * scale + shift
    (sy, sx), (py, px) = con.params["stride"], con.params["pad"]
    n, _, h, w = g.shapes[x]
    kh, kw = weight.shape[2:]
    shape = (n, weight.shape[0], _pool_out(h, kh, sy, py), _pool_out(w, kw, sx, px))
    return g.node("Conv", [x, g.const("w", weight.astype(np.float32)), g.const("b", bias.astype(np.float32))],
                  shape, kernel_shape=[kh, kw], strides=[sy, sx], pads=[py, px, py, px])


def _pool(g: _Graph, x: str, layer: Layer, op: str) -> str:
    (wy, wx), (sy, sx), (py, px) = layer.params["window"], layer.params["stride"], layer.params["pad"]
    n, c, h, w = g.shapes[x]
    if wy == 0 and wx == 0:  # dlib's avg_pool_everything
        return g.node("GlobalAveragePool", [x], (n, c, 1, 1))
    shape = (n, c, _pool_out(h, wy, sy, py), _pool_out(w, wx, sx, px))
    return g.node(op, [x], shape, kernel_shape=[wy, wx], strides=[sy, sx], pads=[py, px, py, px])


def _pad_to(g: _Graph, x: str, shape: tuple[int, ...]) -> str:
    """Zero-pad channels and bottom/right to `shape`, as dlib's add_prev does implicitly."""
    have = g.shapes[x]
    if have == shape:
        return x
    extra = [0, 0, 0, 0, 0, shape[1] - have[1], shape[2] - have[2], shape[3] - have[3]]
    return g.node("Pad", [x, g.const("pads", np.array(extra, dtype=np.int64))], shape, mode="constant")


def _add(g: _Graph, a: str, b: str) -> str:
    sa, sb = g.shapes[a], g.shapes[b]
    shape = tuple(max(p, q) for p, q in zip(sa, sb))
    return g.node("Add", [_pad_to(g, a, shape), _pad_to(g, b, shape)], shape)


def build_model(layers: list[Layer], *, progress: Callable[[str], None] = lambda text: None):
    """The ONNX ModelProto for the dlib ResNet described by `layers` (innermost first)."""
    from onnx import TensorProto, helper

    kinds = [layer.kind for layer in layers]
    if not kinds or kinds[0] != "input" or kinds[-1] != "fc" or kinds.count("con") != 29:
        raise ModelFormatError(f"not dlib's face-recognition ResNet: layers {kinds[:6]}..., "
                               f"{kinds.count('con')} convolutions (expected 29)")
    g = _Graph()
    size = layers[0].params["size"]
    if tuple(size) != (CHIP_SIZE, CHIP_SIZE):
        raise ModelFormatError(f"input size {size}, expected {CHIP_SIZE}x{CHIP_SIZE}")
    mean = np.array(layers[0].params["mean_rgb"], dtype=np.float32)
    g.shapes["chips"] = (-1, CHIP_SIZE, CHIP_SIZE, 3)
    x = g.node("Cast", ["chips"], (-1, CHIP_SIZE, CHIP_SIZE, 3), to=TensorProto.FLOAT)
    x = g.node("Sub", [x, g.const("mean_rgb", mean)], g.shapes[x])
    x = g.node("Mul", [x, g.const("inv256", np.array(1 / 256, dtype=np.float32))], g.shapes[x])
    x = g.node("Transpose", [x], (-1, 3, CHIP_SIZE, CHIP_SIZE), perm=[0, 3, 1, 2])

    rest = layers[1:]
    x = g.node("Relu", [_conv(g, x, rest[0], rest[1])], None)
    g.shapes[x] = g.shapes[g.nodes[-1].input[0]]
    x = _pool(g, x, rest[2], "MaxPool")
    i, units = 3, 0
    while rest[i].kind == "con":
        block_in = x
        y = g.node("Relu", [_conv(g, block_in, rest[i], rest[i + 1])], None)
        g.shapes[y] = g.shapes[g.nodes[-1].input[0]]
        y = _conv(g, y, rest[i + 2], rest[i + 3])
        i += 4
        shortcut = block_in
        if rest[i].kind == "avg_pool" and rest[i].params["window"] != (0, 0):  # residual_down
            shortcut = _pool(g, block_in, rest[i], "AveragePool")
            i += 1
        x = g.node("Relu", [_add(g, y, shortcut)], None)
        g.shapes[x] = g.shapes[g.nodes[-1].input[0]]
        units += 1
        if units % 4 == 0:
            progress(f"  residual unit {units}, tensor {g.shapes[x][1:]}")
    x = _pool(g, x, rest[i], "AveragePool")
    x = g.node("Flatten", [x], (-1, g.shapes[x][1]), axis=1)
    fc = rest[i + 1]
    out = g.node("MatMul", [x, g.const("fc", fc.params["weight"].astype(np.float32))], (-1, 128))
    if fc.params["bias"] is not None:
        out = g.node("Add", [out, g.const("fc_bias", fc.params["bias"].astype(np.float32))], (-1, 128))
    g.nodes.append(helper.make_node("Identity", [out], ["embedding"], name="embedding"))
    progress(f"  {units} residual units, {len(g.nodes)} nodes")
    graph = helper.make_graph(
        g.nodes, "dlib_face_recognition_resnet_v1",
        [helper.make_tensor_value_info("chips", TensorProto.UINT8, ["N", CHIP_SIZE, CHIP_SIZE, 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 128])],
        g.inits)
    model = helper.make_model(graph, producer_name="edge.vision.convert",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.doc_string = "dlib_face_recognition_resnet_model_v1 (public domain), converted by edge"
    return model


def main(out: str, force: bool = False) -> int:
    """CLI entry: progress lines on stderr, exit 0 on success."""
    try:
        convert(out, force=force, progress=lambda text: print(f"vision convert: {text}", file=sys.stderr, flush=True))
    except (ModelFormatError, OSError) as err:
        print(f"vision convert: error: {err}", file=sys.stderr)
        return 1
    return 0
