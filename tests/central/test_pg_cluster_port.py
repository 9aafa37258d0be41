"""The throwaway PostgreSQL of the central tests on a busy machine: the free port it picked can be
taken by another process (the other test worker) before the server binds it. The first start then
moves to another port; a restart keeps its port (central reconnects to it) or fails."""

from __future__ import annotations

import subprocess

import pytest

from edge.central.testing import PgCluster, PgDatabase
from edge.testing import occupy_port


def test_a_port_taken_before_the_first_start_is_replaced_and_a_restart_keeps_its_port():
    cluster = PgCluster()
    picked = cluster.port
    try:
        with occupy_port(picked):
            cluster.start()
        assert cluster.port != picked
        PgDatabase(cluster).drop()  # the server on the new port answers
        cluster.stop("immediate")
        with occupy_port(cluster.port), pytest.raises(subprocess.CalledProcessError):
            cluster.start()
    finally:
        cluster.cleanup()
