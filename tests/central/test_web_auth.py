"""Who may see and do what on the office dashboard (issue 16): logins, lockout in PostgreSQL,
CSRF, cookies, roles, site limits, dossier codes, the second confirmation of door commands."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import psycopg
import pytest

from edge.central.auth import MAX_FAILURES, parse_staff
from edge.errors import ConfigError
from edge.locker.commands import DOOR_COMMANDS

from .conftest import ADMIN_TOKEN, wait_until
from .webclient import WebClient, hidden, login_line

VIEWER, OPERATOR, HANOI_OP = "tok-viewer-0123456789abc", "tok-operator-0123456789ab", "tok-hanoi-op-0123456789ab"
PAGES = ("/", "/queues", "/lockers", "/events", "/commands")
READ_APIS = ("/api/devices", "/api/events?site=hanoi-bd&device=kiosk-1", "/api/gaps?site=hanoi-bd&device=kiosk-1",
             "/api/alarms", "/api/queues", "/api/queues/hours", "/api/queues/days", "/api/lockers")


def staff_text() -> str:
    return (f"{ADMIN_TOKEN} admin Test Admin\n{VIEWER} viewer Tran Thi Xem\n{OPERATOR} operator Le Van Van Hanh\n"
            f"{HANOI_OP} operator sites=hanoi-bd Pham Ha Noi\n"
            + login_line("lan", "482913", "operator", "Nguyen Thi Lan")
            + login_line("binh", "771204", "viewer", "Do Van Binh"))


@pytest.fixture
def office(central_app, devices, tmp_path):
    """Central with a Hanoi kiosk (a result loaded: a dossier code in its events) and a Hue desk."""
    staff = tmp_path / "office-staff.txt"
    staff.write_text(staff_text())
    c = central_app(staff_file=str(staff))
    kiosk, desk = devices("hanoi-bd", "kiosk-1"), devices("hue-tt", "desk-1")
    kiosk.event("locker", "loaded", receipt="HS-2026-000123", compartment=4, deadline=2e9)
    desk.event("pager", "ticket_issued", ticket="A001", queue="general")
    wait_until(lambda: c.app.consumer.stats()["stored"] == 2, what="2 events stored")
    return c


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_every_page_and_read_api_needs_a_login(office):
    anonymous = WebClient(office.url, follow=False)
    for path in PAGES:
        status, headers, _ = anonymous.get(path)
        assert status == 302 and headers["Location"].startswith("/login?next="), path
    for path in READ_APIS:
        status, headers, body = anonymous.get(path)
        assert status == 401 and "login" in json.loads(body)["error"], path
    assert anonymous.get("/api/devices", headers=bearer("not-a-token-but-long-enough"))[0] == 401
    status, _, body = anonymous.get("/api/health")
    assert status == 200 and set(json.loads(body)) == {"ok", "db", "broker"}      # open, but no data
    assert anonymous.get("/login")[0] == 200
    assert "ingest" in office.get("/api/health")                                # staff see the counters


def test_login_with_a_pin_then_logout(office):
    browser = WebClient(office.url)
    status, page = browser.login("lan", "482913", next_path="/lockers")
    assert status == 200 and "Nguyen Thi Lan" in page and "<h1>Tủ trả kết quả</h1>" in page   # on /lockers
    session = browser.cookie("edge_session")
    assert session is not None and session.has_nonstandard_attr("HttpOnly") and not session.secure
    assert session.value not in page and ADMIN_TOKEN not in page
    for path in PAGES:
        assert browser.get(path)[0] == 200, path
    assert browser.post("/logout", {"csrf": "forged"})[0] == 403               # logout needs CSRF too
    status, _, page = browser.post("/logout", {"csrf": browser.csrf("/")})
    assert status == 200 and 'name="staff_id"' in page
    assert WebClient(office.url, follow=False).get("/", headers={"Cookie": f"edge_session={session.value}"})[0] == 302


def test_wrong_pin_locks_the_staff_id_in_postgresql_across_a_restart(office, central_app, pg):
    browser = WebClient(office.url)
    for attempt in range(1, MAX_FAILURES):
        status, page = browser.login("lan", "000000")
        assert status == 401 and "không đúng" in page, attempt
    status, page = browser.login("lan", "000000")
    assert status == 429 and "tạm khoá" in page
    assert browser.login("lan", "482913")[0] == 429            # the right PIN is refused while locked
    with psycopg.connect(pg.dsn) as conn:
        [(locked,)] = conn.execute("SELECT locked_until > now() FROM staff_lockout WHERE staff_id = 'lan'").fetchall()
    assert locked
    restarted = central_app(staff_file=office.app.config.staff_file, instance="central-web-2")
    assert WebClient(restarted.url).login("lan", "482913")[0] == 429
    assert WebClient(restarted.url).login("binh", "771204")[0] == 200    # others are not locked


def test_login_form_needs_its_own_csrf_cookie(office):
    forged = WebClient(office.url)          # a form posted from another site: no cookie from this one
    status, _, page = forged.post("/login", {"csrf": "guess", "staff_id": "lan", "pin": "482913", "next": "/"})
    assert status == 403 and forged.cookie("edge_session") is None


def test_login_redirects_only_to_this_server(office):
    for target, expected in (("https://evil.example/", "/"), ("//evil.example", "/"), ("/\t/evil.example", "/"),
                             ("/\\evil.example", "/"), ("/events?site=hanoi-bd", "/events?site=hanoi-bd")):
        browser = WebClient(office.url, follow=False)          # a login ends its form's CSRF cookie
        _, _, page = browser.get("/login")
        status, headers, _ = browser.post("/login", {"csrf": hidden(page, "csrf"), "next": target,
                                                      "staff_id": "lan", "pin": "482913"})
        assert status == 303 and headers["Location"] == expected, target


def test_cookies_are_secure_behind_a_tls_proxy(office):
    proxied = WebClient(office.url, follow=False, headers={"X-Forwarded-Proto": "https"})
    _, headers, page = proxied.get("/login")
    [login_cookie] = headers.get_all("Set-Cookie")
    assert "Secure" in login_cookie and "HttpOnly" in login_cookie
    token = hidden(page, "csrf")
    status, headers, _ = proxied.post("/login", {"csrf": token, "staff_id": "binh", "pin": "771204", "next": "/"},
                                      headers={"Cookie": f"edge_login_csrf={token}"})
    [session] = [c for c in headers.get_all("Set-Cookie") if c.startswith("edge_session=")]
    assert status == 303 and "Secure" in session and "HttpOnly" in session and "SameSite=Strict" in session


def test_pages_send_a_content_security_policy(office):
    _, headers, _ = WebClient(office.url, headers=bearer(ADMIN_TOKEN)).get("/")
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Content-Type-Options"] == "nosniff"


def test_dossier_codes_only_for_roles_that_hand_results_over(office):
    path = "/api/events?site=hanoi-bd&device=kiosk-1"
    [seen_by_operator] = office.get(path, headers=bearer(OPERATOR))
    [seen_by_viewer] = office.get(path, headers=bearer(VIEWER))
    assert seen_by_operator["receipt"] == "HS-2026-000123"
    assert seen_by_viewer["receipt"] == "•••23" and seen_by_viewer["compartment"] == 4
    viewer = WebClient(office.url)
    viewer.login("binh", "771204")
    _, _, page = viewer.get("/events?site=hanoi-bd")
    assert "HS-2026-000123" not in page and "•••23" in page
    _, _, csv_text = viewer.get("/api/events?site=hanoi-bd&device=kiosk-1&format=csv")
    assert "HS-2026-000123" not in csv_text


def test_a_staff_member_limited_to_a_site_sees_and_commands_only_that_site(office):
    limited = bearer(HANOI_OP)
    assert {d["site"] for d in office.get("/api/devices", headers=limited)} == {"hanoi-bd"}
    assert {d["site"] for d in office.get("/api/devices")} == {"hanoi-bd", "hue-tt"}
    client = WebClient(office.url, headers=limited)
    assert client.get("/api/events?site=hue-tt&device=desk-1")[0] == 403
    _, _, events_page = client.get("/events")
    assert "hue-tt" not in events_page and "hanoi-bd" in events_page
    body = {"site": "hue-tt", "device": "kiosk-1", "service": "locker", "type": "open", "args": {"compartment": 1}}
    status, reply = office.post("/api/cmd", body, limited)
    assert status == 403 and reply["code"] == "not_your_site"
    assert office.post("/api/cmd", {**body, "site": "hanoi-bd"}, limited)[0] == 202   # its own site: confirm step


def test_viewers_cannot_command(office):
    body = {"site": "hanoi-bd", "device": "kiosk-1", "service": "locker", "type": "status"}
    status, reply = office.post("/api/cmd", body, bearer(VIEWER))
    assert status == 403 and reply["code"] == "need_operator"
    viewer = WebClient(office.url)
    viewer.login("binh", "771204")
    _, _, page = viewer.get("/commands")
    assert 'name="type"' not in page and "Chỉ nhân viên vận hành" in page


@pytest.mark.parametrize("cmd_type", sorted(DOOR_COMMANDS))
def test_every_door_moving_command_needs_a_second_confirmation(office, cmd_type):
    body = {"site": "hanoi-bd", "device": "kiosk-1", "service": "locker", "type": cmd_type, "args": {}}
    status, first = office.post("/api/cmd", body, bearer(OPERATOR))
    assert status == 202 and first["confirm"] and cmd_type in first["message"]
    # Another operator cannot confirm it, and the confirmation works once.
    assert office.post("/api/cmd", {"confirm": first["confirm"]}, bearer(ADMIN_TOKEN))[0] == 409


def test_a_session_posting_json_needs_the_csrf_header(office):
    browser = WebClient(office.url)
    browser.login("lan", "482913")
    body = {"site": "hanoi-bd", "device": "kiosk-1", "service": "locker", "type": "open", "args": {"compartment": 4}}
    assert browser.request("/api/cmd", json_body=body)[0] == 403
    status, _, reply = browser.request("/api/cmd", json_body=body, headers={"X-CSRF-Token": browser.csrf("/")})
    assert status == 202 and "confirm" in json.loads(reply)


@pytest.mark.parametrize("line,message", [
    ("short viewer Ann", "token of 16+ characters"),
    ("a-token-long-enough-1234 boss Ann", "role 'boss' is not one of viewer, operator, admin"),
    ("a-token-long-enough-1234 viewer sites= Ann", "sites= names no site"),
    ("a-token-long-enough-1234 viewer", "missing NAME"),
    ("login lan plain-text-pin operator Lan", "PIN hash must be pbkdf2_sha256$"),
])
def test_a_bad_staff_file_line_is_named(line, message):
    with pytest.raises(ConfigError) as err:
        parse_staff(f"# staff\n{line}\n", "staff.txt")
    assert "staff.txt:2" in str(err.value) and message in str(err.value)


def test_the_old_staff_file_format_still_reads():
    staff = parse_staff("tok-operator-0123456789 operator Nguyen Van A\n")
    person = staff.by_token("tok-operator-0123456789")
    assert (person.role, person.name, person.sites) == ("operator", "Nguyen Van A", None)


def self_signed(directory) -> tuple[str, str]:
    """A throwaway certificate for 127.0.0.1 (PEM files)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "central.crt", directory / "central.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_over_tls_the_session_cookie_is_secure(central_app, tmp_path):
    import ssl
    import urllib.request

    cert, key = self_signed(tmp_path)
    staff = tmp_path / "tls-staff.txt"
    staff.write_text(staff_text())
    c = central_app(staff_file=str(staff), tls_cert=cert, tls_key=key)
    base = f"https://127.0.0.1:{c.app.port}"
    context = ssl.create_default_context(cafile=cert)
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), NoRedirectHandler())
    with opener.open(base + "/login", timeout=15) as reply:
        page = reply.read().decode()
        csrf_cookie = reply.headers["Set-Cookie"]
    token = hidden(page, "csrf")
    assert "Secure" in csrf_cookie
    form = urllib.parse.urlencode({"csrf": token, "staff_id": "binh", "pin": "771204", "next": "/"}).encode()
    request = urllib.request.Request(base + "/login", data=form, headers={"Cookie": f"edge_login_csrf={token}"})
    try:
        opener.open(request, timeout=15)
        raise AssertionError("expected a 303 after the login")
    except urllib.error.HTTPError as answer:
        assert answer.code == 303
        [session] = [h for h in answer.headers.get_all("Set-Cookie") if h.startswith("edge_session=")]
    assert "Secure" in session and "HttpOnly" in session and "SameSite=Strict" in session


class NoRedirectHandler(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_with_postgresql_down_pages_say_so_and_health_still_answers(office, pg):
    browser = WebClient(office.url)
    browser.login("lan", "482913")
    pg.stop()
    try:
        status, _, body = office_get(office, "/api/health")
        assert status == 200 and json.loads(body)["db"] is False
        status, _, body = browser.get("/")
        assert status == 503 and "Cơ sở dữ liệu tạm thời không trả lời" in body
        status, _, body = WebClient(office.url, headers=bearer(ADMIN_TOKEN)).get("/api/devices")
        assert status == 503 and "database unavailable" in json.loads(body)["error"]
    finally:
        pg.start()
    assert wait_until(lambda: browser.get("/")[0] == 200, what="the dashboard back with PostgreSQL")


def office_get(office, path: str):
    return WebClient(office.url).get(path)
