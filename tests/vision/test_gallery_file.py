"""Gallery files: round trips (plain and AES-GCM), and every damaged or foreign file refused;
the device key file is created 0600 and refused when others can read it."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

from edge.errors import StoreError
from edge.vision import gallery_format as fmt
from edge.vision.gallery import (DeviceKeyError, Gallery, GalleryFileError, create_device_key, ensure_device_key,
                                 load_device_key)
from edge.vision.gallery_bench import FaceLikeData


@pytest.fixture
def key(tmp_path):
    return create_device_key(tmp_path / "keys" / "device.key")


def small_gallery(n=50, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    ids = [f"HS-{i:04d}" if i % 2 else i for i in range(n)]  # dossier codes and ints mixed
    gallery = Gallery(dim)
    gallery.add(ids, vectors)
    return gallery, vectors, ids


@pytest.mark.parametrize("encrypted", [False, True])
def test_round_trip_keeps_ids_types_vectors_and_answers(tmp_path, key, encrypted):
    gallery, vectors, ids = small_gallery()
    gallery.remove([0, "HS-0003"])
    path = tmp_path / "gallery.bin"
    gallery.save(path, key=key if encrypted else None)
    assert (os.stat(path).st_mode & 0o777) == 0o600

    loaded = Gallery.load(path, key=key if encrypted else None)
    assert loaded.dim == 16 and len(loaded) == len(gallery) == 48
    assert loaded.ids() == gallery.ids() and 2 in loaded and "HS-0001" in loaded and 0 not in loaded
    queries = np.random.default_rng(1).standard_normal((5, 16))
    for a, b in zip(gallery.search(queries, 4), loaded.search(queries, 4)):
        assert a.tolist() == b.tolist()


def test_encrypted_file_holds_no_plain_vectors_or_ids(tmp_path, key):
    gallery, vectors, _ = small_gallery()
    gallery.save(tmp_path / "g.bin", key=key)
    raw = (tmp_path / "g.bin").read_bytes()
    assert b"HS-0001" not in raw
    assert (vectors[0] / np.linalg.norm(vectors[0])).astype("<f4").tobytes()[:8] not in raw


def test_empty_gallery_round_trip(tmp_path, key):
    Gallery(8).save(tmp_path / "empty.bin", key=key)
    assert len(Gallery.load(tmp_path / "empty.bin", key=key)) == 0


def test_large_round_trip_in_several_chunks_and_fast_index_after_load(tmp_path, key):
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((12_000, 128)).astype(np.float32)  # 6 MB: two 4 MiB chunks
    gallery = Gallery(128, mode="fast", background=False)
    gallery.add(range(12_000), vectors)
    gallery.save(tmp_path / "big.bin", key=key)
    loaded = Gallery.load(tmp_path / "big.bin", key=key, mode="fast")
    assert loaded.stats()["fast_index"]
    q = vectors[:8] + 0.1 * rng.standard_normal((8, 128)).astype(np.float32)
    assert loaded.search(q, 1)[0][:, 0].tolist() == list(range(8))


def _rewrite(path, fn):
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(fn(data)))


def _flip(offset):
    def fn(data):
        data[offset if offset >= 0 else len(data) + offset] ^= 0x01
        return data
    return fn


@pytest.mark.parametrize("encrypted", [False, True])
@pytest.mark.parametrize("damage, message", [
    (_flip(fmt.HEADER.size + 10), "tampered|corrupted"),          # a vector byte
    (_flip(-5), "tampered|corrupted"),                            # the id list / last tag
    (_flip(12), "tampered|corrupted|truncated|trailing|different device key"),  # dim in the header
    (lambda d: d[:-1], "truncated"),
    (lambda d: d[:fmt.HEADER.size - 3], "truncated inside its header"),
    (lambda d: d + b"\0", "trailing bytes"),
    (lambda d: b"NOTAGAL!" + d[8:], "not a gallery file"),
    (lambda d: b"", "not a gallery file"),
    (lambda d: d[:8] + struct.pack("<H", 9) + d[10:], "format version 9"),
])
def test_damaged_file_is_refused(tmp_path, key, encrypted, damage, message):
    gallery, _, _ = small_gallery()
    path = tmp_path / "g.bin"
    gallery.save(path, key=key if encrypted else None)
    _rewrite(path, damage)
    with pytest.raises(GalleryFileError, match=message) as info:
        Gallery.load(path, key=key if encrypted else None)
    assert isinstance(info.value, StoreError) and isinstance(info.value, ValueError)


def test_chunks_cannot_be_dropped_or_swapped(tmp_path, key):
    rng = np.random.default_rng(5)
    gallery = Gallery(256, mode="exact")
    gallery.add(range(9_000), rng.standard_normal((9_000, 256)))  # 9.2 MB: three chunks
    path = tmp_path / "g.bin"
    gallery.save(path, key=key)
    raw = path.read_bytes()
    head, body = raw[:fmt.HEADER.size], raw[fmt.HEADER.size:]
    sealed = fmt.CHUNK_BYTES + fmt.TAG_BYTES
    c0, c1, rest = body[:sealed], body[sealed:2 * sealed], body[2 * sealed:]
    path.write_bytes(head + c1 + c0 + rest)
    with pytest.raises(GalleryFileError, match="authentication failed in chunk 0"):
        Gallery.load(path, key=key)
    path.write_bytes(head + c0 + c1)  # last chunk dropped
    with pytest.raises(GalleryFileError, match="truncated"):
        Gallery.load(path, key=key)


def test_wrong_key_missing_key_and_downgrade_are_refused(tmp_path, key):
    gallery, _, _ = small_gallery()
    gallery.save(tmp_path / "enc.bin", key=key)
    gallery.save(tmp_path / "plain.bin")
    other = create_device_key(tmp_path / "other.key")
    with pytest.raises(GalleryFileError, match="different device key"):
        Gallery.load(tmp_path / "enc.bin", key=other)
    with pytest.raises(GalleryFileError, match="encrypted; pass the device key"):
        Gallery.load(tmp_path / "enc.bin")
    with pytest.raises(GalleryFileError, match="not encrypted, refusing"):  # a planted plain gallery
        Gallery.load(tmp_path / "plain.bin", key=key)
    with pytest.raises(GalleryFileError, match="No such file"):
        Gallery.load(tmp_path / "missing.bin", key=key)
    with pytest.raises(DeviceKeyError, match="32 bytes"):
        gallery.save(tmp_path / "x.bin", key=b"short")


def test_failed_save_leaves_the_previous_file(tmp_path, key, monkeypatch):
    gallery, _, _ = small_gallery()
    path = tmp_path / "g.bin"
    gallery.save(path, key=key)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(fmt.os, "fsync", broken)
    with pytest.raises(OSError):
        gallery.save(path, key=key)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_device_key_file(tmp_path):
    path = tmp_path / "k" / "device.key"
    key = ensure_device_key(path)
    assert len(key) == 32 and (path.stat().st_mode & 0o777) == 0o600
    assert ensure_device_key(path) == key == load_device_key(path)
    with pytest.raises(DeviceKeyError, match="already exists"):
        create_device_key(path)

    path.chmod(0o644)
    with pytest.raises(DeviceKeyError, match="0o644 let others read it"):
        load_device_key(path)
    path.chmod(0o600)
    path.write_text("abcd\n")
    with pytest.raises(DeviceKeyError, match="expected 64 hex characters or 32 raw bytes"):
        load_device_key(path)
    path.write_bytes(bytes(range(32)))  # raw bytes are accepted too
    assert load_device_key(path) == bytes(range(32))
    with pytest.raises(DeviceKeyError, match="No such file"):
        load_device_key(tmp_path / "absent.key")


@pytest.mark.parametrize("vectors, ids_json, message", [
    (np.eye(2, 4, dtype="<f4"), b'{"not": "a list"}', "id list does not match"),
    (np.eye(2, 4, dtype="<f4"), b'["a"]', "id list does not match 2 vectors"),
    (np.eye(2, 4, dtype="<f4"), b'["a", true]', "unreadable id list"),
    (np.eye(2, 4, dtype="<f4"), b'\xff\xfe', "unreadable id list"),
    (2 * np.eye(2, 4, dtype="<f4"), b'["a", "b"]', "not unit length"),
])
def test_well_sealed_but_inconsistent_content_is_refused(tmp_path, key, vectors, ids_json, message):
    """A file that passes authentication but whose content is inconsistent (a bug or a key
    leak) is still refused rather than loaded half-right."""
    path = tmp_path / "g.bin"
    fmt.write_file(path, dim=4, count=2, parts=[vectors, ids_json], key=key, version=1)
    with pytest.raises(GalleryFileError, match=message):
        Gallery.load(path, key=key)
    fmt.write_file(path, dim=4, count=2, parts=[vectors, struct.pack("<Q", len(ids_json)), ids_json], key=key)
    with pytest.raises(GalleryFileError, match=message):  # the same in a v2 file
        Gallery.load(path, key=key)


def _v1_file(path, vectors, ids, key):
    """A file exactly as the previous edge (format v1) wrote it: vectors then the id list."""
    unit = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype("<f4")
    ids_json = json.dumps(ids, separators=(",", ":")).encode()
    fmt.write_file(path, dim=vectors.shape[1], count=len(ids), parts=[unit, ids_json], key=key, version=1)


@pytest.mark.parametrize("encrypted", [False, True])
def test_old_version_1_file_still_loads_and_gets_an_index(tmp_path, key, encrypted):
    rng = np.random.default_rng(6)
    vectors = rng.standard_normal((6_000, 32)).astype(np.float32)
    ids = [f"HS-{i}" if i % 3 else i for i in range(6_000)]
    path = tmp_path / "old.bin"
    _v1_file(path, vectors, ids, key if encrypted else None)
    assert struct.unpack_from("<H", path.read_bytes(), 8)[0] == 1

    loaded = Gallery.load(path, key=key if encrypted else None, mode="fast")
    assert loaded.ids() == ids
    assert loaded.wait_for_index(timeout=120)  # trained again in the background
    q = vectors[:20] + 0.05 * rng.standard_normal((20, 32)).astype(np.float32)
    assert loaded.search(q, 1)[0][:, 0].tolist() == ids[:20]

    loaded.save(path, key=key if encrypted else None)  # written back as the current version
    assert struct.unpack_from("<H", path.read_bytes(), 8)[0] == fmt.VERSION == 2


def test_version_2_keeps_the_trained_index(tmp_path, key):
    """A load of a v2 file searches through the saved index at once: same lists, same answers."""
    data = FaceLikeData(64, 2_000, seed=8)
    vectors, _ = data.gallery(10_000, 5)
    gallery = Gallery(64, mode="fast", background=False)
    gallery.add(range(10_000), vectors)
    gallery.remove(list(range(0, 10_000, 10)))
    gallery.save(tmp_path / "g2.bin", key=key)
    loaded = Gallery.load(tmp_path / "g2.bin", key=key, mode="fast", background=False)
    assert loaded.stats()["fast_index"] and not loaded.training
    assert loaded.stats()["lists"] == gallery.stats()["lists"]
    assert loaded.stats()["probe_gap"] == pytest.approx(gallery.stats()["probe_gap"])
    queries, _ = data.queries(50)
    for a, b in zip(gallery.search(queries, 3), loaded.search(queries, 3)):
        assert a.tolist() == b.tolist()


@pytest.mark.parametrize("damage, message", [
    (lambda meta: {**meta, "tau": -1}, "unexpected arrays or values"),
    (lambda meta: {**meta, "arrays": meta["arrays"][:-1]}, "unexpected arrays or values"),
    (lambda meta: {**meta, "arrays": [[n, t, [s[0] + 1] + s[1:]] if n == "codes" else [n, t, s]
                                      for n, t, s in meta["arrays"]]}, "truncated inside codes|shapes do not fit"),
])
def test_well_sealed_but_inconsistent_index_is_refused(tmp_path, key, damage, message):
    rng = np.random.default_rng(2)
    gallery = Gallery(16, mode="fast", background=False)
    gallery.add(range(3_000), rng.standard_normal((3_000, 16)))
    gallery.save(tmp_path / "g.bin", key=key)
    _, dim, count, payload = fmt.read_file(tmp_path / "g.bin", key=key)
    start = 4 * dim * count
    (ids_len,) = struct.unpack_from("<Q", payload, start)
    index_at = start + 8 + ids_len
    (meta_len,) = struct.unpack_from("<I", payload, index_at)
    meta = json.loads(bytes(payload[index_at + 4:index_at + 4 + meta_len]))
    new_meta = json.dumps(damage(meta)).encode()
    rebuilt = (bytes(payload[:index_at]) + struct.pack("<I", len(new_meta)) + new_meta
               + bytes(payload[index_at + 4 + meta_len:]))
    fmt.write_file(tmp_path / "g.bin", dim=dim, count=count, parts=[rebuilt], key=key)
    with pytest.raises(GalleryFileError, match=message):
        Gallery.load(tmp_path / "g.bin", key=key)
