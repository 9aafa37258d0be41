"""The local mosquitto of the tests and the demo on a busy machine: the free port it picked can be
taken by another process (another test worker) before mosquitto binds it. It must then move to
another port, never report ready because some other listener answered on its port."""

from __future__ import annotations


import pytest

from edge.errors import DeviceNotReady
from edge.localbroker import MosquittoBroker, listens_on
from edge.testing import occupy_port


def test_a_port_taken_before_mosquitto_binds_it_is_replaced_by_a_free_one(tmp_path):
    broker = MosquittoBroker(workdir=tmp_path)
    picked = broker.port
    with occupy_port(picked):  # someone else got there between free_port() and mosquitto's bind
        broker.start()
        try:
            assert broker.port != picked and broker.url.endswith(f":{broker.port}")
            assert listens_on(broker.process.pid, broker.port)
            assert not listens_on(broker.process.pid, picked)  # the answer on `picked` is not ours
        finally:
            broker.close()


def test_a_restart_keeps_its_port_and_says_so_when_it_is_taken(tmp_path):
    broker = MosquittoBroker(workdir=tmp_path).start()
    port = broker.port
    try:
        broker.kill()  # clients will reconnect to this very port: it must not move
        with occupy_port(port), pytest.raises(DeviceNotReady, match=f"{port}: it is in use"):
            broker.start()
        broker.start()
        assert broker.port == port and listens_on(broker.process.pid, port)
    finally:
        broker.close()
