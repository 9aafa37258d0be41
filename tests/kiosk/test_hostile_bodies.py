"""Bodies a hostile LAN client sends to the device's screen APIs: a deeply nested JSON array, an
infinite number. Each gets a 400 that says what was wrong (was a 500: the json module recursed
until RecursionError), and the queue does not move."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from test_staff_login import desk, waiting

NESTED = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize("body, says", [
    (NESTED, "nested"),
    ('{"counter": ' + NESTED + "}", "nested"),
    ('{"counter": 1e999}', "number"),
])
def test_a_hostile_json_body_is_a_clear_400_and_changes_nothing(store, tmp_path, body, says):
    async def go():
        async with desk(store, tmp_path) as (kiosk, pager), aiohttp.ClientSession() as http:
            before = waiting(pager)
            for path in ("/api/pager/call_next", "/api/reception/scan"):
                async with http.post(kiosk.url + path, data=body, headers={
                        "Content-Type": "application/json", "Origin": kiosk.url}) as r:
                    answer = await r.json(content_type=None)
                    assert r.status == 400, (path, r.status)
                    assert answer["ok"] is False and says in answer["error"], answer
            assert waiting(pager) == before
    asyncio.run(go())
