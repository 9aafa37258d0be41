"""Gallery file format v2 (magic, versioned header, AES-GCM chunks) and the device key file.

Layout of a gallery file (all integers little-endian):

    header  48 bytes  struct "<8sHHIQQ8s8s":
            magic b"EDGEGAL\\0", version u16 (2; 1 still read), flags u16 (bit 0: encrypted),
            dim u32, count u64, payload_len u64, key_id 8 bytes, nonce_prefix 8 bytes
    body    plain:     payload, then SHA-256(header || payload)              (32 bytes)
            encrypted: payload cut into 4 MiB chunks, each AES-256-GCM sealed (+16 byte tag)
                       with nonce = nonce_prefix || u32 chunk index and
                       AAD = header || u32 chunk index || u8 is_last_chunk
    payload v2: count*dim float32 (the L2-normalised vectors, row-major), u64 length of the
            id list, the ids as a UTF-8 JSON list (ints and strings keep their type), then the
            index section (empty when the gallery had no trained index): u32 length, a JSON
            description, then the arrays it names (see gallery._index_parts)
            v1: the vectors, then the id list (to the end of the payload); no index

Both versions share the header, the sealing and the key derivation; the version field is part
of the authenticated header, so a v2 file cannot be passed off as v1 or the reverse.

The header is authenticated with every chunk, and payload_len fixes the exact file size, so a
truncated, extended, reordered or edited file is refused before any byte of it is used. The AES
key is derived from the device key with HKDF (info names this format), so the raw device key is
never used directly and can serve other purposes; key_id (an HMAC of the derived key) lets a
load say "wrong device key" instead of "tampered" when the key is simply a different one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import struct
from pathlib import Path

from edge.errors import EdgeError, StoreError

MAGIC = b"EDGEGAL\0"
VERSION = 2
READABLE_VERSIONS = (1, 2)
FLAG_ENCRYPTED = 1
HEADER = struct.Struct("<8sHHIQQ8s8s")
CHUNK_BYTES = 4 << 20  # AES-GCM in one call is capped near 2 GiB; 4 MiB chunks also bound memory
TAG_BYTES = 16
DIGEST_BYTES = 32
KEY_BYTES = 32
HKDF_INFO = b"edge.vision.gallery/v1 AES-256-GCM"


class GalleryFileError(StoreError, ValueError):
    """Error raised when a gallery file is missing, truncated, tampered with, of an unknown
    version, or encrypted with another key (or not encrypted when a key was given)."""


class DeviceKeyError(EdgeError, ValueError):
    """Error raised when the device key file is missing, malformed, or readable by others."""


# ----------------------------------------------------------------------------- device key file

def load_device_key(path: str | Path) -> bytes:
    """Read the 32-byte device key (64 hex chars, or 32 raw bytes); refuse a file that group or
    others may read or write, or that belongs to another user than root or ourselves."""
    path = Path(path)
    try:
        st = path.stat()
        data = path.read_bytes()
    except OSError as err:
        raise DeviceKeyError(f"device key {path}: {err.strerror}") from err
    if st.st_mode & 0o077:
        raise DeviceKeyError(
            f"device key {path}: permissions {oct(st.st_mode & 0o777)} let others read it; "
            f"expected 0600 (run: chmod 600 {path})")
    if st.st_uid not in (0, os.getuid()):
        raise DeviceKeyError(f"device key {path}: owned by uid {st.st_uid}, expected root or uid {os.getuid()}")
    text = data.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    if len(data) == KEY_BYTES:
        return data
    raise DeviceKeyError(f"device key {path}: expected {2 * KEY_BYTES} hex characters or {KEY_BYTES} raw bytes, "
                         f"found {len(data)} bytes")


def create_device_key(path: str | Path) -> bytes:
    """Write a fresh random key as hex into a new 0600 file (never overwrites) and return it."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as err:
        raise DeviceKeyError(f"device key {path}: already exists, refusing to overwrite it") from err
    except OSError as err:
        raise DeviceKeyError(f"device key {path}: {err.strerror}") from err
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # the umask could have cleared bits, never added; be explicit
        f.write(key.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return key


def ensure_device_key(path: str | Path) -> bytes:
    """Load the device key, creating it (0600) on first use."""
    if not Path(path).exists():
        try:
            return create_device_key(path)
        except DeviceKeyError:
            if not Path(path).exists():  # lost a race with another creator: read theirs
                raise
    return load_device_key(path)


# ----------------------------------------------------------------------------- crypto helpers

def _check_key(key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
        got = f"{len(key)} bytes" if isinstance(key, (bytes, bytearray)) else type(key).__name__
        raise DeviceKeyError(f"gallery key must be {KEY_BYTES} bytes (see load_device_key), got {got}")
    return bytes(key)


def _derive(key: bytes) -> tuple[bytes, bytes]:
    """(AES key, key_id) from the device key."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    aes_key = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=HKDF_INFO).derive(_check_key(key))
    key_id = hmac.new(aes_key, b"key-id", hashlib.sha256).digest()[:8]
    return aes_key, key_id


def _chunk_aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack("<IB", index, 1 if last else 0)


def _chunk_count(payload_len: int) -> int:
    return max(1, -(-payload_len // CHUNK_BYTES))


def expected_size(payload_len: int, encrypted: bool) -> int:
    if encrypted:
        return HEADER.size + payload_len + _chunk_count(payload_len) * TAG_BYTES
    return HEADER.size + payload_len + DIGEST_BYTES


# ----------------------------------------------------------------------------- write / read

def write_file(path: str | Path, *, dim: int, count: int, parts: list, key: bytes | None,
               version: int = VERSION) -> None:
    """Atomically write a gallery file whose payload is the concatenation of `parts` (bytes-like).

    The file is written beside its final name with mode 0600, fsynced, then renamed over it, so
    a crash leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    views = [memoryview(p).cast("B") for p in parts if memoryview(p).nbytes]  # (0, dim) arrays cannot cast
    payload_len = sum(len(v) for v in views)
    encrypted = key is not None
    if encrypted:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        aes_key, key_id = _derive(key)
        aead = AESGCM(aes_key)
        nonce_prefix = secrets.token_bytes(8)
    else:
        key_id = nonce_prefix = bytes(8)
    header = HEADER.pack(MAGIC, version, FLAG_ENCRYPTED if encrypted else 0, dim, count, payload_len,
                         key_id, nonce_prefix)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            if encrypted:
                n_chunks = _chunk_count(payload_len)
                for index, chunk in enumerate(_chunks(views, payload_len)):
                    nonce = nonce_prefix + struct.pack("<I", index)
                    f.write(aead.encrypt(nonce, chunk, _chunk_aad(header, index, index == n_chunks - 1)))
            else:
                digest = hashlib.sha256(header)
                for v in views:
                    digest.update(v)
                    f.write(v)
                f.write(digest.digest())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _chunks(views: list, payload_len: int):
    """Yield the payload in CHUNK_BYTES pieces (at least one, possibly empty)."""
    if payload_len == 0:
        yield b""
        return
    buf = bytearray()
    for v in views:
        start = 0
        while start < len(v):
            take = min(CHUNK_BYTES - len(buf), len(v) - start)
            if not buf and take == CHUNK_BYTES:
                yield v[start:start + take]
            else:
                buf += v[start:start + take]
                if len(buf) == CHUNK_BYTES:
                    yield bytes(buf)
                    buf.clear()
            start += take
    if buf:
        yield bytes(buf)


def read_file(path: str | Path, *, key: bytes | None) -> tuple[int, int, int, bytearray]:
    """Read and verify a gallery file; return (version, dim, count, payload). Nothing is
    returned unless every byte checked out."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as err:
        raise GalleryFileError(f"gallery file {path}: {err.strerror}") from err
    with f:
        size = os.fstat(f.fileno()).st_size
        header = f.read(HEADER.size)
        if len(header) < len(MAGIC) or header[:len(MAGIC)] != MAGIC:
            raise GalleryFileError(f"gallery file {path}: not a gallery file (bad magic header)")
        if len(header) < HEADER.size:
            raise GalleryFileError(f"gallery file {path}: truncated inside its header ({size} bytes)")
        magic, version, flags, dim, count, payload_len, key_id, nonce_prefix = HEADER.unpack(header)
        if version not in READABLE_VERSIONS:
            raise GalleryFileError(f"gallery file {path}: format version {version}, this edge reads versions "
                                   f"{', '.join(map(str, READABLE_VERSIONS))}")
        if flags & ~FLAG_ENCRYPTED:
            raise GalleryFileError(f"gallery file {path}: unknown flags {flags:#x}")
        encrypted = bool(flags & FLAG_ENCRYPTED)
        if encrypted and key is None:
            raise GalleryFileError(f"gallery file {path}: encrypted; pass the device key (key=...)")
        if not encrypted and key is not None:
            # A plain file where an encrypted one is expected could be a planted gallery.
            raise GalleryFileError(f"gallery file {path}: not encrypted, refusing it because a device key was given")
        want = expected_size(payload_len, encrypted)
        if size != want:
            what = "truncated" if size < want else "has trailing bytes"
            raise GalleryFileError(f"gallery file {path}: {what} ({size} bytes, header says {want})")
        payload = bytearray(payload_len)
        if encrypted:
            _decrypt_into(f, path, header, payload, key, key_id, nonce_prefix)
        else:
            view = memoryview(payload)
            if f.readinto(view) != payload_len:
                raise GalleryFileError(f"gallery file {path}: truncated while reading")
            digest = hashlib.sha256(header)
            digest.update(view)
            if not hmac.compare_digest(digest.digest(), f.read(DIGEST_BYTES)):
                raise GalleryFileError(f"gallery file {path}: checksum mismatch (corrupted or tampered)")
    return version, dim, count, payload


def _decrypt_into(f, path, header, payload, key, key_id, nonce_prefix) -> None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aes_key, my_key_id = _derive(key)
    if not hmac.compare_digest(key_id, my_key_id):
        raise GalleryFileError(f"gallery file {path}: encrypted with a different device key")
    aead = AESGCM(aes_key)
    n_chunks = _chunk_count(len(payload))
    for index in range(n_chunks):
        start = index * CHUNK_BYTES
        length = min(CHUNK_BYTES, len(payload) - start)
        sealed = f.read(length + TAG_BYTES)
        nonce = nonce_prefix + struct.pack("<I", index)
        try:
            payload[start:start + length] = aead.decrypt(nonce, sealed, _chunk_aad(header, index, index == n_chunks - 1))
        except InvalidTag as err:
            raise GalleryFileError(f"gallery file {path}: authentication failed in chunk {index} "
                                   f"(tampered or corrupted)") from err
