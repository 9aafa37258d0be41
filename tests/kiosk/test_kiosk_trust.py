"""The kiosk on the LAN trusts nobody it should not: staff lockouts survive a restart, the staff
cookie is `Secure` behind TLS, and the citizen's live pickup session (its id cancels the session
or types PINs into it; the camera shows the citizen) is served to the kiosk's own screen only."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from edge.kiosk.staff import LoginRefused, StaffAuth
from edge.store import Store

from edge.testing import FakeClock
from test_staff_login import PINS, desk, login


def lan_address() -> str | None:
    """An address of this machine other machines could use (None when it has none)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))          # no packet is sent: this only picks the route
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_a_lockout_survives_a_restart_of_the_kiosk(tmp_path):
    clock = FakeClock()
    store = Store(tmp_path / "edge.db")
    auth = StaffAuth(PINS, required=True, session_s=3600, attempts=2, lockout_s=600, clock=clock, store=store)
    for _ in range(2):
        with pytest.raises(LoginRefused):
            auth.login("an", "0000", "10.0.0.5")
    store.close()
    store = Store(tmp_path / "edge.db")            # the kiosk restarted (or was made to crash)
    again = StaffAuth(PINS, required=True, session_s=3600, attempts=2, lockout_s=600, clock=clock, store=store)
    assert again.locked_for("an", "10.0.0.7") > 590
    with pytest.raises(LoginRefused, match="locked out"):
        again.login("an", "2468", "10.0.0.7")     # even the right PIN, from another computer
    clock.now += 601
    assert again.login("an", "2468", "10.0.0.7").staff == "an"
    assert store.query("SELECT count(*) FROM kiosk_staff_failures WHERE key = 'staff:an'")[0][0] == 0


def test_the_staff_cookie_is_secure_behind_a_tls_proxy(store, tmp_path):
    async def go():
        async with desk(store, tmp_path, require_staff_login=True, staff_pins=PINS) as (kiosk, _), \
                aiohttp.ClientSession() as http:
            url = kiosk.url
            _, _, plain = await login(http, url, "an", "2468")
            assert not plain["secure"]                           # plain HTTP on the Pi: no Secure
            headers = {"Origin": url, "X-Forwarded-Proto": "https"}
            async with http.post(url + "/api/staff/login", json={"staff": "an", "pin": "2468"}, headers=headers) as r:
                assert r.status == 200 and r.cookies["edge_staff"]["secure"]
    asyncio.run(go())


def test_the_pickup_session_is_the_kiosk_screens_only(store, tmp_path):
    async def go():
        async with desk(store, tmp_path, host="0.0.0.0", staff_pins=PINS) as (kiosk, _), \
                aiohttp.ClientSession() as http:
            port = kiosk.runner.addresses[0][1]
            local = f"http://127.0.0.1:{port}"
            async with http.post(local + "/api/kiosk/start", json={}) as r:
                assert r.status == 200 and (await r.json())["session"]
            # Relayed by a proxy on the Pi: another machine, whatever the socket says.
            relayed = {"X-Forwarded-For": "192.168.1.50"}
            for method, path in (("GET", "/api/kiosk"), ("GET", "/api/kiosk/events"), ("POST", "/api/kiosk/cancel"),
                                 ("POST", "/api/kiosk/pin"), ("GET", "/api/kiosk/camera.jpg")):
                async with http.request(method, local + path, json={} if method == "POST" else None,
                                        headers=relayed) as r:
                    assert r.status == 403 and (await r.json())["error"] == "kiosk.screen_only", path
            address = lan_address()
            if address is not None:                            # straight from the LAN
                async with http.get(f"http://{address}:{port}/api/kiosk") as r:
                    assert r.status == 403
                async with http.post(f"http://{address}:{port}/api/kiosk/cancel", json={}) as r:
                    assert r.status == 403
            async with http.get(local + "/api/kiosk") as r:   # the screen still has its session
                assert r.status == 200 and (await r.json())["session"]
    asyncio.run(go())
