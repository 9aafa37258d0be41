"""A cookie-keeping HTTP client for the dashboard tests: signs in through the login form as a
browser does (CSRF cookie + hidden field), then posts forms with the session's CSRF token."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request

from edge.central.auth import hash_pin

TEST_ITERATIONS = 1000   # PIN hashes in tests: the real default (200,000) only costs time here


def login_line(staff_id: str, pin: str, role: str, name: str, sites: str = "") -> str:
    sites_field = f" sites={sites}" if sites else ""
    return f"login {staff_id} {hash_pin(pin, iterations=TEST_ITERATIONS)} {role}{sites_field} {name}\n"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class WebClient:
    def __init__(self, base_url: str, *, follow: bool = True, headers: dict | None = None):
        self.base = base_url
        self.jar = http.cookiejar.CookieJar()
        handlers = [urllib.request.HTTPCookieProcessor(self.jar)]
        if not follow:
            handlers.append(NoRedirect())
        self.opener = urllib.request.build_opener(*handlers)
        self.headers = headers or {}

    def request(self, path: str, data: dict | None = None, *, headers: dict | None = None,
                json_body=None) -> tuple[int, dict, str]:
        """(status, headers, body text) for GET, or POST when data/json_body is given."""
        body, extra = None, {}
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
        if json_body is not None:
            body, extra = json.dumps(json_body).encode(), {"Content-Type": "application/json"}
        req = urllib.request.Request(self.base + path, data=body, headers={**self.headers, **extra, **(headers or {})})
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read().decode()

    def get(self, path: str, **kw):
        return self.request(path, **kw)

    def post(self, path: str, data: dict, **kw):
        return self.request(path, data, **kw)

    def login(self, staff_id: str, pin: str, *, next_path: str = "/") -> tuple[int, str]:
        _, _, page = self.get("/login?" + urllib.parse.urlencode({"next": next_path}))
        status, _, body = self.post("/login", {"csrf": hidden(page, "csrf"), "next": next_path,
                                               "staff_id": staff_id, "pin": pin})
        return status, body

    def csrf(self, path: str = "/commands") -> str:
        _, _, page = self.get(path)
        return hidden(page, "csrf")

    def cookie(self, name: str):
        return next((c for c in self.jar if c.name == name), None)


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name!r} in the page"
    return match.group(1)
