"""Convert Minivision's MiniFASNet anti-spoofing weights (PyTorch .pth) to the ONNX files that
`edge.vision.antispoof` loads. Run once by a maintainer; the ONNX files are committed, so a device
never needs torch. Re-runnable:

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch onnx onnxruntime numpy
    git clone https://github.com/minivision-ai/Silent-Face-Anti-Spoofing /tmp/sfas   # or any checkout
    /tmp/torchenv/bin/python edge/vision/antispoof_convert.py --source /tmp/sfas

It checks the SHA-256 of each .pth against the pinned value, builds the network from the
upstream `src/model_lib/MiniFASNet.py` (imported from the checkout, not copied here), exports
opset 13 with a dynamic batch, compares onnxruntime against torch on random and constant
inputs, and writes SHA256SUMS. This file imports only the standard library at module level, so it
can live in the package without making torch a dependency.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent / "antispoof_models"
UPSTREAM = "https://github.com/minivision-ai/Silent-Face-Anti-Spoofing"
# file in resources/anti_spoof_models -> (ONNX name, builder in MiniFASNet.py, sha256 of the .pth)
WEIGHTS = {
    "2.7_80x80_MiniFASNetV2.pth": (
        "minifasnet_v2_2.7_80x80.onnx", "MiniFASNetV2",
        "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0"),
    "4_0_0_80x80_MiniFASNetV1SE.pth": (
        "minifasnet_v1se_4.0_80x80.onnx", "MiniFASNetV1SE",
        "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990"),
}
INPUT_SIZE = 80
CONV6_KERNEL = ((INPUT_SIZE + 15) // 16, (INPUT_SIZE + 15) // 16)  # upstream utility.get_kernel
MAX_DIFF = 1e-3  # largest |softmax(onnx) - softmax(torch)| accepted


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_network(source: Path, builder: str, weights: Path):
    import torch

    spec = importlib.util.spec_from_file_location("minifasnet_upstream", source / "src" / "model_lib" / "MiniFASNet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = getattr(module, builder)(conv6_kernel=CONV6_KERNEL)
    state = torch.load(weights, map_location="cpu")
    # upstream saved from DataParallel: keys start with "module."
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    model.load_state_dict(state)
    return model.eval()


def _compare(model, onnx_path: Path) -> float:
    """Largest softmax difference between torch and onnxruntime on a few 0..255 inputs."""
    import numpy as np
    import onnxruntime
    import torch

    rng = np.random.default_rng(0)
    inputs = [rng.uniform(0, 255, (4, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32),
              np.full((1, 3, INPUT_SIZE, INPUT_SIZE), 128.0, np.float32),
              np.zeros((1, 3, INPUT_SIZE, INPUT_SIZE), np.float32)]
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for x in inputs:
        with torch.no_grad():
            expected = torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()
        logits = session.run(None, {"image": x})[0]
        got = np.exp(logits - logits.max(axis=1, keepdims=True))
        got /= got.sum(axis=1, keepdims=True)
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def convert(source: Path, out_dir: Path = OUT_DIR, commit: str = "") -> dict:
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"upstream": UPSTREAM, "commit": commit, "models": []}
    for name, (onnx_name, builder, pinned) in WEIGHTS.items():
        weights = source / "resources" / "anti_spoof_models" / name
        found = sha256(weights)
        if found != pinned:
            raise SystemExit(f"{weights}: sha256 {found}, expected {pinned}: not the published weights")
        model = _load_network(source, builder, weights)
        target = out_dir / onnx_name
        dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
        torch.onnx.export(model, dummy, str(target), input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}}, opset_version=13, dynamo=False)
        worst = _compare(model, target)
        if worst > MAX_DIFF:
            raise SystemExit(f"{target}: onnxruntime differs from torch by {worst:.2e} (> {MAX_DIFF})")
        report["models"].append({"onnx": onnx_name, "from": f"resources/anti_spoof_models/{name}",
                                 "pth_sha256": found, "onnx_sha256": sha256(target),
                                 "max_softmax_diff_vs_torch": worst})
        print(f"{name} -> {target.name}: max softmax difference vs torch {worst:.1e}", file=sys.stderr)
    sums = "".join(f"{m['onnx_sha256']}  {m['onnx']}\n" for m in report["models"])
    (out_dir / "SHA256SUMS").write_text(sums)
    (out_dir / "PROVENANCE.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, type=Path,
                        help="a checkout of Silent-Face-Anti-Spoofing (resources/ and src/model_lib/)")
    parser.add_argument("--commit", default="", help="the upstream commit the checkout is at (recorded)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)
    convert(args.source, args.out, args.commit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
