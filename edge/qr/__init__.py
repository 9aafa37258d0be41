"""QR codes at the one-stop office: decoding, parsing, the procedure catalog, posters.

`edge.qr.decode(frame) -> list[Scan]` and `edge.qr.parse(text) -> ParsedCode`. Names are
imported on first use so that `edge --help` does not load OpenCV or zxing-cpp.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "decode": "edge.qr.decoder",
    "Scan": "edge.qr.decoder",
    "Decoder": "edge.qr.decoder",
    "parse": "edge.qr.codes",
    "ParsedCode": "edge.qr.codes",
    "KINDS": "edge.qr.codes",
    "QrError": "edge.qr.errors",
    "QrInputError": "edge.qr.errors",
    "CatalogError": "edge.qr.errors",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edge.qr' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
