"""Direct OOK on a GPIO through pigpio waves, against a fake pigpio that decodes what it is given."""

import asyncio
from collections import namedtuple

import pytest

from edge.errors import DeviceNotReady
from edge.pager import ook
from edge.pager.config import CounterDef, PagerConfig, ServiceDef
from edge.pager.ook_pigpio import PigpioOokTransmitter, parse_port
from edge.pager.protocol import FrameError
from edge.pager.service import PagerService
from edge.service import ServiceContext
from edge.store import Store
from edge.testing import office_clock, until

Pulse = namedtuple("Pulse", "on off us")


class FakePi:
    """Stands in for pigpio.pi(): keeps the GPIO levels and the chained waves it was asked to send."""

    def __init__(self, protocol="retekess-t119"):
        self.protocol = protocol
        self.modes, self.levels, self.sent = {}, {}, []
        self._waves, self._pending, self.busy_polls = {}, [], 0

    def set_mode(self, gpio, mode):
        self.modes[gpio] = mode

    def write(self, gpio, level):
        self.levels[gpio] = level

    def wave_clear(self):
        self._waves, self._pending = {}, []

    def wave_add_generic(self, pulses):
        self._pending += pulses

    def wave_create(self):
        wid = len(self._waves)
        self._waves[wid], self._pending = self._pending, []
        return wid

    def wave_chain(self, chain):
        assert chain[:2] == [255, 0] and chain[3:5] == [255, 1]
        wave, repeats = self._waves[chain[2]], chain[5] + 256 * chain[6]
        durations = [p.us for p in wave]
        for i, p in enumerate(wave):  # high, low, high, low … on the one pin
            assert (p.on != 0) == (i % 2 == 0) and (p.off != 0) == (i % 2 == 1)
        self.sent.append((ook.decode(self.protocol, durations), repeats))
        self.busy_polls = 2

    def wave_tx_busy(self):
        self.busy_polls -= 1
        return self.busy_polls > 0

    def wave_tx_stop(self):
        pass

    def wave_delete(self, wid):
        del self._waves[wid]

    def stop(self):
        pass


@pytest.mark.parametrize("protocol", sorted(ook.REPEATS))
def test_wave_carries_the_exact_key_with_its_repeats(protocol):
    pi = FakePi(protocol)
    tx = PigpioOokTransmitter(pi, 17, protocol=protocol, system=123, pulse=Pulse, sleep=lambda s: None)
    tx.page(45)
    assert pi.sent == [((123, 45), ook.REPEATS[protocol])]
    assert pi.levels[17] == 0  # carrier off after the page
    with pytest.raises(FrameError):
        tx.page(999)


def test_bad_ports():
    assert parse_port("pigpio:17") == 17
    for port in ("pigpio:1", "pigpio:x", "pigpio:40"):
        with pytest.raises(DeviceNotReady):
            parse_port(port)


def test_service_pages_through_pigpio(tmp_path):
    pi = FakePi()
    store = Store(tmp_path / "edge.db")
    config = PagerConfig(driver="ook", port="pigpio:17", system_id=1234, services={"a": ServiceDef(prefix="A")},
                         counters={"1": CounterDef(services=["a"])})
    service = PagerService(ServiceContext(name="pager", site="s", device="d", store=store, config=config,
                                          data_dir=tmp_path, clock=office_clock()))  # no queue-day change
    service.link.open_pi = lambda: (pi, Pulse)

    async def scenario():
        await service.start()
        task = asyncio.create_task(service.run())
        try:
            await service.issue("a")
            await service.call_next("1")
            await until(lambda: pi.sent, what="the wave sent through pigpio")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await service.stop()

    asyncio.run(scenario())
    assert pi.sent == [((1234, 1), 10)]
    store.close()
