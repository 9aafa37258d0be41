"""`edge bench match`: Gallery search against numpy and FAISS on face-like templates, with the
recall contract checked in the same run.

For each dimension (1M x 128 dlib-like and 1M x 512 ArcFace-like by default, both not centred):
build times, memory per identity, recall@1 against exact search on fresh captures of enrolled
people, and single-query / 16-query latency of: plain numpy (`G @ q` + argmax), Gallery exact
mode, the Gallery index, FAISS IndexFlatIP, FAISS IndexIVFFlat (the Gallery's number of lists,
nprobe swept up to the recall target) and FAISS IndexHNSWFlat (M 32, efSearch swept likewise).
The methods are timed in rotation (a fresh query each call) so load from other processes hits
them alike. FAISS is a benchmark baseline only (faiss-cpu, a dev dependency), never used at run
time on a Pi.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time

PASSES = 5
WARMUP_S = 0.15
TARGETS = {"exact_vs_numpy_max": 1.2, "recall_min": 0.999, "memory_vs_float32_max": 1.25}
HNSW_M = 32
EF_SEARCH = (16, 32, 64, 128, 256, 512)


def add_arguments(parser) -> None:
    parser.add_argument("--size", type=int, default=1_000_000, help="templates per gallery (default %(default)s)")
    parser.add_argument("--dims", default="128,512", help="comma-separated dimensions (default %(default)s)")
    parser.add_argument("--per-identity", type=int, default=5, help="templates per enrolled person (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=100, help="timed single-query rounds per method (default %(default)s)")
    parser.add_argument("--recall-queries", type=int, default=2000, help="queries for recall@1 (default %(default)s)")
    parser.add_argument("--noise", type=float, default=0.3,
                        help="within-person noise; 0.3 gives dlib-like same-person distances ~0.42 (default %(default)s)")
    parser.add_argument("--no-faiss", action="store_true", help="skip the FAISS baselines")
    parser.add_argument("--no-hnsw", action="store_true", help="skip FAISS HNSW (its build is the slowest part)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warmup-s", type=float, default=WARMUP_S,
                        help="untimed calls before each timed block, in seconds (default %(default)s; "
                             "0 still makes one: the smoke test's setting)")


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class FaceLikeData:
    """Synthetic templates shaped like face embeddings (dlib-like by default).

    Every template = a common offset (embeddings are far from the origin) + the person's centre
    (drawn with a decaying spectrum in a random basis: a few directions carry most of the
    difference between people, as with real embeddings) + per-sample noise. With the defaults,
    raw same-person distances are ~0.42 and different-person ~0.9, like dlib's (threshold 0.6).
    """

    def __init__(self, dim: int, identities: int, *, seed: int = 0, offset: float = 1.0,
                 spread: float = 0.55, noise: float = 0.3):
        import numpy as np

        self.dim, self.noise = dim, noise
        self.rng = np.random.default_rng(seed)
        spectrum = 1.0 / (1.0 + np.arange(dim)) ** 0.6
        spectrum /= spectrum.sum()
        basis, _ = np.linalg.qr(self.rng.standard_normal((dim, dim)))
        mix = (basis * np.sqrt(spectrum)).astype(np.float32) * spread
        mean = self.rng.standard_normal(dim).astype(np.float32)
        mean *= offset / np.linalg.norm(mean)
        self.centres = mean + self.rng.standard_normal((identities, dim), dtype=np.float32) @ mix.T

    def samples(self, labels) -> "np.ndarray":
        """One fresh noisy template for each person in `labels` (float32, not normalised)."""
        import numpy as np

        out = self.centres[labels]
        scale = np.float32(self.noise / np.sqrt(self.dim))
        for start in range(0, len(out), 65_536):  # bounded temporaries for 1M x 512
            block = out[start:start + 65_536]
            block += self.rng.standard_normal(block.shape, dtype=np.float32) * scale
        return out

    def gallery(self, size: int, per_identity: int) -> tuple:
        """(templates, labels): `per_identity` samples of each person, `size` in all."""
        import numpy as np

        labels = np.repeat(np.arange(len(self.centres)), per_identity)[:size]
        return self.samples(labels), labels

    def queries(self, count: int) -> tuple:
        """(queries, labels): fresh samples of randomly chosen enrolled people."""
        labels = self.rng.integers(0, len(self.centres), count)
        return self.samples(labels), labels


def recall_at_1(gallery, queries, *, batch: int = 256) -> dict:
    """Fraction of queries whose index top-1 (mode "fast") is exact mode's top-1 (a tie within
    1e-6 in score counts as the same answer: both are correct top-1s)."""
    import numpy as np

    hits = 0
    exact_ids = []
    for start in range(0, len(queries), batch):
        qb = queries[start:start + batch]
        e_ids, e_scores = gallery.search(qb, 1, mode="exact")
        f_ids, f_scores = gallery.search(qb, 1, mode="fast")
        same = (e_ids[:, 0] == f_ids[:, 0]) | (np.abs(e_scores[:, 0] - f_scores[:, 0]) <= 1e-6)
        hits += int(same.sum())
        exact_ids.extend(e_ids[:, 0])
    return {"recall_at_1": hits / len(queries), "queries": len(queries), "misses": len(queries) - hits,
            "exact_top1": exact_ids}


def _recall(found_rows, found_scores, exact_rows, exact_scores) -> float:
    import numpy as np

    same = (found_rows == exact_rows) | (np.abs(found_scores - exact_scores) <= 1e-6)
    return float(np.mean(same))


def copy_bandwidth(nbytes: int = 256 << 20, rounds: int = 5) -> float:
    """Memory traffic in bytes per second of np.copyto between two preallocated buffers, best of
    `rounds`; counted as bytes read + bytes written, as STREAM's copy does."""
    import numpy as np

    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(rounds))
    return 2 * nbytes / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _rotation(methods: dict, queries, rounds: int, batch: int, warmup_s: float = WARMUP_S) -> tuple[dict, dict]:
    """(best, median) seconds per call of each method, a fresh query batch each call.

    The calls run in PASSES passes; in each pass every method runs a block of back-to-back
    calls, the order of the methods rotating from pass to pass, so load from other processes
    hits them alike. Each block starts with `warmup_s` of untimed calls: they wake the method's
    thread pool and outlast the previous method's pools (an OpenBLAS worker spins ~0.1 s after
    a call, OpenMP a little), which would otherwise hold the second core.
    The best call is what a method costs when the machine lets it run (timeit's argument);
    the median shows the weather.
    """
    import numpy as np

    times = {name: [] for name in methods}
    names = list(methods)
    per_block = max(1, -(-rounds // PASSES))
    call = 0
    for p in range(PASSES):
        for name in names[p % len(names):] + names[:p % len(names)]:
            fn = methods[name]
            warm_until = time.perf_counter() + warmup_s
            while True:  # at least one untimed call
                fn(queries[:batch])
                if time.perf_counter() >= warm_until:
                    break
            for _ in range(per_block):
                qb = queries[(call * batch) % (len(queries) - batch + 1):][:batch]
                call += 1
                times[name].append(_timed(lambda: fn(qb)))
    return ({name: float(np.min(t)) for name, t in times.items()},
            {name: float(np.median(t)) for name, t in times.items()})


def _sweep(values, recall_of, target: float) -> tuple:
    """The smallest setting in `values` (ascending) whose recall reaches `target`, found by
    doubling then bisecting between the last miss and the first hit; (setting, recall), or the
    largest setting and its recall when none reaches it."""
    tried = {}

    def recall(i):
        if i not in tried:
            tried[i] = recall_of(values[i])
        return tried[i]

    hi = 0
    while hi < len(values) - 1 and recall(hi) < target:
        hi = min(len(values) - 1, max(1, hi * 2))
    if recall(hi) < target:
        return values[hi], recall(hi)
    lo = hi // 2 if hi else -1
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        if recall(mid) >= target:
            hi = mid
        else:
            lo = mid
    return values[hi], recall(hi)


def _faiss_baselines(dim: int, plain, unit_queries, exact_rows, exact_scores, nlist: int, args) -> dict:
    """Build FAISS Flat, IVFFlat (nprobe swept) and HNSWFlat (efSearch swept); {name: info}."""
    import faiss

    n = len(plain)
    out = {}
    flat = faiss.IndexFlatIP(dim)
    build = _timed(lambda: flat.add(plain))
    out["faiss_flat"] = {"index": flat, "build_s": build, "bytes_per_identity": 4 * dim, "recall": 1.0,
                         "setting": ""}

    _progress(f"match: {dim}-d: building FAISS IndexIVFFlat ({nlist} lists)")
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    build = _timed(lambda: (ivf.train(plain), ivf.add(plain)))

    def ivf_recall(nprobe):
        ivf.nprobe = nprobe
        d, i = ivf.search(unit_queries, 1)
        return _recall(i[:, 0], d[:, 0], exact_rows, exact_scores)

    nprobe, rec = _sweep(list(range(1, nlist + 1)), ivf_recall, TARGETS["recall_min"])
    ivf.nprobe = nprobe
    _progress(f"match: {dim}-d: FAISS IVF nprobe {nprobe} gives recall {rec:.4f}")
    out["faiss_ivf"] = {"index": ivf, "build_s": build, "recall": rec, "setting": f"nprobe {nprobe}",
                        "bytes_per_identity": (n * (4 * dim + 8) + 4 * nlist * dim) / n}

    if not args.no_hnsw:
        _progress(f"match: {dim}-d: building FAISS IndexHNSWFlat (M {HNSW_M}); the slowest build")
        hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        build = _timed(lambda: hnsw.add(plain))

        def hnsw_recall(ef):
            hnsw.hnsw.efSearch = ef
            d, i = hnsw.search(unit_queries, 1)
            return _recall(i[:, 0], d[:, 0], exact_rows, exact_scores)

        ef, rec = _sweep(list(EF_SEARCH), hnsw_recall, TARGETS["recall_min"])
        hnsw.hnsw.efSearch = ef
        graph = 4 * hnsw.hnsw.neighbors.size() + 8 * hnsw.hnsw.offsets.size() + 4 * hnsw.hnsw.levels.size()
        out["faiss_hnsw"] = {"index": hnsw, "build_s": build, "recall": rec, "setting": f"efSearch {ef}",
                             "bytes_per_identity": (n * 4 * dim + graph) / n}
    return out


def bench_dim(dim: int, args) -> dict:
    import numpy as np

    from edge.vision.gallery import FAST_MIN_SIZE, Gallery

    size = args.size
    identities = -(-size // args.per_identity)
    _progress(f"match: {dim}-d: generating {size:,} templates of {identities:,} people")
    data = FaceLikeData(dim, identities, seed=args.seed + dim, noise=args.noise)
    templates, labels = data.gallery(size, args.per_identity)
    queries, q_labels = data.queries(max(args.recall_queries, 16 * 8, args.rounds + 1))
    unit_queries = np.ascontiguousarray(queries / np.linalg.norm(queries, axis=1, keepdims=True), dtype=np.float32)

    _progress(f"match: {dim}-d: building the gallery index (normalise, k-means lists, codes, calibration)")
    gallery = Gallery(dim, fast_min_size=min(size, FAST_MIN_SIZE))  # small --size still trains it
    build_s = _timed(lambda: (gallery.add(np.arange(size), templates), gallery.wait_for_index()))
    stats = gallery.stats()
    plain = templates
    plain /= np.linalg.norm(plain, axis=1, keepdims=True)  # numpy's own normalised matrix, in place
    del templates

    _progress(f"match: {dim}-d: exact answers and recall@1 of the index on {args.recall_queries} queries")
    rec = recall_at_1(gallery, queries[:args.recall_queries])
    exact_rows = np.asarray(rec.pop("exact_top1"), dtype=np.int64)
    exact_scores = np.einsum("ij,ij->i", plain[exact_rows], unit_queries[:args.recall_queries])
    same_person = float(np.mean(labels[exact_rows] == q_labels[:args.recall_queries]))

    methods = {
        "numpy": {"one": lambda q: np.argmax(plain @ q[0]), "many": lambda q: np.argmax(plain @ q.T, axis=0),
                  "build_s": 0.0, "bytes_per_identity": 4 * dim, "recall": 1.0, "setting": ""},
        "exact": {"one": lambda q: gallery.search(q, 1, mode="exact"), "build_s": build_s,
                  "bytes_per_identity": stats["bytes_per_template"], "recall": 1.0, "setting": "mode exact"},
        "index": {"one": lambda q: gallery.search(q, 1, mode="fast"), "build_s": build_s,
                  "bytes_per_identity": stats["bytes_per_template"], "recall": rec["recall_at_1"],
                  "setting": f"{stats['lists']} lists, gap {stats['probe_gap']:.3f}"},
    }
    if not args.no_faiss:
        try:
            import faiss  # noqa: F401
        except ImportError:
            _progress("match: faiss not installed (pip install faiss-cpu): skipping those baselines")
        else:
            for name, info in _faiss_baselines(dim, plain, unit_queries[:args.recall_queries], exact_rows,
                                               exact_scores, stats["lists"], args).items():
                index = info.pop("index")
                methods[name] = {**info, "one": (lambda ix: lambda q: ix.search(q, 1))(index)}

    _progress(f"match: {dim}-d: timing single queries ({args.rounds} rounds)")
    single, single_median = _rotation({k: m["one"] for k, m in methods.items()}, unit_queries, args.rounds, 1,
                                      args.warmup_s)
    _progress(f"match: {dim}-d: timing 16-query batches ({max(5, args.rounds // 4)} rounds)")
    batch16, batch16_median = _rotation({k: m.get("many", m["one"]) for k, m in methods.items()}, unit_queries,
                                        max(5, args.rounds // 4), 16, args.warmup_s)
    table = {name: {"single_ms": single[name] * 1e3, "single_median_ms": single_median[name] * 1e3,
                    "batch16_ms": batch16[name] * 1e3, "batch16_median_ms": batch16_median[name] * 1e3,
                    "recall_at_1": m["recall"], "build_s": m["build_s"],
                    "bytes_per_identity": m["bytes_per_identity"], "setting": m["setting"]}
             for name, m in methods.items()}
    del methods
    gallery.close()
    gc.collect()
    return {
        "dim": dim, "size": size, "people": identities, "fast_index": stats["fast_index"],
        "lists": stats["lists"], "probe_gap": stats["probe_gap"], "methods": table,
        "load_average": _load_average(), **rec, "exact_top1_is_same_person": same_person,
        "copy_bandwidth_gb_s": copy_bandwidth() / 1e9,
    }


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def verdict(r: dict) -> dict:
    m = r["methods"]
    out = {"recall_ok": r["recall_at_1"] >= TARGETS["recall_min"],
           "exact_vs_numpy": m["exact"]["single_ms"] / m["numpy"]["single_ms"],
           "memory_vs_float32": m["index"]["bytes_per_identity"] / (4 * r["dim"])}
    out["exact_ok"] = out["exact_vs_numpy"] <= TARGETS["exact_vs_numpy_max"]
    out["memory_ok"] = out["memory_vs_float32"] <= TARGETS["memory_vs_float32_max"]
    if "faiss_ivf" in m:
        out["index_vs_faiss_ivf"] = m["faiss_ivf"]["single_ms"] / m["index"]["single_ms"]
        out["index_vs_faiss_ivf_16"] = m["faiss_ivf"]["batch16_ms"] / m["index"]["batch16_ms"]
        out["faiss_ivf_recall_ok"] = m["faiss_ivf"]["recall_at_1"] >= TARGETS["recall_min"]
        out["beats_faiss_ivf"] = out["index_vs_faiss_ivf"] >= 1.0
    return out


LABELS = {"numpy": "numpy G @ q", "exact": "Gallery exact", "index": "Gallery index",
          "faiss_flat": "FAISS FlatIP", "faiss_ivf": "FAISS IVFFlat", "faiss_hnsw": "FAISS HNSW32"}


def render(results: list[dict]) -> str:
    lines = []
    for r in results:
        v = r["verdict"]
        lines.append(f"\n{r['size']:,} x {r['dim']} float32 ({r['people']:,} people), recall on {r['queries']} queries"
                     + (f", load average {r['load_average']:.1f} on {os.cpu_count()} cores" if r.get("load_average") else ""))
        lines.append(f"  {'method':<15}{'1 query ms':>11}{'(median)':>10}{'16 queries ms':>15}{'(median)':>10}"
                     f"{'recall@1':>10}{'build s':>9}{'B/identity':>12}  setting")
        for name, m in r["methods"].items():
            lines.append(f"  {LABELS.get(name, name):<15}{m['single_ms']:>11.3f}{m['single_median_ms']:>10.3f}"
                         f"{m['batch16_ms']:>15.3f}{m['batch16_median_ms']:>10.3f}{m['recall_at_1']:>10.4f}"
                         f"{m['build_s']:>9.1f}{m['bytes_per_identity']:>12.0f}  {m['setting']}")
        lines.append(f"  exact top-1 is the right person for {r['exact_top1_is_same_person']:.4f} of the queries; "
                     f"copy bandwidth {r['copy_bandwidth_gb_s']:.1f} GB/s")
        checks = [f"index recall {r['recall_at_1']:.4f} >= {TARGETS['recall_min']}: {'ok' if v['recall_ok'] else 'MISSED'}",
                  f"memory {v['memory_vs_float32']:.2f}x float32 <= {TARGETS['memory_vs_float32_max']}: "
                  f"{'ok' if v['memory_ok'] else 'MISSED'}",
                  f"exact / numpy {v['exact_vs_numpy']:.2f} <= {TARGETS['exact_vs_numpy_max']}: "
                  f"{'ok' if v['exact_ok'] else 'MISSED'}"]
        if "beats_faiss_ivf" in v:
            checks.append(f"index vs FAISS IVF at its {r['methods']['faiss_ivf']['recall_at_1']:.4f} recall: "
                          f"{v['index_vs_faiss_ivf']:.2f}x faster single, {v['index_vs_faiss_ivf_16']:.2f}x on 16 "
                          f"({'ok' if v['beats_faiss_ivf'] else 'MISSED'})")
        lines.extend(f"  {c}" for c in checks)
    return "\n".join(lines)


def main(args) -> int:
    try:
        dims = [int(d) for d in str(args.dims).split(",") if d.strip()]
    except ValueError:
        print(f"edge bench match: --dims must be comma-separated ints, got {args.dims!r}", file=sys.stderr)
        return 2
    from edge.vision.gallery import TRAIN_MIN_SIZE  # below it the gallery trains no index to measure

    if (args.size < TRAIN_MIN_SIZE or not dims or min(dims) < 8 or args.rounds < 1 or args.recall_queries < 1
            or not args.warmup_s >= 0):
        print(f"edge bench match: need --size >= {TRAIN_MIN_SIZE} (the smallest gallery that gets an index), "
              "dims >= 8, --rounds >= 1, --recall-queries >= 1, --warmup-s >= 0", file=sys.stderr)
        return 2
    if os.environ.get("OPENBLAS_CORETYPE"):
        _progress(f"match: note: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} forces numpy's BLAS kernels; "
                  "to compare against numpy as it runs elsewhere, "
                  "run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE edge bench match")
    results = []
    for dim in dims:
        r = bench_dim(dim, args)
        r["verdict"] = verdict(r)
        results.append(r)
        gc.collect()
    if args.json:
        print(json.dumps({"bench": "match", "targets": TARGETS, "results": results}, indent=2))
    else:
        print(render(results))
    return 0
