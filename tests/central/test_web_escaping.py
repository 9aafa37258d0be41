"""Script probes in every query parameter of every dashboard route, in form fields, and in what
devices publish: the HTML that comes back has them escaped (issue 16, item 1).

The routes are read from the running app's router, so a screen added later is probed too.
"""

from __future__ import annotations

import re
import urllib.parse

import pytest

from .conftest import AUTH, wait_until
from .webclient import WebClient, login_line

PROBES = (
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    '" autofocus onfocus="alert(1)',
    "</textarea></title><svg onload=alert(1)>",
    "javascript:alert(1)",
)
PARAMS = ("site", "device", "service", "type", "day", "limit", "lang", "next", "format", "full", "all", "args",
          "confirm", "from", "to", "q", "page")
UNSAFE_ATTRIBUTE = re.compile(r'(href|src|action|formaction)\s*=\s*["\']?\s*javascript:', re.I)


def assert_escaped(where: str, status: int, headers, body: str) -> None:
    assert status < 500, f"{where}: HTTP {status}"
    kind = headers.get("Content-Type", "")
    if kind.startswith("text/html"):
        for probe in PROBES:
            if any(ch in probe for ch in "<>\"'"):
                assert probe not in body, f"{where}: probe {probe!r} came back unescaped"
        assert not UNSAFE_ATTRIBUTE.search(body), f"{where}: a javascript: link"
    else:
        assert kind.startswith(("application/json", "text/csv", "text/plain")), f"{where}: served as {kind!r}"


def get_routes(app) -> list[str]:
    paths = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        if route.method == "GET" and "path" in info and not info["path"].startswith("/static"):
            paths.append(info["path"])
    return sorted(set(paths))


@pytest.fixture
def hostile(central_app, devices, tmp_path):
    """Central fed by a device whose events and snapshots carry script probes in every text."""
    staff = tmp_path / "staff-probe.txt"
    staff.write_text(f"{AUTH['Authorization'][7:]} admin Test Admin\n" + login_line("lan", "482913", "operator", PROBES[0]))
    c = central_app(staff_file=str(staff))
    desk, kiosk = devices("hanoi-bd", "desk-1"), devices("hanoi-bd", "kiosk-1")
    for probe in PROBES:
        desk.event("pager", "ticket_issued", ticket=probe, queue=probe, counter=probe)
        kiosk.event("locker", "alarm", receipt=probe, compartment=probe, error=probe, alarm=probe)
    desk.state("pager", {"services": {"general": {"name": PROBES[0], "name_en": PROBES[1], "waiting": 2,
                                                  "next": [PROBES[2]], "estimated_wait_s": 60}},
                         "counters": {PROBES[3]: {"paused": False, "ticket": PROBES[0], "service": "general"}},
                         "cards_out": 97, "cards_free": 2})
    kiosk.state("locker", {"compartments": {PROBES[0]: {"size": PROBES[1], "state": "occupied", "door": "open"}}})
    wait_until(lambda: c.app.consumer.stats()["stored"] == 2 * len(PROBES), what="probe events stored")
    wait_until(lambda: c.get("/api/lockers"), what="locker snapshot")
    # the desk's snapshot comes after its events on its own connection: wait for it too, or the
    # pages could be probed before its texts are there to escape
    wait_until(lambda: b'data-office="hanoi-bd/desk-1"' in c.get("/queues", raw=True)[1], what="pager snapshot")
    return c


def test_every_query_parameter_of_every_route_is_escaped(hostile):
    routes = get_routes(hostile.app.runner.app)
    assert {"/", "/queues", "/lockers", "/events", "/commands", "/login", "/api/events"} <= set(routes)
    client = WebClient(hostile.url, follow=False, headers=AUTH)
    sent = 0
    for path in routes:
        for probe in PROBES:
            every = urllib.parse.urlencode({name: probe for name in PARAMS})
            assert_escaped(f"{path}?<all>={probe}", *client.get(f"{path}?{every}"))
            sent += 1
            for name in PARAMS:
                query = urllib.parse.urlencode({name: probe, "site": "hanoi-bd", "device": "kiosk-1"}
                                               if name not in ("site", "device") else {name: probe})
                assert_escaped(f"{path}?{name}={probe}", *client.get(f"{path}?{query}"))
                sent += 1
    assert sent >= len(routes) * len(PROBES) * len(PARAMS)


def test_pages_show_what_devices_publish_escaped(hostile):
    client = WebClient(hostile.url, headers=AUTH)
    for path in ("/", "/queues", "/lockers", "/events", "/events?site=hanoi-bd&device=kiosk-1", "/commands"):
        status, headers, body = client.get(path)
        assert status == 200, path
        assert_escaped(path, status, headers, body)
    _, _, events = client.get("/events?site=hanoi-bd&device=kiosk-1")
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in events      # shown, as text


def test_form_fields_come_back_escaped(hostile):
    browser = WebClient(hostile.url)
    status, page = browser.login("lan", "482913")
    assert status == 200 and PROBES[0] not in page              # the staff name itself is a probe
    csrf = browser.csrf()
    for probe in PROBES:
        fields = {"csrf": csrf, "site": probe, "device": probe, "service": probe, "type": probe, "args": probe}
        assert_escaped(f"POST /commands {probe}", *browser.post("/commands", fields))
        assert_escaped(f"POST /commands confirm {probe}", *browser.post("/commands", {"csrf": csrf, "confirm": probe}))
    anonymous = WebClient(hostile.url)
    _, _, form = anonymous.get("/login")
    for probe in PROBES:
        from .webclient import hidden
        reply = anonymous.post("/login", {"csrf": hidden(form, "csrf"), "staff_id": probe, "pin": probe, "next": probe})
        assert_escaped(f"POST /login {probe}", *reply)
