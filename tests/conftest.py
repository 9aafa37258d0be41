"""Shared fixtures: a real mosquitto on a free loopback port, a store in tmp_path."""

from __future__ import annotations

import pytest

from edge.localbroker import MosquittoBroker
from edge.store import Store


@pytest.fixture
def mosquitto(tmp_path):
    """A started mosquitto on 127.0.0.1 at a free port; `.kill()`/`.start()` simulate an outage."""
    broker = MosquittoBroker(workdir=tmp_path / "mosquitto")
    (tmp_path / "mosquitto").mkdir(exist_ok=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "edge.db")
    try:
        yield s
    finally:
        s.close()
