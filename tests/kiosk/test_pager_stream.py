"""The pager stream of the wall display, counter panel and reception (`/api/pager/events`) over
plain HTTP against the REAL pager service on its pty simulator: it hears the pager's commits on the
device's bus (edge.events), so each change arrives as it commits, recalls with their outbox row,
a keepalive when nothing happens, and the stream ends when the kiosk stops."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from kiosk_harness import pager_and_kiosk


desk = pager_and_kiosk  # a real pager (JTECH pty simulator) and the kiosk web app, one store


async def next_item(resp, timeout_s: float = 10.0):
    """The next server-sent item: the JSON of a `data:` line, or "keepalive"; None at the end."""
    async def read():
        while True:
            line = await resp.content.readline()
            if not line:
                return None
            text = line.decode().strip()
            if text.startswith("data: "):
                return json.loads(text[len("data: "):])
            if text == ": keepalive":
                return "keepalive"
    return await asyncio.wait_for(read(), timeout_s)


def test_each_pager_commit_reaches_the_stream_with_recalls_by_their_outbox_row(store, tmp_path):
    async def scenario():
        async with desk(store, tmp_path) as (kiosk, pager), aiohttp.ClientSession() as http:
            async with http.get(kiosk.url + "/api/pager/events") as resp:
                first = await next_item(resp)
                await pager.issue("ho-tich")
                issued = await next_item(resp)
                await pager.action("call_next", {"counter": "1"})
                called = await next_item(resp)
                await pager.action("recall", {"counter": "1"})
                recalled = await next_item(resp)
                await pager.action("recall", {"counter": "1"})  # the same ticket again: a new call on the wall
                again = await next_item(resp)
        return first, issued, called, recalled, again

    first, issued, called, recalled, again = asyncio.run(scenario())
    assert first["services"]["ho-tich"]["waiting"] == 0 and "recalled" not in first
    assert issued["services"]["ho-tich"]["waiting"] == 1
    assert called["counters"]["1"]["ticket"] == "A001" and "recalled" not in called
    rows = [r["row_id"] for r in store.query("SELECT row_id, payload FROM outbox WHERE topic = 'pager/event' "
                                             "ORDER BY row_id") if json.loads(r["payload"])["type"] == "ticket_recalled"]
    assert recalled["recalled"] == {"ticket": "A001", "counter": "1", "id": rows[0]}
    assert again["recalled"] == {"ticket": "A001", "counter": "1", "id": rows[1]}


def test_a_quiet_pager_gets_keepalives_and_the_stream_ends_when_the_kiosk_stops(store, tmp_path, monkeypatch):
    from edge.kiosk.web import display
    monkeypatch.setattr(display, "SSE_KEEPALIVE_S", 0.05)

    async def scenario():
        async with aiohttp.ClientSession() as http:
            async with desk(store, tmp_path) as (kiosk, pager):
                resp = await http.get(kiosk.url + "/api/pager/events")
                items = [await next_item(resp), await next_item(resp), await next_item(resp)]
            items.append(await next_item(resp))  # the kiosk stopped: the stream ends, no wait for a timeout
            resp.release()
        return items

    view, *quiet, end = asyncio.run(scenario())
    assert "services" in view
    assert quiet == ["keepalive", "keepalive"]  # the unchanged view is not sent again
    assert end is None
