"""Real transmitter on the bench (opt-in): `EDGE_PAGER_DRIVER=jtech EDGE_PAGER_PORT=/dev/ttyUSB0
EDGE_PAGER_SYSTEM=10 EDGE_PAGER_CARD=7 pytest -m hw tests/pager/test_hw.py`; watch the card ring."""

import os

import pytest

from edge.pager.driver import PagerDriver, make_transmitter, open_transport

pytestmark = pytest.mark.hw


@pytest.fixture
def bench_transmitter():
    driver, port = os.environ.get("EDGE_PAGER_DRIVER"), os.environ.get("EDGE_PAGER_PORT")
    if not driver or not port:
        pytest.skip("set EDGE_PAGER_DRIVER and EDGE_PAGER_PORT to test a real transmitter")
    if not port.startswith(("socket:", "rfc2217:")) and not os.path.exists(port):
        pytest.skip(f"{port} is not attached")
    codec = make_transmitter(driver, system=int(os.environ.get("EDGE_PAGER_SYSTEM", "0")))
    transport = open_transport(port, baud=int(os.environ.get("EDGE_PAGER_BAUD", codec.baud)),
                               rtscts=os.environ.get("EDGE_PAGER_CTS") == "1")
    yield PagerDriver(transport, codec, cts_flow=os.environ.get("EDGE_PAGER_CTS") == "1")
    transport.close()


def test_real_transmitter_takes_a_page(bench_transmitter):
    card = int(os.environ.get("EDGE_PAGER_CARD", "1"))
    result = bench_transmitter.page(card)
    assert result.attempts <= bench_transmitter.retries + 1
