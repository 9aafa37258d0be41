"""Staff login for the desk screens, over plain HTTP against the REAL pager service on its pty simulator:
anonymous staff actions change nothing, a staff PIN lets them through (audited with the staff id),
wrong PINs lock out, another site's page cannot use the cookie, and loopback stays as it was."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from edge.config import from_dict
from edge.errors import ConfigError
from edge.kiosk.config import KioskConfig
from edge.kiosk.staff import COOKIE, StaffAuth
from edge.locker.pins import hash_pin
from edge.service import ServiceContext
from edge.testing import FakeClock
from kiosk_harness import pager_and_kiosk

PINS = {"an": hash_pin("2468"), "binh": hash_pin("1357")}


@contextlib.asynccontextmanager
async def desk(store, tmp_path, clock=None, **kiosk):
    """A real pager (JTECH pty simulator, one citizen waiting) and the kiosk web app beside it."""
    async with pager_and_kiosk(store, tmp_path, clock, **kiosk) as (kiosk_svc, pager):
        await pager.issue("ho-tich")
        yield kiosk_svc, pager


def waiting(pager) -> int:
    return pager.view()["services"]["ho-tich"]["waiting"]


async def post(http, url, body=None, origin="same", token=None):
    headers = {}
    if origin == "same":
        headers["Origin"] = url.split("/api/")[0]
    elif origin:
        headers["Origin"] = origin
    cookies = {COOKIE: token} if token else None
    async with http.post(url, json=body or {}, headers=headers, cookies=cookies, allow_redirects=False) as r:
        return r.status, await r.json(content_type=None), r.cookies


async def login(http, url, staff, pin):
    status, body, cookies = await post(http, url + "/api/staff/login", {"staff": staff, "pin": pin})
    return status, body, cookies.get(COOKIE)


def audit(store):
    return [(r["actor"], r["action"]) for r in store.query("SELECT actor, action FROM audit ORDER BY id")]


def test_anonymous_staff_actions_are_refused_and_the_queue_does_not_move(store, tmp_path):
    async def go():
        async with desk(store, tmp_path, require_staff_login=True, staff_pins=PINS) as (kiosk, pager), \
                aiohttp.ClientSession() as http:
            url = kiosk.url
            for action, body in (("call_next", {"counter": "1"}), ("pause", {"counter": "1", "paused": True})):
                status, answer, _ = await post(http, f"{url}/api/pager/{action}", body)
                assert status == 401 and answer == {"ok": False, "error": "staff.login_required", "login": True}
            status, _, _ = await post(http, url + "/api/reception/issue", {"service": "ho-tich", "priority": "elderly"})
            assert status == 401
            status, _, _ = await post(http, url + "/api/loading", {"staff_pin": "9999", "receipt": "X"})
            assert status == 401
            async with http.get(url + "/api/status") as r:
                assert r.status == 401
            async with http.get(url + "/counter?c=1", allow_redirects=False) as r:
                where = urlsplit(r.headers["Location"])
                assert r.status == 303 and where.path == "/login" and parse_qs(where.query)["next"] == ["/counter?c=1"]
            assert waiting(pager) == 1 and pager.view()["counters"]["1"].get("ticket") is None
            # the citizen screens and the wall display stay open
            for path in ("/kiosk", "/display", "/login", "/api/pager", "/api/kiosk"):
                async with http.get(url + path) as r:
                    assert r.status == 200, path
            async with http.get(url + "/login") as r:
                assert "Đăng nhập cán bộ" in await r.text()
    asyncio.run(go())


def test_a_staff_login_lets_the_action_through_and_the_audit_names_the_staff(store, tmp_path):
    async def go():
        async with desk(store, tmp_path, require_staff_login=True, staff_pins=PINS) as (kiosk, pager), \
                aiohttp.ClientSession() as http:
            url = kiosk.url
            status, body, cookie = await login(http, url, "an", "2468")
            assert status == 200 and body == {"ok": True, "staff": "an"}
            assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
            token = cookie.value
            status, answer, _ = await post(http, url + "/api/pager/call_next", {"counter": "1"}, token=token)
            assert status == 200 and answer["result"]["ticket"] == "A001"
            assert waiting(pager) == 0
            async with http.get(url + "/api/staff/me", cookies={COOKIE: token}) as r:
                assert (await r.json())["staff"] == "an"
            assert ("staff:an", "staff.login") in audit(store)
            assert ("staff:an", "counter.call_next") in audit(store)
            # after logout the same cookie is worth nothing
            status, _, _ = await post(http, url + "/api/staff/logout", token=token)
            assert status == 200 and ("staff:an", "staff.logout") in audit(store)
            status, _, _ = await post(http, url + "/api/pager/recall", {"counter": "1"}, token=token)
            assert status == 401
    asyncio.run(go())


def test_wrong_pins_lock_the_staff_id_out_even_for_the_right_pin_until_the_lockout_ends(store, tmp_path):
    clock = FakeClock()

    async def go():
        async with desk(store, tmp_path, clock=clock, require_staff_login=True, staff_pins=PINS,
                        staff_attempts=3, staff_lockout_s=600) as (kiosk, pager), aiohttp.ClientSession() as http:
            url = kiosk.url
            answers = [(await login(http, url, "an", pin))[:2] for pin in ("0000", "1111", "2222")]
            assert [s for s, _ in answers] == [401, 401, 429]
            assert answers[0][1]["error"] == "staff.wrong" and answers[2][1] == {"ok": False, "error": "staff.locked",
                                                                                  "minutes": 10}
            status, body, cookie = await login(http, url, "an", "2468")  # the right PIN, while locked
            assert status == 429 and cookie is None
            status, _, _ = await post(http, url + "/api/pager/call_next", {"counter": "1"})
            assert status == 401 and waiting(pager) == 1
            refused = [a for a in audit(store) if a[1] == "staff.login_refused"]
            assert len(refused) == 4
            clock.now += 601
            status, _, cookie = await login(http, url, "an", "2468")
            assert status == 200 and cookie is not None
    asyncio.run(go())


def test_another_origin_cannot_use_the_staff_cookie(store, tmp_path):
    async def go():
        async with desk(store, tmp_path, require_staff_login=True, staff_pins=PINS) as (kiosk, pager), \
                aiohttp.ClientSession() as http:
            url = kiosk.url
            _, _, cookie = await login(http, url, "binh", "1357")
            for origin in ("http://evil.example", "null", None):
                status, answer, _ = await post(http, url + "/api/pager/call_next", {"counter": "1"},
                                               origin=origin, token=cookie.value)
                assert status == 403 and answer["error"] == "staff.bad_origin", origin
            status, _, _ = await post(http, url + "/api/staff/login", {"staff": "binh", "pin": "1357"},
                                      origin="http://evil.example")
            assert status == 403
            assert waiting(pager) == 1
    asyncio.run(go())


def test_loopback_default_is_unchanged(store, tmp_path):
    async def go():
        async with desk(store, tmp_path) as (kiosk, pager), aiohttp.ClientSession() as http:
            assert not kiosk.staff.required
            status, answer, _ = await post(http, kiosk.url + "/api/pager/call_next", {"counter": "1"}, origin=None)
            assert status == 200 and answer["result"]["ticket"] == "A001"
            async with http.get(kiosk.url + "/counter?c=1", allow_redirects=False) as r:
                assert r.status == 200
            assert ("kiosk", "counter.call_next") in audit(store)
    asyncio.run(go())


def test_a_lan_address_needs_staff_pins_and_then_a_login(store, tmp_path):
    base = {"site": "s", "device": "d", "role": "desk"}
    with pytest.raises(ConfigError) as err:
        from_dict({**base, "kiosk": {"host": "0.0.0.0"}})
    assert "kiosk.staff_pins" in str(err.value) and "not loopback" in str(err.value)
    with pytest.raises(ConfigError, match="kiosk.staff_pins"):
        from_dict({**base, "kiosk": {"require_staff_login": True}})
    with pytest.raises(ConfigError, match="not plain text"):
        from_dict({**base, "kiosk": {"host": "192.168.1.20", "staff_pins": {"an": "2468"}}})
    for host, required in (("127.0.0.1", False), ("::1", False), ("[::1]", False), ("localhost", False),
                           ("0.0.0.0", True), ("192.168.1.20", True), ("kiosk.local", True)):
        assert replace(KioskConfig(), host=host, staff_pins=PINS).staff_login is required, host

    async def go():
        from edge.kiosk.service import KioskService
        ctx = ServiceContext(name="kiosk", site="t", device="d", store=store, data_dir=tmp_path, peers={},
                             config=replace(KioskConfig(), host="0.0.0.0", port=0))
        with pytest.raises(ConfigError):  # a config built in code is refused too
            await KioskService(ctx).start()
        async with desk(store, tmp_path, host="0.0.0.0", staff_pins=PINS) as (kiosk, pager), \
                aiohttp.ClientSession() as http:
            port = kiosk.runner.addresses[0][1]
            url = f"http://127.0.0.1:{port}"
            status, _, _ = await post(http, url + "/api/pager/call_next", {"counter": "1"})
            assert status == 401 and waiting(pager) == 1
    asyncio.run(go())


def test_sessions_expire_on_the_server_and_unknown_ids_cost_a_pin_check():
    clock = FakeClock()
    auth = StaffAuth(PINS, required=True, session_s=3600, attempts=2, lockout_s=60, clock=clock)
    session = auth.login("an", "2468", "10.0.0.5")
    assert auth.session(session.token).staff == "an"
    clock.now += 3601
    assert auth.session(session.token) is None
    # unknown staff ids lock out the computer that tries them
    for _ in range(2):
        with pytest.raises(Exception):
            auth.login("nobody", "2468", "10.0.0.9")
    assert auth.locked_for("an", "10.0.0.9") > 0 and auth.locked_for("an", "10.0.0.5") == 0
