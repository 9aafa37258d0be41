"""`edge bench qr [--dir DIR]`: edge.qr.decode against zxing-cpp alone and pyzbar alone, same frames.

Frames come from DIR when it holds labels in a layout edge.qr.labelled reads (`labels.json`,
OpenCV's `dataset_config.json` files, or zxing-cpp's image + `.txt` samples): real photographs.
Otherwise they are generated from a seed (edge.qr.synth) and, when DIR is given (new or empty),
saved there with a `labels.json` so the same set can be rerun or inspected.

`--photos` is the set committed with the source: zxing-cpp's QR samples in
`bench/qr-photos/zxing-cpp` (provenance and licence there). Codes a photograph holds that its
label misses (that set's `label-notes.json`) still count as wrong, and are reported apart.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from edge.qr.labelled import LABELS, LabelError, LabelNote, find, notes

# The labelled photographs committed with the source (not in the wheel: a source checkout's).
PHOTOS = Path(__file__).resolve().parents[2] / "bench" / "qr-photos" / "zxing-cpp"


def add_arguments(parser) -> None:
    parser.add_argument("dir", nargs="?", help="labelled photographs, or where to save generated frames")
    parser.add_argument("--dir", dest="dir_option", metavar="DIR", default=None,
                        help="the same as DIR: labelled photographs (labels.json, OpenCV dataset_config.json "
                             "files, or zxing-cpp image + .txt samples), or where to save generated frames")
    parser.add_argument("--photos", action="store_true",
                        help=f"the committed real photographs: {PHOTOS.relative_to(PHOTOS.parents[2])} "
                             "(zxing-cpp's QR samples; needs a source checkout)")
    parser.add_argument("--frames", type=int, default=240, help="generated frames (default 240)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--budget-ms", type=float, default=None, help="edge.qr per-frame budget (default: config default)")


def load_or_make(directory: str | None, frames: int, seed: int):
    import cv2

    from edge.qr.synth import make_set

    folder = Path(directory) if directory else None
    if folder is not None and folder.is_dir() and any(folder.iterdir()):
        try:
            items, layout = find(folder)
        except LabelError as err:
            raise SystemExit(f"bench qr: {err}") from None
        samples = []
        for item in items:
            image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
            if image is None:
                raise SystemExit(f"bench qr: cannot read {item.path}")
            samples.append((str(item.path.relative_to(folder)), image, list(item.texts)))
        return samples, f"{folder} ({len(samples)} photographs, {layout})"
    generated = make_set(frames, seed)
    samples = [(f"frame-{i:04d}.png", s.image, s.texts) for i, s in enumerate(generated)]
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, image, _ in samples:
            cv2.imwrite(str(folder / name), image)
        (folder / LABELS).write_text(json.dumps({n: t for n, _, t in samples}, ensure_ascii=False, indent=1),
                                     encoding="utf-8")
    return samples, f"{len(samples)} generated frames (seed {seed})"


def photos_dir() -> str:
    """The committed photo set, or a clear exit when this is not a source checkout."""
    if not (PHOTOS / "PROVENANCE.md").is_file():
        raise SystemExit(f"bench qr: --photos needs the source checkout's {PHOTOS} (not installed with the "
                         "package); clone the repository or pass --dir DIR")
    return str(PHOTOS)


def label_notes(directory: str | None) -> dict[str, LabelNote]:
    """Known label gaps of a photo set (its label-notes.json), {} for generated frames."""
    if not directory or not Path(directory).is_dir():
        return {}
    try:
        return notes(Path(directory))
    except LabelError as err:
        raise SystemExit(f"bench qr: {err}") from None


def contenders(budget_ms: float | None):
    import zxingcpp
    from pyzbar import pyzbar

    from edge.qr.decoder import DEFAULT_BUDGET_MS, Decoder

    # The budget counts the decoding thread's CPU time, so what edge.qr.decode reads does not depend
    # on what else the machine runs (on a loaded CI machine the wall clock spent it before the harder
    # passes: codes missed); ms per frame below stays wall time. On an idle device the two agree.
    decoder = Decoder(budget_ms=budget_ms if budget_ms is not None else DEFAULT_BUDGET_MS, clock=time.thread_time)

    def edge_qr(image):
        return [s.text for s in decoder.decode(image)]

    def zxing_alone(image):
        return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]

    def pyzbar_alone(image):
        # As a user of pyzbar gets it: ZBar's charset guess, re-encoded as UTF-8.
        return [d.data.decode("utf-8", errors="replace")
                for d in pyzbar.decode(image, symbols=[pyzbar.ZBarSymbol.QRCODE])]

    return {"edge.qr.decode": edge_qr, "zxing-cpp alone": zxing_alone, "pyzbar alone": pyzbar_alone}


def run(samples, budget_ms=None, progress=None, label_notes: dict[str, LabelNote] | None = None) -> dict:
    """Codes read, wrong texts and ms per frame of each contender; `label_notes` by sample name."""
    runs = contenders(budget_ms)
    label_notes = label_notes or {}
    totals = {name: {"decoded": 0, "wrong": 0, "unlabelled": 0, "ms": 0.0} for name in runs}
    union = union_missed = 0
    expected_total = sum(len(texts) for _, _, texts in samples)
    for index, (sample_name, image, texts) in enumerate(samples):
        expected = set(texts)
        note = label_notes.get(sample_name)
        unlabelled = set(note.unlabelled) if note else set()
        found_by: dict[str, set[str]] = {}
        for name, fn in runs.items():
            start = time.perf_counter()
            found = set(fn(image))
            totals[name]["ms"] += (time.perf_counter() - start) * 1000.0
            totals[name]["decoded"] += len(found & expected)
            totals[name]["wrong"] += len(found - expected)
            totals[name]["unlabelled"] += len((found - expected) & unlabelled)  # wrong by the label only
            found_by[name] = found & expected
        either = found_by["zxing-cpp alone"] | found_by["pyzbar alone"]
        union += len(either)
        union_missed += len(either - found_by["edge.qr.decode"])
        if progress and (index + 1) % 20 == 0:
            progress(f"bench qr: {index + 1}/{len(samples)} frames")
    frames = max(len(samples), 1)
    results = {name: {"decoded": t["decoded"], "wrong": t["wrong"], "ms_per_frame": round(t["ms"] / frames, 2)}
               for name, t in totals.items()}
    if label_notes:
        for name, t in totals.items():
            results[name]["wrong_unlabelled"] = t["unlabelled"]
    base = results["zxing-cpp alone"]
    mine = results["edge.qr.decode"]
    report = {
        "frames": len(samples),
        "codes": expected_total,
        "union_zxing_pyzbar": union,
        "union_missed_by_edge": union_missed,
        "results": results,
        "gain_vs_zxing_pct": round(100.0 * (mine["decoded"] - base["decoded"]) / max(base["decoded"], 1), 1),
        "time_vs_zxing": round(mine["ms_per_frame"] / max(base["ms_per_frame"], 1e-9), 2),
    }
    if label_notes:
        report["label_notes"] = [{"file": name, "unlabelled": len(note.unlabelled), "why": note.why}
                                 for name, note in label_notes.items()]
    return report


def table(report: dict, source: str) -> str:
    noted = "label_notes" in report
    lines = [f"QR decoding on {source}: {report['codes']} codes in {report['frames']} frames",
             f"{'decoder':<18} {'decoded':>8} {'rate':>7} {'wrong':>6} {'ms/frame':>9}"
             + (f" {'of the wrong: unlabelled':>26}" if noted else "")]
    for name, r in report["results"].items():
        rate = 100.0 * r["decoded"] / max(report["codes"], 1)
        lines.append(f"{name:<18} {r['decoded']:>8} {rate:>6.1f}% {r['wrong']:>6} {r['ms_per_frame']:>9.2f}"
                     + (f" {r['wrong_unlabelled']:>26}" if noted else ""))
    lines.append(f"union of zxing-cpp and pyzbar: {report['union_zxing_pyzbar']} codes "
                 f"({report['union_missed_by_edge']} of them missed by edge.qr.decode)")
    lines.append(f"edge.qr.decode vs zxing-cpp alone: {report['gain_vs_zxing_pct']:+.1f}% codes, "
                 f"{report['time_vs_zxing']:.2f}× time")
    for note in report.get("label_notes", []):
        lines.append(f"label incomplete: {note['file']} holds {note['unlabelled']} code(s) its label does not list "
                     f"({note['why']}); reading them counts as wrong above, and as unlabelled "
                     "(label-notes.json)")
    return "\n".join(lines)


def main(args) -> int:
    directory = photos_dir() if getattr(args, "photos", False) else (args.dir_option or args.dir)
    samples, source = load_or_make(directory, args.frames, args.seed)
    report = run(samples, args.budget_ms, progress=lambda m: print(m, file=sys.stderr),
                 label_notes=label_notes(directory))
    report["source"] = source
    if getattr(args, "json", False):
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(table(report, source))
    return 0
