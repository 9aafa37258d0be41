"""The vision worker's frame sources now live in `edge.hw.camera` (the one place that opens cameras);
these names stay importable from here for existing callers and tests."""

from edge.hw.camera import IMAGE_SUFFIXES, OpenCVSource, Picamera2Source, ReplaySource, fit, open_source

_fit = fit  # the old private name, still used by tests

__all__ = ["IMAGE_SUFFIXES", "OpenCVSource", "Picamera2Source", "ReplaySource", "fit", "open_source"]
