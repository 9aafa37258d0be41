"""Errors of the QR area (subclasses of the project's error tree)."""

from edge.errors import EdgeError


class QrError(EdgeError):
    """Error raised when QR decoding, the catalog or a poster cannot do what was asked."""


class QrInputError(QrError, ValueError):
    """Error raised when a frame is not a gray (H×W) or BGR (H×W×3) uint8 image of a sane size."""


class CatalogError(QrError, ValueError):
    """Error raised when a catalog file is unreadable or has invalid rows; `.problems` lists each."""

    def __init__(self, problems):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))
