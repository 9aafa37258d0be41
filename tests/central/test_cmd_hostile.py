"""Hostile command bodies at the dashboard: a deeply nested `args` on the /commands form and a
deeply nested or infinite body on POST /api/cmd were a 500 (RecursionError escaped json.loads);
now the form says the arguments are not a JSON object and the API answers 400. Nothing is sent."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import pytest

from .conftest import AUTH

NESTED = "[" * 3000 + "]" * 3000


def post(url: str, data: bytes, content_type: str) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers={**AUTH, "Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=15) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.mark.parametrize("args", [NESTED, '{"compartment": ' + NESTED + "}", '{"compartment": 1e999}'])
def test_the_commands_form_refuses_hostile_args_on_the_page(central_app, args):
    office = central_app()
    form = {"site": "hn", "device": "kiosk-01", "service": "locker", "type": "status", "args": args}
    status, page = post(office.url + "/commands", urllib.parse.urlencode(form).encode(),
                        "application/x-www-form-urlencoded")
    assert status == 200 and "Tham số phải là JSON" in page
    assert office.get("/api/events?site=hn&device=kiosk-01") == []


@pytest.mark.parametrize("body", [NESTED, '{"site": "hn", "args": ' + NESTED + "}", '{"site": 1e999}'])
def test_api_cmd_answers_400_to_a_hostile_body(central_app, body):
    office = central_app()
    status, answer = post(office.url + "/api/cmd", body.encode(), "application/json")
    assert status == 400 and "JSON" in answer
