"""Reader for dlib's `.dat` serialisation of the face-recognition ResNet (no dlib needed).

Wire format (dlib/serialize.h): an int is a control byte (low nibble = byte count, bit 7 =
negative) then that many little-endian bytes; a float is an int mantissa then an int exponent;
a string is an int length then the bytes; a tensor is int version 2, four int dimensions, then
raw little-endian float32. A network is stored innermost layer first, each layer's details
introduced by its type name ("con_4", "affine_", "max_pool_2", "avg_pool_2", "fc_2").
Pure: bytes in, numpy arrays out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from edge.errors import EdgeError


class ModelFormatError(EdgeError, ValueError):
    """Error raised when a dlib model file is truncated, corrupt or not the expected network."""


@dataclass
class Layer:
    kind: str  # "input", "con", "affine", "max_pool", "avg_pool", "fc"
    offset: int  # byte offset of the type name, for error messages
    params: dict = field(default_factory=dict)


class Reader:
    """Sequential reader of dlib's primitive encodings over a bytes buffer."""

    def __init__(self, data: bytes, pos: int = 0):
        self.data = data
        self.pos = pos

    def _need(self, n: int) -> None:
        if self.pos + n > len(self.data):
            raise ModelFormatError(f"truncated at byte {self.pos}: need {n} more bytes, file has {len(self.data)}")

    def int(self) -> int:
        self._need(1)
        control = self.data[self.pos]
        size = control & 0x0F
        if size > 8:
            raise ModelFormatError(f"bad integer control byte 0x{control:02x} at byte {self.pos}")
        self._need(1 + size)
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0 ** exponent

    def string(self) -> str:
        n = self.int()
        if n < 0 or n > 1 << 16:
            raise ModelFormatError(f"implausible string length {n} at byte {self.pos}")
        self._need(n)
        text = self.data[self.pos:self.pos + n].decode("latin-1")
        self.pos += n
        return text

    def tensor(self) -> np.ndarray:
        start = self.pos
        version = self.int()
        if version != 2:
            raise ModelFormatError(f"tensor at byte {start}: version {version}, expected 2")
        dims = [self.int() for _ in range(4)]
        if any(d < 0 for d in dims):
            raise ModelFormatError(f"tensor at byte {start}: negative dimension {dims}")
        count = int(np.prod(dims))
        self._need(4 * count)
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).astype(np.float32)
        self.pos += 4 * count
        if not np.all(np.isfinite(values)):
            raise ModelFormatError(f"tensor at byte {start}: contains NaN or infinity")
        return values.reshape(dims)


# Layer type names as dlib writes them (string length prefix included, see Reader.string).
_NAMES = {b"con_4": "con", b"affine_": "affine", b"max_pool_2": "max_pool",
          b"avg_pool_2": "avg_pool", b"fc_2": "fc", b"input_rgb_image_sized": "input"}
_NAME_RE = re.compile(b"|".join(re.escape(bytes([1, len(n)]) + n) for n in _NAMES))


def read_layers(data: bytes) -> list[Layer]:
    """All parameterised layers of the file, innermost (input) first."""
    layers: list[Layer] = []
    pos = 0
    while True:
        match = _NAME_RE.search(data, pos)
        if match is None:
            break
        reader = Reader(data, match.start())
        name = reader.string().encode("latin-1")
        layer = Layer(_NAMES[name], match.start())
        _READERS[layer.kind](reader, layer)
        layers.append(layer)
        pos = reader.pos  # never search inside the weights just read
    return layers


def _read_input(r: Reader, layer: Layer) -> None:
    layer.params["mean_rgb"] = [r.float(), r.float(), r.float()]
    layer.params["size"] = (r.int(), r.int())


def _read_con(r: Reader, layer: Layer) -> None:
    params = r.tensor().reshape(-1)
    filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(7))
    per_filter = (params.size - filters) // filters if filters > 0 else 0
    channels = per_filter // (rows * cols) if rows * cols > 0 else 0
    if filters <= 0 or channels * rows * cols * filters + filters != params.size:
        raise ModelFormatError(f"con layer at byte {layer.offset}: {params.size} parameters do not fit "
                               f"{filters} filters of {rows}x{cols}")
    layer.params.update(
        weight=params[:-filters].reshape(filters, channels, rows, cols), bias=params[-filters:],
        stride=(stride_y, stride_x), pad=(pad_y, pad_x))


def _read_affine(r: Reader, layer: Layer) -> None:
    params = r.tensor().reshape(-1)
    if params.size % 2:
        raise ModelFormatError(f"affine layer at byte {layer.offset}: odd parameter count {params.size}")
    half = params.size // 2
    layer.params.update(scale=params[:half], shift=params[half:])


def _read_pool(r: Reader, layer: Layer) -> None:
    rows, cols, stride_y, stride_x, pad_y, pad_x = (r.int() for _ in range(6))
    layer.params.update(window=(rows, cols), stride=(stride_y, stride_x), pad=(pad_y, pad_x))


def _read_fc(r: Reader, layer: Layer) -> None:
    outputs, inputs = r.int(), r.int()
    params = r.tensor().reshape(-1)
    if params.size not in (inputs * outputs, (inputs + 1) * outputs):
        raise ModelFormatError(f"fc layer at byte {layer.offset}: {params.size} parameters for {inputs}->{outputs}")
    # dlib computes output = input x W with W stored inputs-major (inputs x outputs).
    layer.params.update(weight=params[:inputs * outputs].reshape(inputs, outputs),
                        bias=params[inputs * outputs:] if params.size > inputs * outputs else None)


_READERS = {"input": _read_input, "con": _read_con, "affine": _read_affine,
            "max_pool": _read_pool, "avg_pool": _read_pool, "fc": _read_fc}
