"""The kiosk's peers as test doubles: they live in edge.testing, checked against edge.peers."""

from edge.testing import FakeLocker, FakePager, FakeQr, FakeVision  # noqa: F401
