"""The matching core: an in-memory gallery of L2-normalised templates with exact and indexed
top-k cosine search, online add/remove, and encrypted save/load (file format in gallery_format.py).

Exact mode is one BLAS pass over a float32 matrix (the ranking numpy itself gives). Once the
gallery is large enough, a sublinear index (gallery_ivf.py) is trained in a background thread:
k-means lists of 256-bit codes stored contiguously, a per-query number of probed lists, and an
exact float rerank of the nearest codes. Until that index exists, search is exact.
docs/gallery.md gives the design, the recall contract (>= 99.9 % exact top-1) and measurements.

Threading: one writer and many readers. Writers hold a lock; every search reads one immutable
snapshot (arrays, row count, removal mask, index), and writers only write past what a published
snapshot can see or publish a new snapshot, so a search never sees a half-applied add, remove,
compaction, re-layout or retraining. Training runs outside the lock and publishes under it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import struct
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edge.errors import EdgeError
from edge.vision import gallery_format as fmt
from edge.vision import gallery_ivf as ivf
from edge.vision.gallery_format import (DeviceKeyError, GalleryFileError, create_device_key,  # noqa: F401 (re-export)
                                        ensure_device_key, load_device_key)

log = logging.getLogger(__name__)

MODES = ("auto", "exact", "fast")
FAST_MIN_SIZE = 50_000      # below this exact search costs well under a millisecond per query
TRAIN_MIN_SIZE = 2_048      # fewer samples than this cannot estimate a 256-bit rotation
CODE_BITS = ivf.CODE_BITS
RERANK = 256                # exact float rerank of this many nearest codes of the probed lists
GROW_ROWS = 65_536          # capacity grows by at least this many rows (or by half)
MAX_ID_CHARS = 256
EXACT_BLOCK_BYTES = 4 << 20  # scores of one block of a batched exact search (stays in cache)
RETRAIN_GROWTH = 2.0        # retrain when the gallery has grown this much since training
RETRAIN_DRIFT = 0.10        # ... or when this share of templates sits in lists over 4x the mean


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


def _id_keys(ids: list) -> np.ndarray:
    """A 64-bit hash of each id, kept in a column beside the ids: finding an id's rows is one
    vectorised comparison, where a dict of row lists would cost ~100 bytes per template.
    Python's hash tells 7 from "7" only by chance, so every match is confirmed on the id itself."""
    return np.fromiter((hash(i) for i in ids), dtype=np.int64, count=len(ids))


def _same_id(a, b) -> bool:
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class _Index:
    model: ivf.Coarse
    lists: ivf.Lists


@dataclass(frozen=True)
class _Snapshot:
    vectors: np.ndarray          # (capacity, dim) float32, L2-normalised; rows < n valid
    ids: np.ndarray              # (capacity,) object
    keys: np.ndarray             # (capacity,) int64 hash of each id
    n: int                       # rows in use, including removed ones until compaction
    alive: np.ndarray | None     # (n,) bool, None when nothing is removed
    removed: int
    index: _Index | None         # covers every row < n once trained


class Gallery:
    """Templates of dimension `dim`, searched by cosine similarity.

    Ids are opaque references, `str` (1-256 chars, e.g. a dossier code) or `int`; the same id may
    be added several times (several templates of one person): `remove(id)` removes them all and
    `search` may return it more than once. `len()` counts templates, not distinct ids.

    mode: "exact" always scans the float matrix; "fast" uses the index whenever it is trained
    (from TRAIN_MIN_SIZE templates); "auto" (default) trains and uses it from `fast_min_size`.
    background: train the index in a background thread (default) or inside `add`.
    """

    def __init__(self, dim: int, *, mode: str = "auto", fast_min_size: int = FAST_MIN_SIZE,
                 rerank: int = RERANK, bits: int = CODE_BITS, nlist: int | None = None,
                 background: bool = True, seed: int = 0):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 1 <= dim <= 65_536:
            raise GalleryError(f"dim must be an int from 1 to 65536, got {dim!r}")
        if mode not in MODES:
            raise GalleryError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not isinstance(bits, int) or bits < 64 or bits % 64:
            raise GalleryError(f"bits must be a positive multiple of 64, got {bits!r}")
        if not isinstance(rerank, int) or rerank < 1:
            raise GalleryError(f"rerank must be a positive int, got {rerank!r}")
        if nlist is not None and (not isinstance(nlist, int) or not 1 <= nlist <= 65_536):
            raise GalleryError(f"nlist must be an int from 1 to 65536 or None, got {nlist!r}")
        self.dim = int(dim)
        self.mode = mode
        self.fast_min_size = int(fast_min_size)
        self.rerank = rerank
        self.bits = bits
        self.nlist = nlist
        self.background = background
        self.seed = seed
        self._lock = threading.Lock()
        self._generation = 0          # bumped when row numbers change (compaction)
        self._trainer: threading.Thread | None = None
        self._train_error: BaseException | None = None
        self._scratch = threading.local()
        self._snap = _Snapshot(vectors=np.empty((0, self.dim), np.float32), ids=np.empty(0, object),
                               keys=np.empty(0, np.int64), n=0, alive=None, removed=0, index=None)

    # ------------------------------------------------------------------ reading side

    def __len__(self) -> int:
        snap = self._snap
        return snap.n - snap.removed

    def __contains__(self, ident) -> bool:
        try:
            (ident,) = _check_ids([ident])
        except GalleryError:
            return False
        return len(self._rows_of(self._snap, [ident])) > 0

    def __repr__(self) -> str:
        return f"Gallery(dim={self.dim}, templates={len(self)}, mode={self.mode!r})"

    def ids(self) -> list:
        """The ids of the stored templates, in insertion order (repeated ids appear repeatedly)."""
        snap = self._snap
        ids = snap.ids[:snap.n]
        return list(ids if snap.alive is None else ids[snap.alive])

    def get(self, ident) -> np.ndarray:
        """The normalised templates stored under `ident`, (m, dim); KeyError if there are none."""
        (ident,) = _check_ids([ident])
        snap = self._snap
        rows = self._rows_of(snap, [ident])
        if not len(rows):
            raise KeyError(ident)
        return snap.vectors[rows].copy()

    @staticmethod
    def _rows_of(snap: _Snapshot, ids: list) -> np.ndarray:
        """Live rows (ascending) holding any of `ids` (already checked)."""
        keys = snap.keys[:snap.n]
        wanted = _id_keys(ids)
        hits = np.flatnonzero(keys == wanted[0]) if len(wanted) == 1 else np.flatnonzero(np.isin(keys, wanted))
        if snap.alive is not None:
            hits = hits[snap.alive[hits]]
        by_key: dict = {}
        for ident, key in zip(ids, wanted.tolist()):
            by_key.setdefault(key, []).append(ident)
        keep = [r for r in hits.tolist()
                if any(_same_id(snap.ids[r], i) for i in by_key.get(int(snap.keys[r]), ()))]
        return np.asarray(keep, dtype=np.int64)

    def stats(self) -> dict:
        """Sizes, index state and memory (bytes held by the arrays and id objects)."""
        snap = self._snap
        index = snap.index
        memory = self._memory(snap)
        alive = snap.n - snap.removed
        out = {"templates": alive, "removed_pending": snap.removed, "capacity": len(snap.vectors),
               "dim": self.dim, "mode": self.mode, "fast_index": index is not None,
               "training": self.training, "memory_bytes": memory,
               "bytes_per_template": memory / alive if alive else 0.0,
               "vector_bytes": 4 * self.dim, "code_bytes": self.bits // 8}
        if index is not None:
            sizes = index.lists.sizes
            out.update({"lists": index.model.nlist, "trained_on": index.model.trained_on,
                        "probe_gap": index.model.tau, "prefilter": index.model.prefilter,
                        "list_size_max": int(sizes.max()),
                        "list_size_mean": float(sizes.mean()), "drift": ivf.drift(index.lists)})
        return out

    @staticmethod
    def _memory(snap: _Snapshot) -> int:
        """Bytes held: every array (at its capacity) plus the id objects (estimated from a
        sample of up to 1000; small ints are shared by Python and cost nothing)."""
        arrays = [snap.vectors, snap.ids, snap.keys] + ([snap.alive] if snap.alive is not None else [])
        if snap.index is not None:
            lay, model = snap.index.lists, snap.index.model
            arrays += [lay.rows, lay.words, lay.starts, lay.caps, lay.sizes, model.centroids, model.axes,
                       model.codes.proj]
        total = sum(a.nbytes for a in arrays)
        if snap.n:
            sample = snap.ids[:snap.n:max(1, snap.n // 1000)]
            per_id = sum(0 if isinstance(i, int) and -5 <= i <= 256 else sys.getsizeof(i) for i in sample) / len(sample)
            total += int(per_id * snap.n)
        return total

    # ------------------------------------------------------------------ search

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
        if self._use_index(snap, mode, kk):
            rows, scores = self._search_index(snap, q, kk)
        else:
            rows, scores = self._search_exact(snap, q, kk)
        out_ids[:, :kk] = snap.ids[rows]
        out_scores[:, :kk] = scores
        out_ids[np.isneginf(out_scores)] = None  # a removed row can only surface with -inf: never name it
        return out_ids, out_scores

    def _use_index(self, snap: _Snapshot, mode: str, k: int) -> bool:
        if mode == "exact" or snap.index is None:
            return False
        alive = snap.n - snap.removed
        if mode == "auto" and alive < self.fast_min_size:
            return False
        # When the rerank would touch a big share of the gallery, exact is both cheaper and exact.
        return self._rerank_target(snap, k) * 4 <= alive

    def _rerank_target(self, snap: _Snapshot, k: int) -> int:
        target = max(self.rerank, 16 * k)
        if snap.removed:  # removed rows still sit in the lists until compaction; ask for more
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

    def _search_index(self, snap: _Snapshot, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Per query: the lists within the calibrated gap of its nearest list, the `rerank`
        nearest codes in them, their exact scores. A query whose probed lists hold fewer than k
        live templates is answered exactly."""
        index = snap.index
        model = index.model
        d = model.list_distances(model.project(q))
        qcodes = model.codes.encode(q)
        target = self._rerank_target(snap, k)
        scratch = self._scratch_buffers()
        rows = np.empty((len(q), k), dtype=np.intp)
        scores = np.empty((len(q), k), dtype=np.float32)
        for i in range(len(q)):
            cand = np.sort(ivf.candidates(model, index.lists, d[i], qcodes[i], target, scratch))
            if len(cand) >= k:
                s = ivf.small_product(snap.vectors[cand], q[i])
                if snap.alive is not None:
                    s[~snap.alive[cand]] = -np.inf
                r, v = _top_k(s[None, :], k)
                if not np.isneginf(v[0, -1]):
                    rows[i], scores[i] = cand[r[0]], v[0]
                    continue
            r, v = self._search_exact(snap, q[i:i + 1], k)  # too few live templates in the probed lists
            rows[i], scores[i] = r[0], v[0]
        return rows, scores

    def _scratch_buffers(self) -> ivf.Scratch:
        scratch = getattr(self._scratch, "ivf", None)
        if scratch is None:
            scratch = self._scratch.ivf = ivf.Scratch()
        return scratch

    # ------------------------------------------------------------------ index training

    @property
    def training(self) -> bool:
        """True while a background training or re-balance is running."""
        trainer = self._trainer
        return trainer is not None and trainer.is_alive()

    def wait_for_index(self, timeout: float | None = None) -> bool:
        """Wait for a running background training to finish; True when an index is in use.
        A training that failed is logged and re-raised here."""
        trainer = self._trainer
        if trainer is not None:
            trainer.join(timeout)
        if self._train_error is not None:
            err, self._train_error = self._train_error, None
            raise err
        return self._snap.index is not None

    def close(self) -> None:
        """Wait for a running training (searches need no cleanup)."""
        trainer = self._trainer
        if trainer is not None:
            trainer.join()

    def _train_min(self) -> int:
        floor = max(TRAIN_MIN_SIZE, 4 * self.rerank)
        return floor if self.mode == "fast" else max(floor, self.fast_min_size)

    def _maybe_train(self) -> None:
        """Called by writers (lock held): start a training when the gallery first reaches the
        size where the index pays, has doubled since the last one, or its lists have drifted."""
        snap = self._snap
        alive = snap.n - snap.removed
        if self.mode == "exact" or alive < self._train_min() or self.training:
            return
        index = snap.index
        if index is not None and alive < RETRAIN_GROWTH * index.model.trained_on \
                and ivf.drift(index.lists) < RETRAIN_DRIFT:
            return
        if not self.background:
            self._train(snap, self._generation)
            return
        self._trainer = threading.Thread(target=self._train, args=(snap, self._generation),
                                         name="gallery-train", daemon=True)
        self._trainer.start()

    def _train(self, snap: _Snapshot, generation: int) -> None:
        """Train on the rows of `snap` (removed ones included: they are dropped at compaction),
        then, under the lock, add the rows written since and publish."""
        from threadpoolctl import threadpool_limits

        try:
            matrix = snap.vectors[:snap.n]  # rows < n never change while generation holds
            # Training is a few hundred matrix products: with several BLAS threads on a busy
            # machine each one waits for a scheduled peer; one thread also leaves a core to search.
            with threadpool_limits(1, user_api="blas"):
                model, lists, words = ivf.train(matrix, bits=self.bits, seed=self.seed, nlist=self.nlist)
            log.debug("gallery: trained %d lists on %d templates (probe gap %.4f)", model.nlist, snap.n, model.tau)
            lock = self._lock if self.background else _NO_LOCK
            with lock:
                if self._generation != generation:
                    log.debug("gallery: rows renumbered during training; training again")
                    self._trainer = None
                    self._maybe_train()
                    return
                current = self._snap
                if current.n > snap.n:
                    extra = current.vectors[snap.n:current.n]
                    lists = np.concatenate([lists, model.assign(extra)])
                    words = np.concatenate([words, model.codes.encode(extra)])
                lay = ivf.layout(model.nlist, lists, np.arange(current.n), words)
                self._snap = replace(current, index=_Index(model=model, lists=lay))
        except Exception as err:  # keep searching exactly; wait_for_index() re-raises it
            log.exception("gallery: index training failed; search stays exact")
            self._train_error = err

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
            self._maybe_train()

    def _append(self, ids: list, arr: np.ndarray, norms: np.ndarray | None) -> None:
        snap = self._snap
        n, m = snap.n, len(ids)
        vectors, slot_ids, keys = snap.vectors, snap.ids, snap.keys
        if n + m > len(vectors):
            # New buffers: readers of the old snapshot keep the old ones.
            capacity = max(n + m, n + n // 2, n + GROW_ROWS)
            vectors = _grown(vectors, n, (capacity, self.dim), np.float32)
            slot_ids = _grown(slot_ids, n, (capacity,), object)
            keys = _grown(keys, n, (capacity,), np.int64)
        # Rows >= n are invisible to every published snapshot, so writing them in place is safe.
        if norms is None:
            vectors[n:n + m] = arr
        else:
            np.divide(arr, norms[:, None], out=vectors[n:n + m])
        slot_ids[n:n + m] = _object_array(ids)
        keys[n:n + m] = _id_keys(ids)
        index = snap.index
        if index is not None:
            new = vectors[n:n + m]
            index = self._index_add(index, index.model.assign(new), np.arange(n, n + m), index.model.codes.encode(new))
        alive = None if snap.alive is None else np.concatenate([snap.alive, np.ones(m, bool)])
        self._snap = _Snapshot(vectors=vectors, ids=slot_ids, keys=keys, n=n + m, alive=alive,
                               removed=snap.removed, index=index)

    @staticmethod
    def _index_add(index: _Index, lists: np.ndarray, rows: np.ndarray, words: np.ndarray) -> _Index:
        """New entries into their lists' spare slots; when a list is full, lay all lists out
        again with fresh spare room (a copy of the codes, no retraining)."""
        lay = ivf.insert(index.lists, lists, rows, words)
        if lay is None:
            old_lists, old_rows, old_words = ivf.entries(index.lists)
            lay = ivf.layout(index.model.nlist, np.concatenate([old_lists, lists]),
                             np.concatenate([old_rows, rows]), np.concatenate([old_words, words]))
        return replace(index, lists=lay)

    def remove(self, ids) -> int:
        """Remove every template stored under each id; return how many were removed (unknown ids
        are skipped, so a repeated delete request is harmless)."""
        ids = _check_ids(ids)
        if not ids:
            return 0
        with self._lock:
            snap = self._snap
            rows = self._rows_of(snap, ids)
            if not len(rows):
                return 0
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
        keys = np.empty(capacity, np.int64)
        keys[:n] = snap.keys[keep]
        index = snap.index
        if index is not None:
            new_row = np.cumsum(snap.alive) - 1
            new_row[~snap.alive] = -1
            lists, rows, words = ivf.entries(index.lists, keep_row=lambda r: new_row[r])
            index = replace(index, lists=ivf.layout(index.model.nlist, lists, rows, words))
            if n < self._train_min():
                index = None
        self._generation += 1  # a training started before this works on old row numbers
        self._snap = _Snapshot(vectors=vectors, ids=slot_ids, keys=keys, n=n, alive=None, removed=0, index=index)

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path, *, key: bytes | None = None) -> None:
        """Write the gallery atomically (format v2: templates, ids and the trained index, so a
        load needs no retraining). With `key` (the 32-byte device key, see load_device_key) the
        file is AES-256-GCM encrypted; without it the file is plain (with a SHA-256 checksum):
        the vision service always passes the key, plain files are for tests and tools."""
        snap = self._snap
        live = np.arange(snap.n) if snap.alive is None else np.flatnonzero(snap.alive)
        if key is None:
            log.warning("gallery: saving %s without encryption", path)
        ids_json = json.dumps(list(snap.ids[live]), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        little = snap.vectors[live].astype("<f4", copy=False)
        parts = [little, struct.pack("<Q", len(ids_json)), ids_json]
        if snap.index is not None:
            parts += _index_parts(snap.index, snap.n, live)
        fmt.write_file(path, dim=self.dim, count=len(live), parts=parts, key=key)

    @classmethod
    def load(cls, path: str | Path, *, key: bytes | None = None, **options) -> "Gallery":
        """Read a file written by save() (format v2, or v1 from an older edge: its index is then
        trained again in the background); refuse a tampered, truncated or foreign file with a
        GalleryFileError. `options` are the constructor's keyword arguments."""
        version, dim, count, payload = fmt.read_file(path, key=key)
        vec_bytes = 4 * dim * count
        if dim < 1 or len(payload) < vec_bytes:
            raise GalleryFileError(f"gallery file {path}: payload too short for {count} x {dim} vectors")
        matrix = np.frombuffer(payload, dtype="<f4", count=dim * count).reshape(count, dim)
        if version == 1:
            ids_bytes, index_bytes = payload[vec_bytes:], b""
        else:
            if len(payload) < vec_bytes + 8:
                raise GalleryFileError(f"gallery file {path}: payload too short for its id list length")
            (ids_len,) = struct.unpack_from("<Q", payload, vec_bytes)
            ids_end = vec_bytes + 8 + ids_len
            if ids_end > len(payload):
                raise GalleryFileError(f"gallery file {path}: id list runs past the payload")
            ids_bytes, index_bytes = payload[vec_bytes + 8:ids_end], memoryview(payload)[ids_end:]
        try:
            ids = json.loads(bytes(ids_bytes).decode("utf-8"))
            ids = _check_ids(ids) if isinstance(ids, list) else None
        except (UnicodeDecodeError, ValueError) as err:
            raise GalleryFileError(f"gallery file {path}: unreadable id list ({err})") from err
        if ids is None or len(ids) != count:
            raise GalleryFileError(f"gallery file {path}: id list does not match {count} vectors")
        norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
        if count and not np.all(np.abs(norms - 1) < 1e-3):
            raise GalleryFileError(f"gallery file {path}: vectors are not unit length (corrupted)")
        gallery = cls(dim, **options)
        index = _read_index(path, index_bytes, dim, count) if len(index_bytes) else None
        if count:
            with gallery._lock:
                gallery._append(ids, np.ascontiguousarray(matrix, dtype=np.float32), None)
                if index is not None and gallery.mode != "exact":
                    model, lists, words = index
                    gallery._snap = replace(gallery._snap, index=_Index(
                        model=model, lists=ivf.layout(model.nlist, lists, np.arange(count), words)))
                gallery._maybe_train()
        return gallery


_NO_LOCK = contextlib.nullcontext()
INDEX_ARRAYS = (("mean", "<f4"), ("axes", "<f4"), ("centroids", "<f4"), ("proj", "<f4"), ("thresholds", "<f4"),
                ("lists", "<i4"), ("codes", "<u8"))


def _index_parts(index: _Index, n: int, live: np.ndarray) -> list:
    """The index section of a v2 file: u32 length, a JSON description, then the arrays
    (model, then the list and code of every saved template, in the saved order)."""
    lists, rows, words = ivf.entries(index.lists)
    list_of_row = np.zeros(n, np.int32)
    list_of_row[rows] = lists
    code_of_row = np.zeros((n, words.shape[1]), np.uint64)
    code_of_row[rows] = words
    model = index.model
    arrays = {**model.arrays(), "lists": list_of_row[live], "codes": code_of_row[live]}
    meta = {"tau": model.tau, "max_probe": model.max_probe, "trained_on": model.trained_on,
            "prefilter": model.prefilter,
            "arrays": [[name, dtype, list(arrays[name].shape)] for name, dtype in INDEX_ARRAYS]}
    meta_json = json.dumps(meta, separators=(",", ":")).encode("ascii")
    return [struct.pack("<I", len(meta_json)), meta_json] + [np.ascontiguousarray(arrays[name], dtype=dtype)
                                                              for name, dtype in INDEX_ARRAYS]


def _read_index(path, data: memoryview, dim: int, count: int):
    """(model, list of each row, code of each row) from a v2 index section, every shape and
    value range checked (the file is authenticated, but it may come from a buggy writer)."""
    def bad(why: str) -> GalleryFileError:
        return GalleryFileError(f"gallery file {path}: index section {why}")

    try:
        (meta_len,) = struct.unpack_from("<I", data, 0)
        meta = json.loads(bytes(data[4:4 + meta_len]).decode("ascii"))
        specs = meta["arrays"]
        tau, max_probe, trained_on = float(meta["tau"]), int(meta["max_probe"]), int(meta["trained_on"])
        prefilter = float(meta.get("prefilter", ivf.PREFILTER_SHARE))
    except (struct.error, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise bad(f"has an unreadable description ({err})") from err
    if [s[:2] for s in specs] != [list(a) for a in INDEX_ARRAYS] or not math.isfinite(tau) or tau < 0 \
            or not 0 < prefilter <= 1:
        raise bad("describes unexpected arrays or values")
    arrays, offset = {}, 4 + meta_len
    for name, dtype, shape in specs:
        if not isinstance(shape, list) or not all(isinstance(s, int) and 0 <= s < 1 << 40 for s in shape):
            raise bad(f"gives a bad shape for {name}")
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if offset + size > len(data):
            raise bad(f"is truncated inside {name}")
        arrays[name] = np.frombuffer(data, dtype=dtype, count=size // np.dtype(dtype).itemsize,
                                     offset=offset).reshape(shape).astype(np.dtype(dtype).newbyteorder("="))
        offset += size
    if offset != len(data):
        raise bad("has trailing bytes")
    nlist, cdim = arrays["centroids"].shape if arrays["centroids"].ndim == 2 else (0, 0)
    bits = arrays["proj"].shape[1] if arrays["proj"].ndim == 2 else 0
    expected = {"mean": (dim,), "axes": (dim, cdim), "centroids": (nlist, cdim), "proj": (dim, bits),
                "thresholds": (bits,), "lists": (count,), "codes": (count, bits // 64)}
    if nlist < 1 or bits < 64 or bits % 64 or any(arrays[k].shape != v for k, v in expected.items()):
        raise bad("has arrays whose shapes do not fit the templates")
    lists = arrays.pop("lists")
    if count and (lists.min() < 0 or lists.max() >= nlist):
        raise bad("assigns a template to a list that does not exist")
    codes = arrays.pop("codes")
    model = ivf.Coarse.from_arrays(arrays, tau=tau, max_probe=max(1, min(max_probe, nlist)), trained_on=trained_on,
                                   prefilter=prefilter)
    return model, lists, codes


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


