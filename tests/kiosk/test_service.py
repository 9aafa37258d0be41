"""KioskService without a browser: start/stop pairing, the gpiozero button, the strings the pages use."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.kiosk import i18n
from edge.kiosk.config import KioskConfig
from edge.kiosk.service import KioskService
from edge.kiosk.web import STATIC_DIR, cpu_temperature
from edge.service import ServiceContext
from kiosk_fakes import FakeLocker
from edge.testing import FakeClock, until

CODE = "000.00.01.H29-240115-0001"


def make(store, tmp_path, **cfg):
    peers = {"locker": FakeLocker({CODE: {"status": "waiting", "compartment": 5, "pin": "1234"}})}
    ctx = ServiceContext(name="kiosk", site="s1", device="kiosk-01", store=store, config=replace(KioskConfig(), **cfg),
                         data_dir=tmp_path, peers=peers)
    return KioskService(ctx)


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read().decode()


def test_start_stop_releases_the_port_and_a_taken_port_is_a_clear_error(store, tmp_path):
    async def go():
        # The first service takes a port the system picks (a port from free_port() could be taken
        # by the other xdist worker before this bound it); the rest of the test uses that one.
        first = make(store, tmp_path, port=0)
        await first.start()
        port = first.runner.addresses[0][1]
        status, body = await asyncio.to_thread(get, first.url + "/kiosk")
        assert status == 200 and "Nhận kết quả" in body
        clash = make(store, tmp_path, port=port)
        with pytest.raises(OSError):
            await clash.start()  # outside the demo, a taken port is an error, never another port
        assert clash.runner is None and clash.health() == "down"
        await first.stop()
        again = make(store, tmp_path, port=port)
        await again.start()  # the port was released by stop()
        assert again.url.endswith(f":{port}")
        await again.stop()
    asyncio.run(go())


def test_the_get_result_button_starts_a_session(store, tmp_path):
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()

    clock = FakeClock()

    async def go():
        svc = make(store, tmp_path, port=0, button_pin="GPIO26", button_bounce_s=0.0)
        svc.ctx.pin_factory, svc.ctx.clock = factory, clock
        await svc.start()
        try:
            pin = factory.pin(26)
            pin.drive_low()  # pressed (the button pulls the pin to ground)
            await until(lambda: svc.flow.view()["step"] == "code", what="the session the button started")
            view = svc.flow.view()
            assert view["step"] == "code" and svc.button.presses == 1
            pin.drive_high()
            clock.advance(5)
            pin.drive_low()  # pressed again: still the same session, touched now
            await until(lambda: svc.flow.session.touched == clock.now, what="the second press handled")
            assert svc.flow.view()["session"] == view["session"] and svc.button.presses == 2
            actions = [r["detail"] for r in store.query("SELECT detail FROM audit WHERE action = 'session.start'")]
            assert actions and '"source":"button"' in actions[0]
            pin.drive_high()  # released (gpiozero's close waits out its 1 s hold time on a held button)
        finally:
            await svc.stop()
        assert svc.button is None
    asyncio.run(go())


def test_kiosk_config_is_checked_with_key_paths():
    from edge.config import from_dict
    with pytest.raises(ConfigError) as err:
        from_dict({"site": "s1", "device": "kiosk-01", "role": "kiosk",
                   "kiosk": {"port": 70000, "pin_atempts": 2, "language": "fr"}})
    text = str(err.value)
    assert "kiosk.port" in text and "kiosk.pin_atempts" in text and "pin_attempts" in text and "kiosk.language" in text


def test_every_string_the_pages_use_exists_in_both_languages():
    used = set()
    for path in Path(STATIC_DIR).iterdir():
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'data-tp?="([a-z_]+\.[a-z_]+)"', text))
        used |= set(re.findall(r'Edge\.t\("([a-z_]+\.[a-z_]+)"', text))
    missing = sorted(k for k in used if k not in i18n.STRINGS)
    assert not missing, missing
    for key, (vi, en) in i18n.STRINGS.items():
        assert vi and en, key
        assert set(re.findall(r"{(\w+)}", vi)) == set(re.findall(r"{(\w+)}", en)), key
    assert i18n.t("kiosk.open_title", "vi", compartment=7) == "Ngăn số 7 đang mở"
    assert i18n.t("kiosk.open_title", "en", compartment=7) == "Compartment 7 is open"
    assert i18n.t("no.such.key", "en") == "no.such.key"


def test_cpu_temperature_reads_the_hottest_zone(tmp_path):
    for n, milli in enumerate(["41000\n", "52500\n", "garbage\n"]):
        (tmp_path / f"thermal_zone{n}").mkdir()
        (tmp_path / f"thermal_zone{n}" / "temp").write_text(milli)
    assert cpu_temperature(str(tmp_path / "thermal_zone*" / "temp")) == 52.5
    assert cpu_temperature(str(tmp_path / "nothing*" / "temp")) is None
