"""Gallery search: exact mode equals numpy's ranking, fast mode finds exact's top-1, add/remove,
bad input refused with a clear error, one writer with many readers."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from edge.errors import EdgeError
from edge.vision.gallery import Gallery, GalleryError
from edge.vision.gallery_bench import FaceLikeData, recall_at_1


def unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def numpy_top_k(gallery_vectors, queries, k):
    """The reference: numpy's scores and a stable argsort, highest first."""
    scores = unit(queries) @ unit(gallery_vectors).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


@pytest.fixture(scope="module")
def face_data():
    """40,000 dlib-like templates (8,000 people x 5), big enough for the fast index to engage."""
    data = FaceLikeData(128, 8_000, seed=3)
    templates, labels = data.gallery(40_000, 5)
    return data, templates, labels


@pytest.fixture(scope="module")
def face_gallery(face_data):
    _, templates, _ = face_data
    gallery = Gallery(128, fast_min_size=10_000)
    gallery.add(np.arange(len(templates)), templates)
    # a deadline for real work: the background training took 34 s at load 25 on 2 cores
    assert gallery.wait_for_index(timeout=400)
    yield gallery
    gallery.close()


@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_exact_mode_equals_numpy_ranking(kind, k):
    rng = np.random.default_rng(11)
    if kind == "random":
        vectors = rng.standard_normal((3_000, 64)).astype(np.float32)
        queries = rng.standard_normal((9, 64)).astype(np.float32)
    else:
        data = FaceLikeData(64, 600, seed=5)
        vectors, _ = data.gallery(3_000, 5)
        queries, _ = data.queries(9)
    gallery = Gallery(64, mode="exact")
    gallery.add([f"id{i}" for i in range(len(vectors))], vectors)
    expected_rows, expected_scores = numpy_top_k(vectors, queries, k)

    ids, scores = gallery.search(queries, k)  # batched: one GEMM
    assert ids.shape == scores.shape == (9, k)
    assert ids.tolist() == [[f"id{r}" for r in row] for row in expected_rows]
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    for i, q in enumerate(queries):  # one at a time: GEMV, same answer
        one_ids, one_scores = gallery.search(q, k)
        assert one_ids.tolist() == [ids[i].tolist()]
        np.testing.assert_allclose(one_scores[0], scores[i], atol=1e-5)


def test_batched_exact_search_over_several_row_blocks_with_removals():
    """Many queries make the row blocks small (1024 rows): the merged top-k must still be
    numpy's, with removed rows never returned."""
    rng = np.random.default_rng(12)
    vectors = rng.standard_normal((5_000, 16)).astype(np.float32)
    queries = rng.standard_normal((1_500, 16)).astype(np.float32)
    gallery = Gallery(16, mode="exact")
    gallery.add(range(5_000), vectors)
    gone = list(range(0, 5_000, 9))
    gallery.remove(gone)
    keep = np.setdiff1d(np.arange(5_000), gone)
    expected_rows, expected_scores = numpy_top_k(vectors[keep], queries, 4)
    ids, scores = gallery.search(queries, 4)
    assert ids.tolist() == keep[expected_rows].tolist()
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)


def test_scores_are_cosine_of_normalised_vectors_whatever_the_scale():
    gallery = Gallery(3)
    gallery.add(["a", "b", "c"], [[10, 0, 0], [0, 0.01, 0], [1, 1, 0]])
    ids, scores = gallery.search([[5, 5, 0]], k=3)
    assert ids.tolist() == [["c", "a", "b"]]
    np.testing.assert_allclose(scores[0], [1.0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-6)


def test_fast_mode_recall_on_face_like_data(face_data, face_gallery):
    data, _, _ = face_data
    assert face_gallery.stats()["fast_index"], "the index must be built at this size"
    queries, _ = data.queries(3_000)
    result = recall_at_1(face_gallery, queries)
    assert result["recall_at_1"] >= 0.999, result


def test_fast_mode_top_k_scores_are_exact_scores(face_data, face_gallery):
    """Fast mode reranks with the float vectors: whatever it returns carries the true score."""
    data, templates, _ = face_data
    queries, _ = data.queries(20)
    ids, scores = face_gallery.search(queries, k=5, mode="fast")
    assert (np.diff(scores, axis=1) <= 0).all()
    for q, row_ids, row_scores in zip(queries, ids, scores):
        np.testing.assert_allclose(row_scores, unit(templates[list(row_ids)]) @ unit(q), atol=1e-5)


def test_auto_mode_is_exact_below_the_threshold():
    data = FaceLikeData(32, 400, seed=1)
    vectors, _ = data.gallery(2_000, 5)
    gallery = Gallery(32)  # auto, default threshold 50,000: no code index for 2,000 templates
    gallery.add(range(len(vectors)), vectors)
    assert not gallery.stats()["fast_index"]
    queries, _ = data.queries(5)
    rows, _ = numpy_top_k(vectors, queries, 3)
    assert gallery.search(queries, 3)[0].tolist() == rows.tolist()


def test_add_remove_len_contains_and_repeated_ids():
    gallery = Gallery(4)
    assert len(gallery) == 0
    gallery.add(["A012", "A012", 7], np.eye(4)[:3])
    assert len(gallery) == 3 and "A012" in gallery and 7 in gallery and "7" not in gallery
    assert gallery.get("A012").shape == (2, 4)
    ids, _ = gallery.search(np.eye(4)[0], k=3)
    assert ids[0, 0] == "A012"

    assert gallery.remove(["A012"]) == 2  # every template of that person
    assert gallery.remove(["A012", "nobody"]) == 0  # a repeated delete is harmless
    assert len(gallery) == 1 and "A012" not in gallery
    ids, scores = gallery.search(np.eye(4)[0], k=3)
    assert ids.tolist() == [[7, None, None]]
    assert scores[0, 1] == -np.inf and scores[0, 2] == -np.inf
    with pytest.raises(KeyError):
        gallery.get("A012")


def test_empty_gallery_search_pads():
    ids, scores = Gallery(8).search(np.ones((2, 8)), k=2)
    assert ids.tolist() == [[None, None], [None, None]]
    assert np.isneginf(scores).all()


def test_removals_in_fast_mode_and_compaction(face_data):
    data, templates, labels = face_data
    gallery = Gallery(128, mode="fast", background=False)
    gallery.add([f"P{i}" for i in range(20_000)], templates[:20_000])
    assert gallery.stats()["fast_index"]
    queries = data.samples(np.random.default_rng(8).integers(0, 4_000, 200))  # people enrolled above
    gone = {f"P{i}" for i in range(0, 20_000, 7)}
    gallery.remove(sorted(gone))
    assert gallery.stats()["removed_pending"] == len(gone)  # tombstones, not yet compacted
    ids, _ = gallery.search(queries, 5, mode="fast")
    assert not gone.intersection(ids.ravel())
    exact_ids, _ = gallery.search(queries, 1, mode="exact")
    assert np.mean(exact_ids[:, 0] == ids[:, 0]) >= 0.99

    gallery.remove([f"P{i}" for i in range(1, 20_000, 2)])  # past a quarter removed: compaction
    assert gallery.stats()["removed_pending"] == 0
    assert len(gallery) == 20_000 - len(gone | {f"P{i}" for i in range(1, 20_000, 2)})
    keep = [i for i in range(20_000) if f"P{i}" not in gone and i % 2 == 0]
    rows, _ = numpy_top_k(templates[keep], queries[:10], 1)
    assert gallery.search(queries[:10], 1, mode="exact")[0][:, 0].tolist() == [f"P{keep[r]}" for r in rows[:, 0]]


@pytest.mark.parametrize("vectors, message", [
    ([[0.1, np.nan, 0.3, 0.4]], "vectors[0] holds NaN or inf"),
    ([[1, 2, 3, 4], [0.1, np.inf, 0.3, 0.4]], "vectors[1] holds NaN or inf"),
    ([[0, 0, 0, 0]], "vectors[0] is a zero vector"),
    ([[1, 2, 3]], r"shape \(n, 4\), got \(1, 3\)"),
    ([[[1, 2, 3, 4]]], r"shape \(n, 4\)"),
    ([["a", "b", "c", "d"]], "must be real numbers"),
    ([[1e30, 1e30, 1e30, 1e30]], "too large"),
])
def test_bad_vectors_are_refused_with_a_clear_error(vectors, message):
    gallery = Gallery(4)
    gallery.add(["keep"], [[1, 0, 0, 0]])
    with pytest.raises(GalleryError, match=re.escape(message) if "[" in message else message) as info:
        gallery.add([f"x{i}" for i in range(len(vectors))], vectors)
    assert isinstance(info.value, (EdgeError, ValueError))
    assert len(gallery) == 1 and gallery.ids() == ["keep"]  # nothing half-added


@pytest.mark.parametrize("ids, message", [
    ([True], "bool"),
    ([1.5], "float"),
    ([""], "1 to 256 characters"),
    (["x" * 257], "1 to 256 characters"),
    ([None], "NoneType"),
    (["a", "b"], "2 ids for 1 vectors"),
])
def test_bad_ids_are_refused(ids, message):
    with pytest.raises(GalleryError, match=message):
        Gallery(4).add(ids, [[1, 0, 0, 0]])


def test_bad_queries_and_arguments_are_refused():
    gallery = Gallery(4)
    gallery.add([1], [[1, 0, 0, 0]])
    with pytest.raises(GalleryError, match=r"queries must have shape \(n, 4\)"):
        gallery.search(np.ones((2, 5)))
    with pytest.raises(GalleryError, match="queries\\[1\\] holds NaN"):
        gallery.search([[1, 0, 0, 0], [np.nan, 0, 0, 0]])
    with pytest.raises(GalleryError, match="queries\\[0\\] is a zero vector"):
        gallery.search(np.zeros(4))
    for k in (0, -1, 1.5, True):
        with pytest.raises(GalleryError, match="k must be a positive int"):
            gallery.search(np.ones(4), k=k)
    with pytest.raises(GalleryError, match="mode must be one of"):
        gallery.search(np.ones(4), mode="approx")
    with pytest.raises(GalleryError, match="dim must be"):
        Gallery(0)


def test_one_writer_many_readers():
    """Searches running while a writer adds, removes and compacts never fail and never return
    an id that was removed before the search started."""
    data = FaceLikeData(32, 2_000, seed=9)
    vectors, _ = data.gallery(10_000, 5)
    queries, _ = data.queries(64)
    gallery = Gallery(32, mode="fast")
    gallery.add(range(2_000), vectors[:2_000])
    removed: set = set()
    removed_lock = threading.Lock()
    errors: list = []
    stop = threading.Event()

    def writer():
        rng = np.random.default_rng(2)
        try:
            for start in range(2_000, 10_000, 500):
                gallery.add(range(start, start + 500), vectors[start:start + 500])
                victims = [int(v) for v in rng.choice(start, 300, replace=False)]
                gallery.remove(victims)
                with removed_lock:
                    removed.update(victims)
        except Exception as err:  # surfaced by the assertion below
            errors.append(err)
        finally:
            stop.set()

    def reader():
        rng = np.random.default_rng()
        try:
            while not stop.is_set():
                with removed_lock:
                    before = set(removed)
                ids, scores = gallery.search(queries[rng.integers(0, 64, 4)], k=3)
                assert not before.intersection(ids.ravel()), "returned a removed id"
                assert np.isfinite(scores).all() and (np.diff(scores, axis=1) <= 1e-6).all()
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(gallery) == 10_000 - len(removed)
    assert set(gallery.ids()) == set(range(10_000)) - removed


@pytest.mark.slow
@pytest.mark.timeout(3600)  # building a 1 M index on a busy 2-core machine takes minutes
@pytest.mark.parametrize("dim, noise, recall", [(128, 0.3, 0.999), (512, 0.3, 0.999), (128, 0.45, 0.99)])
def test_fast_mode_recall_at_one_million(dim, noise, recall):
    """The recall contract at the issue's size: 1,000,000 templates (200,000 people x 5),
    default settings (index trained in the background), >= 99.9 % exact top-1 on fresh captures
    of enrolled people at the bench's dlib-like and ArcFace-like geometries. At a noise level
    harsher than dlib's (same-person distance ~0.64, past its 0.6 threshold, where most genuine
    pairs are rejected anyway) the index degrades to >= 99 % (measured 0.994), not to a cliff."""
    data = FaceLikeData(dim, 200_000, seed=21, noise=noise)
    templates, _ = data.gallery(1_000_000, 5)
    gallery = Gallery(dim)
    gallery.add(np.arange(len(templates)), templates)
    del templates
    assert gallery.wait_for_index()
    queries, _ = data.queries(3_000)
    result = recall_at_1(gallery, queries)
    gallery.close()
    assert result["recall_at_1"] >= recall, result
