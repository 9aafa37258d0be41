"""edge: the supervisor of the one-stop office Raspberry Pis (pager base, lockers, face, QR)."""

__version__ = "0.1.0"
