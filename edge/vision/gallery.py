"""The matching core: an in-memory gallery of L2-normalised templates with exact and fast
top-k cosine search, add/remove, and encrypted save/load (file format in gallery_format.py).

Exact mode is one BLAS pass over a float32 matrix (the ranking numpy itself gives). Fast mode
reads 32 bytes per template instead of 4*dim: 256-bit sign codes of the centred vectors after PCA
and ITQ rotations, Hamming distances with np.bitwise_count over word-major uint64 columns on all
cores, then an exact float rerank of the ~1000 nearest codes. docs/gallery.md explains why that
finds the exact top-1 (measured recall@1 >= 0.999) and when search falls back to exact mode.

Threading: one writer and many readers. Writers hold a lock; every search reads one immutable
snapshot (arrays plus the row count), and writers only append past a snapshot's rows or publish
a new snapshot, so a search never sees a half-applied add, remove or compaction.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edge.errors import EdgeError
from edge.vision import gallery_format as fmt
from edge.vision.gallery_format import (DeviceKeyError, GalleryFileError, create_device_key,  # noqa: F401 (re-export)
                                        ensure_device_key, load_device_key)

log = logging.getLogger(__name__)

MODES = ("auto", "exact", "fast")
FAST_MIN_SIZE = 50_000      # below this exact search costs well under a millisecond per query
TRAIN_MIN_SIZE = 2_048      # fewer samples than this cannot estimate a 256-bit rotation
CODE_BITS = 256             # 32 bytes a template: 1/16 of 128-d float32, 1/64 of 512-d
RERANK = 1_024              # exact float rerank of this many nearest codes (see docs/gallery.md)
PCA_SAMPLE = 32_768         # rows used to estimate the mean and the principal axes
ITQ_SAMPLE = 8_192          # rows used for the ITQ rotation iterations
ITQ_ITERATIONS = 20         # ITQ's loss has flattened by then
SCAN_ROWS = 65_536          # Hamming scan block: its 576 KB of scratch stays in L2 cache
GROW_ROWS = 65_536          # capacity grows by at least this many rows (or by half)
MAX_ID_CHARS = 256
SMALL_PRODUCT_ROWS = 16     # up to this many queries are encoded without BLAS
EXACT_BLOCK_BYTES = 4 << 20  # scores of one block of a batched exact search (stays in cache)


class GalleryError(EdgeError, ValueError):
    """Error raised when vectors, ids, queries or search arguments given to a Gallery are invalid."""


# ----------------------------------------------------------------------------- input checks

def _check_ids(ids) -> list:
    if isinstance(ids, (str, int, np.integer)):
        ids = [ids]
    try:
        ids = list(ids)
    except TypeError as err:
        raise GalleryError(f"ids must be a list of str or int, got {type(ids).__name__}") from err
    out = []
    for i, ident in enumerate(ids):
        if isinstance(ident, (bool, np.bool_)):
            raise GalleryError(f"ids[{i}] is a bool ({ident!r}); ids are str or int")
        if isinstance(ident, np.integer):
            ident = int(ident)
        elif isinstance(ident, np.str_):
            ident = str(ident)
        if isinstance(ident, str):
            if not ident or len(ident) > MAX_ID_CHARS:
                raise GalleryError(f"ids[{i}] must be 1 to {MAX_ID_CHARS} characters, got {len(ident)}")
        elif not isinstance(ident, int):
            raise GalleryError(f"ids[{i}] is a {type(ident).__name__} ({ident!r}); ids are str or int")
        out.append(ident)
    return out


def _check_matrix(what: str, x, dim: int) -> np.ndarray:
    """x as a C-contiguous float32 (n, dim) array (1-D means one row); not yet normalised."""
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as err:
        raise GalleryError(f"{what} must be a numeric array of shape (n, {dim}): {err}") from err
    if arr.dtype.kind not in "fiu":
        raise GalleryError(f"{what} must be real numbers, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise GalleryError(f"{what} must have shape (n, {dim}), got {tuple(np.shape(x))}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _norms(what: str, arr: np.ndarray) -> np.ndarray:
    """Row norms of a float32 matrix; refuse NaN/inf, overflow and zero rows, naming the row."""
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))  # no n x dim temporary, unlike isfinite(arr)
    bad = ~np.isfinite(norms) | (norms < 1e-12)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        if not np.isfinite(arr[row]).all():
            why = "holds NaN or inf"
        elif norms[row] < 1e-12:
            why = "is a zero vector (it has no direction to compare)"
        else:
            why = "has values too large for float32"
        raise GalleryError(f"{what}[{row}] {why}; {int(bad.sum())} bad row(s) in all")
    return norms


def _normalised(what: str, x, dim: int) -> np.ndarray:
    arr = _check_matrix(what, x, dim)
    norms = _norms(what, arr)
    return arr / norms[:, None]


# ----------------------------------------------------------------------------- binary codes

@dataclass(frozen=True)
class _CodeModel:
    """Sign codes: bit j of x is ((x - mean) @ proj)[j] > 0, i.e. x @ proj > thresholds."""
    proj: np.ndarray        # (dim, bits) float32
    thresholds: np.ndarray  # (bits,) float32 = mean @ proj
    bits: int

    @property
    def words(self) -> int:
        return self.bits // 64

    def encode(self, x: np.ndarray) -> np.ndarray:
        """(n, dim) float32 -> (words, n) uint64, word-major so one word of every row is contiguous."""
        out = np.empty((self.words, len(x)), dtype=np.uint64)
        if len(x) <= SMALL_PRODUCT_ROWS:  # a few queries: see _small_product
            block = _small_product(x, self.proj) > self.thresholds
            out[:] = np.packbits(block, axis=1).view(np.uint64).T
            return out
        for start in range(0, len(x), SCAN_ROWS):
            block = x[start:start + SCAN_ROWS] @ self.proj > self.thresholds
            out[:, start:start + len(block)] = np.packbits(block, axis=1).view(np.uint64).T
        return out


def _train_codes(sample: np.ndarray, bits: int, seed: int) -> _CodeModel:
    """PCA to min(dim, bits) axes, then ITQ rotations (Gong & Lazebnik 2011) filling `bits` bits.

    Centring matters because face embeddings sit far from the origin: uncentred, most sign bits
    would be the same for everybody. PCA keeps the axes that separate people; ITQ rotates them so
    the variance is spread over the bits and the sign loses as little as possible. When
    bits > dim, several ITQ rotations from different starts give more (and still informative)
    bits: on 128-d data 256 bits cut the 99th-percentile rank of the true neighbour from ~1000
    to ~60 (docs/gallery.md).
    """
    rng = np.random.default_rng(seed)
    dim = sample.shape[1]
    mean = sample.mean(axis=0, dtype=np.float64)
    centred = (sample - mean.astype(np.float32))
    cov = (centred.T @ centred).astype(np.float64) / max(1, len(centred) - 1)
    _, vecs = np.linalg.eigh(cov)
    axes = min(dim, bits)
    pca = vecs[:, ::-1][:, :axes].astype(np.float32)
    itq_rows = centred[rng.permutation(len(centred))[:ITQ_SAMPLE]] @ pca  # float32: half the work
    projections = []
    for _ in range(math.ceil(bits / axes)):
        rot, _ = np.linalg.qr(rng.standard_normal((axes, axes)).astype(np.float32))
        for _ in range(ITQ_ITERATIONS):
            signs = np.where(itq_rows @ rot >= 0, np.float32(1), np.float32(-1))
            u, _, vt = np.linalg.svd(itq_rows.T @ signs)
            rot = u @ vt
        projections.append(pca @ rot)
    proj = np.hstack(projections)[:, :bits].astype(np.float32)
    return _CodeModel(proj=proj, thresholds=(mean.astype(np.float32) @ proj), bits=bits)


@dataclass(frozen=True)
class _Codes:
    model: _CodeModel
    words: np.ndarray   # (words, capacity) uint64; rows < snapshot.n are valid
    trained_on: int     # gallery size when the model was trained


# ----------------------------------------------------------------------------- snapshot

@dataclass(frozen=True)
class _Snapshot:
    vectors: np.ndarray          # (capacity, dim) float32, L2-normalised; rows < n valid
    ids: np.ndarray              # (capacity,) object
    n: int                       # rows in use, including removed ones until compaction
    alive: np.ndarray | None     # (n,) bool, None when nothing is removed
    removed: int
    codes: _Codes | None


class Gallery:
    """Templates of dimension `dim`, searched by cosine similarity.

    Ids are opaque references, `str` (1-256 chars, e.g. a dossier code) or `int`; the same id may
    be added several times (several templates of one person): `remove(id)` removes them all and
    `search` may return it more than once. `len()` counts templates, not distinct ids.

    mode: "exact" always scans the float matrix; "fast" uses the binary first pass whenever the
    gallery has at least TRAIN_MIN_SIZE templates; "auto" (default) uses it from `fast_min_size`.
    """

    def __init__(self, dim: int, *, mode: str = "auto", fast_min_size: int = FAST_MIN_SIZE,
                 rerank: int = RERANK, bits: int = CODE_BITS, threads: int | None = None, seed: int = 0):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 1 <= dim <= 65_536:
            raise GalleryError(f"dim must be an int from 1 to 65536, got {dim!r}")
        if mode not in MODES:
            raise GalleryError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not isinstance(bits, int) or bits < 64 or bits % 64:
            raise GalleryError(f"bits must be a positive multiple of 64, got {bits!r}")
        if not isinstance(rerank, int) or rerank < 1:
            raise GalleryError(f"rerank must be a positive int, got {rerank!r}")
        self.dim = int(dim)
        self.mode = mode
        self.fast_min_size = int(fast_min_size)
        self.rerank = rerank
        self.bits = bits
        self.seed = seed
        self.threads = max(1, min(threads or os.cpu_count() or 1, 8))
        self._lock = threading.Lock()
        self._slots: dict = {}  # id -> list of row numbers (writer side only)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._scratch = threading.local()
        self._snap = _Snapshot(vectors=np.empty((0, self.dim), np.float32), ids=np.empty(0, object),
                               n=0, alive=None, removed=0, codes=None)

    # ------------------------------------------------------------------ reading side

    def __len__(self) -> int:
        snap = self._snap
        return snap.n - snap.removed

    def __contains__(self, ident) -> bool:
        return ident in self._slots

    def __repr__(self) -> str:
        return f"Gallery(dim={self.dim}, templates={len(self)}, mode={self.mode!r})"

    def ids(self) -> list:
        """The ids of the stored templates, in insertion order (repeated ids appear repeatedly)."""
        snap = self._snap
        ids = snap.ids[:snap.n]
        return list(ids if snap.alive is None else ids[snap.alive])

    def get(self, ident) -> np.ndarray:
        """The normalised templates stored under `ident`, (m, dim); KeyError if there are none."""
        with self._lock:  # row numbers change at compaction: read them with their snapshot
            snap = self._snap
            rows = list(self._slots.get(ident, ()))
        if not rows:
            raise KeyError(ident)
        return snap.vectors[rows].copy()

    def stats(self) -> dict:
        """Sizes and memory: bytes per template for the float matrix and the codes."""
        snap = self._snap
        code_bytes = snap.codes.model.bits // 8 if snap.codes else 0
        return {"templates": len(self), "removed_pending": snap.removed, "capacity": len(snap.vectors),
                "dim": self.dim, "mode": self.mode, "fast_index": snap.codes is not None,
                "vector_bytes": 4 * self.dim, "code_bytes": code_bytes,
                "bytes_per_template_exact": 4 * self.dim, "bytes_per_template_fast": 4 * self.dim + code_bytes,
                "scan_bytes_exact": 4 * self.dim, "scan_bytes_fast": code_bytes}

    def search(self, queries, k: int = 1, *, mode: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k templates by cosine similarity for each query row.

        Returns (ids, scores), both (Q, k): ids an object array, scores float32 highest first.
        A 1-D query is one row. When the gallery holds fewer than k templates the missing
        places are id None and score -inf.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise GalleryError(f"k must be a positive int, got {k!r}")
        mode = self.mode if mode is None else mode
        if mode not in MODES:
            raise GalleryError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        q = _normalised("queries", queries, self.dim)
        snap = self._snap
        k = int(k)
        out_ids = np.full((len(q), k), None, dtype=object)
        out_scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        kk = min(k, snap.n - snap.removed)
        if kk == 0 or len(q) == 0:
            return out_ids, out_scores
        if self._use_fast(snap, mode, kk):
            rows, scores = self._search_fast(snap, q, kk)
        else:
            rows, scores = self._search_exact(snap, q, kk)
        out_ids[:, :kk] = snap.ids[rows]
        out_scores[:, :kk] = scores
        out_ids[np.isneginf(out_scores)] = None  # a removed row can only surface with -inf: never name it
        return out_ids, out_scores

    def _use_fast(self, snap: _Snapshot, mode: str, k: int) -> bool:
        if mode == "exact" or snap.codes is None:
            return False
        alive = snap.n - snap.removed
        if mode == "auto" and alive < self.fast_min_size:
            return False
        # When the rerank would touch a big share of the gallery, exact is both cheaper and exact.
        return self._rerank_target(snap, k) * 4 <= alive

    def _rerank_target(self, snap: _Snapshot, k: int) -> int:
        target = max(self.rerank, 16 * k)
        if snap.removed:  # removed rows still hold codes until compaction; ask for more
            target = math.ceil(target * snap.n / max(1, snap.n - snap.removed))
        return target

    def _search_exact(self, snap: _Snapshot, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        matrix = snap.vectors[:snap.n]
        if len(q) == 1:  # one GEMV, as numpy does it
            s = (matrix @ q[0])[None, :]
            if snap.alive is not None:
                s[:, ~snap.alive] = -np.inf
            return _top_k(s, k)
        # Several queries: GEMM over blocks of gallery rows, merging a running top-k, so the
        # block's scores stay in cache (1.4x faster than one (n, Q) product at 512-d, 1.3x at 128-d).
        block = max(1024, min(65_536, EXACT_BLOCK_BYTES // (4 * len(q))))
        best_rows = best_scores = None
        for start in range(0, snap.n, block):
            stop = min(start + block, snap.n)
            scores = (matrix[start:stop] @ q.T).T  # (Q, rows)
            if snap.alive is not None:
                scores[:, ~snap.alive[start:stop]] = -np.inf
            cols, vals = _top_k(scores, min(k, stop - start))
            cols += start
            if best_rows is None:
                best_rows, best_scores = cols, vals
                continue
            # Earlier (lower) rows first, so a tie keeps the lower row as a stable argsort would.
            rows = np.concatenate([best_rows, cols], axis=1)
            picked, best_scores = _top_k(np.concatenate([best_scores, vals], axis=1), min(k, rows.shape[1]))
            best_rows = np.take_along_axis(rows, picked, axis=1)
        return best_rows, best_scores

    def _search_fast(self, snap: _Snapshot, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        codes = snap.codes
        qcodes = codes.model.encode(q)
        target = self._rerank_target(snap, k)
        rows = np.empty((len(q), k), dtype=np.intp)
        scores = np.empty((len(q), k), dtype=np.float32)
        dist = self._distances(snap.n, codes.model.bits)
        for i in range(len(q)):
            self._hamming(codes.words, qcodes[:, i], snap.n, dist)
            cand = _nearest_codes(dist, target, codes.model.bits)
            s = _small_product(snap.vectors[cand], q[i])
            if snap.alive is not None:
                s[~snap.alive[cand]] = -np.inf
            r, v = _top_k(s[None, :], k)
            rows[i] = cand[r[0]]
            scores[i] = v[0]
        return rows, scores

    def _hamming(self, words: np.ndarray, qwords: np.ndarray, n: int, out: np.ndarray) -> None:
        """out[:n] = Hamming distance of each code to qwords. The blocks are shared out to the
        calling thread and the scan threads through one counter (numpy releases the GIL inside
        each ufunc, so they run on separate cores); a thread the OS has not scheduled yet simply
        takes fewer blocks, so a busy machine costs no idle waiting."""
        blocks = -(-n // SCAN_ROWS)
        if self.threads == 1 or blocks < 2:
            self._hamming_blocks(words, qwords, n, out, iter(range(blocks)))
            return
        counter = itertools.count()  # next() on it is atomic under the GIL
        pool = self._executor()
        futures = [pool.submit(self._hamming_blocks, words, qwords, n, out, counter)
                   for _ in range(min(self.threads, blocks) - 1)]
        self._hamming_blocks(words, qwords, n, out, counter)
        for f in futures:
            f.result()

    def _hamming_blocks(self, words, qwords, n: int, out: np.ndarray, counter) -> None:
        xor, count = self._buffers()
        n_words = len(qwords)
        for block in counter:
            s = block * SCAN_ROWS
            if s >= n:
                return
            e = min(s + SCAN_ROWS, n)
            x, c, acc = xor[:e - s], count[:e - s], out[s:e]
            np.bitwise_xor(words[0, s:e], qwords[0], out=x)
            np.bitwise_count(x, out=acc, casting="unsafe")
            for w in range(1, n_words):
                np.bitwise_xor(words[w, s:e], qwords[w], out=x)
                np.bitwise_count(x, out=c)
                np.add(acc, c, out=acc, casting="unsafe")

    def _distances(self, n: int, bits: int) -> np.ndarray:
        """This thread's distance buffer (reused: a fresh array per query would cost page faults
        comparable to the whole scan). uint8 up to 256 bits: only a distance of exactly 256 (the
        query's complement) wraps, to 0; that row then joins the candidates and the exact
        rerank scores it for what it is, so the wrap costs one candidate slot, never a miss."""
        dtype = np.uint8 if bits <= 256 else np.uint16
        buf = getattr(self._scratch, "dist", None)
        if buf is None or len(buf) < n or buf.dtype != dtype:
            buf = np.empty(max(n, 1024) + n // 4, dtype)
            self._scratch.dist = buf
        return buf[:n]

    def _buffers(self):
        buf = getattr(self._scratch, "buf", None)
        if buf is None:
            buf = (np.empty(SCAN_ROWS, np.uint64), np.empty(SCAN_ROWS, np.uint8))
            self._scratch.buf = buf
        return buf

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._pool_lock:  # not the writer lock: a search must not wait for an add
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=self.threads - 1, thread_name_prefix="gallery-scan")
        return self._pool

    def close(self) -> None:
        """Stop the scan threads (a closed gallery still works, single-threaded until reused)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    # ------------------------------------------------------------------ writing side

    def add(self, ids, vectors) -> None:
        """Add one template per id. `vectors` is (n, dim) (or one 1-D vector with one id); each
        row is L2-normalised on the way in. Bad ids or rows refuse the whole call."""
        ids = _check_ids(ids)
        arr = _check_matrix("vectors", vectors, self.dim)
        if len(arr) != len(ids):
            raise GalleryError(f"got {len(ids)} ids for {len(arr)} vectors")
        norms = _norms("vectors", arr)
        if not ids:
            return
        with self._lock:
            self._append(ids, arr, norms)

    def _append(self, ids: list, arr: np.ndarray, norms: np.ndarray | None) -> None:
        snap = self._snap
        n, m = snap.n, len(ids)
        vectors, slot_ids, words = snap.vectors, snap.ids, snap.codes.words if snap.codes else None
        if n + m > len(vectors):
            # New buffers: readers of the old snapshot keep the old ones.
            capacity = max(n + m, n + n // 2, n + GROW_ROWS)
            vectors = _grown(vectors, n, (capacity, self.dim), np.float32)
            slot_ids = _grown(slot_ids, n, (capacity,), object)
            if words is not None:
                new_words = np.empty((words.shape[0], capacity), np.uint64)
                new_words[:, :n] = words[:, :n]
                words = new_words
        # Rows >= n are invisible to every published snapshot, so writing them in place is safe.
        if norms is None:
            vectors[n:n + m] = arr
        else:
            np.divide(arr, norms[:, None], out=vectors[n:n + m])
        slot_ids[n:n + m] = _object_array(ids)
        codes = snap.codes
        if codes is not None:
            words[:, n:n + m] = codes.model.encode(vectors[n:n + m])
            codes = replace(codes, words=words)
        alive = None if snap.alive is None else np.concatenate([snap.alive, np.ones(m, bool)])
        for offset, ident in enumerate(ids):
            self._slots.setdefault(ident, []).append(n + offset)
        self._snap = _Snapshot(vectors=vectors, ids=slot_ids, n=n + m, alive=alive, removed=snap.removed, codes=codes)
        self._maybe_train()

    def _maybe_train(self) -> None:
        snap = self._snap
        alive = snap.n - snap.removed
        if self.mode == "exact" or alive < max(TRAIN_MIN_SIZE, 2 * self.rerank):
            return
        if self.mode == "auto" and alive < self.fast_min_size:
            return
        # Retrain while the gallery keeps doubling (the sample then represents it better);
        # past 8x the PCA sample a new sample would tell nothing new.
        if snap.codes is not None and (alive < 2 * snap.codes.trained_on or snap.codes.trained_on >= 8 * PCA_SAMPLE):
            return
        matrix = snap.vectors[:snap.n]
        live_rows = np.arange(snap.n) if snap.alive is None else np.flatnonzero(snap.alive)
        rng = np.random.default_rng(self.seed)
        sample = matrix[np.sort(rng.choice(live_rows, min(len(live_rows), PCA_SAMPLE), replace=False))]
        from threadpoolctl import threadpool_limits

        # Training is ~100 small BLAS calls: with several BLAS threads on a busy machine each one
        # waits for a scheduled peer (measured 40 s instead of 3 s under load); one thread is
        # never slower at these sizes.
        with threadpool_limits(1, user_api="blas"):
            model = _train_codes(sample, self.bits, self.seed)
        words = np.empty((model.words, len(snap.vectors)), np.uint64)
        words[:, :snap.n] = model.encode(matrix)
        log.debug("gallery: trained %d-bit codes on %d of %d templates", model.bits, len(sample), alive)
        self._snap = replace(snap, codes=_Codes(model=model, words=words, trained_on=alive))

    def remove(self, ids) -> int:
        """Remove every template stored under each id; return how many were removed (unknown ids
        are skipped, so a repeated delete request is harmless)."""
        ids = _check_ids(ids)
        with self._lock:
            rows = []
            for ident in ids:
                rows.extend(self._slots.pop(ident, ()))
            if not rows:
                return 0
            snap = self._snap
            alive = np.ones(snap.n, bool) if snap.alive is None else snap.alive.copy()
            alive[rows] = False
            self._snap = replace(snap, alive=alive, removed=snap.removed + len(rows))
            if self._snap.removed * 4 > self._snap.n:
                self._compact()
            return len(rows)

    def compact(self) -> None:
        """Drop removed templates from memory now (remove() does it once a quarter is dead)."""
        with self._lock:
            self._compact()

    def _compact(self) -> None:
        snap = self._snap
        if snap.alive is None:
            return
        keep = np.flatnonzero(snap.alive)
        n = len(keep)
        capacity = n + max(GROW_ROWS, n // 2) if n else 0
        vectors = np.empty((capacity, self.dim), np.float32)
        vectors[:n] = snap.vectors[keep]
        slot_ids = np.empty(capacity, object)
        slot_ids[:n] = snap.ids[keep]
        codes = snap.codes
        if codes is not None:
            words = np.empty((codes.words.shape[0], capacity), np.uint64)
            words[:, :n] = codes.words[:, keep]
            codes = replace(codes, words=words)
        slots: dict = {}
        for row, ident in enumerate(slot_ids[:n]):
            slots.setdefault(ident, []).append(row)
        self._slots = slots
        self._snap = _Snapshot(vectors=vectors, ids=slot_ids, n=n, alive=None, removed=0, codes=codes)
        if n < max(TRAIN_MIN_SIZE, 2 * self.rerank):
            self._snap = replace(self._snap, codes=None)

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path, *, key: bytes | None = None) -> None:
        """Write the gallery atomically. With `key` (the 32-byte device key, see
        load_device_key) the file is AES-256-GCM encrypted; without it the file is plain (with a
        SHA-256 checksum): the vision service always passes the key, plain files are for tests
        and tools."""
        snap = self._snap
        matrix = snap.vectors[:snap.n]
        ids = snap.ids[:snap.n]
        if snap.alive is not None:
            matrix, ids = matrix[snap.alive], ids[snap.alive]
        if key is None:
            log.warning("gallery: saving %s without encryption", path)
        ids_json = json.dumps(list(ids), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        little = matrix.astype("<f4", copy=False)
        fmt.write_file(path, dim=self.dim, count=len(ids), parts=[little, ids_json], key=key)

    @classmethod
    def load(cls, path: str | Path, *, key: bytes | None = None, **options) -> "Gallery":
        """Read a file written by save(); refuse a tampered, truncated or foreign file with a
        GalleryFileError. `options` are the constructor's keyword arguments."""
        dim, count, payload = fmt.read_file(path, key=key)
        vec_bytes = 4 * dim * count
        if dim < 1 or len(payload) < vec_bytes:
            raise GalleryFileError(f"gallery file {path}: payload too short for {count} x {dim} vectors")
        matrix = np.frombuffer(payload, dtype="<f4", count=dim * count).reshape(count, dim)
        try:
            ids = json.loads(bytes(payload[vec_bytes:]).decode("utf-8"))
            ids = _check_ids(ids) if isinstance(ids, list) else None
        except (UnicodeDecodeError, ValueError) as err:
            raise GalleryFileError(f"gallery file {path}: unreadable id list ({err})") from err
        if ids is None or len(ids) != count:
            raise GalleryFileError(f"gallery file {path}: id list does not match {count} vectors")
        norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
        if count and not np.all(np.abs(norms - 1) < 1e-3):
            raise GalleryFileError(f"gallery file {path}: vectors are not unit length (corrupted)")
        gallery = cls(dim, **options)
        if count:
            with gallery._lock:
                gallery._append(ids, np.ascontiguousarray(matrix, dtype=np.float32), None)
        return gallery


def _small_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b without BLAS, for the fast path's small products (encoding a query, the ~1000-row
    rerank). OpenBLAS would run them on two threads and its worker then spins for a while,
    taking the core the Hamming scan thread needs: measured 1.54 ms instead of 1.24 ms per
    scan. einsum's own loop costs ~15 us more and leaves no thread behind."""
    return np.einsum("nd,d->n", a, b) if b.ndim == 1 else np.einsum("nd,db->nb", a, b)


def _grown(old: np.ndarray, n: int, shape: tuple, dtype) -> np.ndarray:
    new = np.empty(shape, dtype=dtype)
    new[:n] = old[:n]
    return new


def _object_array(items: list) -> np.ndarray:
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    return arr


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k columns of a (Q, n) score matrix, highest first, ties by lower column
    (the order of a stable argsort of -scores)."""
    if k == 1:
        cols = np.argmax(scores, axis=1)[:, None]
    else:
        n = scores.shape[1]
        if k < n:
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(n), (len(scores), n))
        part = np.sort(part, axis=1)  # so a stable sort by score breaks ties by column
        vals = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        cols = np.take_along_axis(part, order, axis=1)
    return cols, np.take_along_axis(scores, cols, axis=1)


def _nearest_codes(dist: np.ndarray, target: int, bits: int) -> np.ndarray:
    """Rows (ascending) of the `target`-or-so smallest distances: every row at or below the
    smallest threshold t that admits at least `target` rows, trimmed if ties at t overflow.

    A histogram of a strided sample guesses t, one count_nonzero confirms it; this costs two
    light passes where argpartition on a million entries would cost several milliseconds.
    """
    n = len(dist)
    if target >= n:
        return np.arange(n)
    step = max(1, n // 16_384)
    hist = np.bincount(dist[::step], minlength=bits + 1)
    cum = np.cumsum(hist) * step
    t = int(min(np.searchsorted(cum, target * 1.25), bits))
    mask = dist <= t
    count = int(np.count_nonzero(mask))
    while count < target and t < bits:
        t += 1
        mask = dist <= t
        count = int(np.count_nonzero(mask))
    while t > 0 and count > 4 * target:
        below = dist <= t - 1
        below_count = int(np.count_nonzero(below))
        if below_count < target:
            break
        t, mask, count = t - 1, below, below_count
    rows = np.flatnonzero(mask)
    if len(rows) > 4 * target:  # many ties at t: keep all rows below t and enough at t
        closer = rows[dist[rows] < t]
        at_t = rows[dist[rows] == t][:max(0, target - len(closer))]
        rows = np.sort(np.concatenate([closer, at_t]))
    return rows
