"""The pager's actions: what each one takes and which `PagerService` method runs it.

`SPEC` is the service's `commands` (edge.service): every route to an action (MQTT, the counter
screen's `POST /api/pager/{action}`, a GPIO counter panel) is checked against it by
`edge.service.check_command` before `HANDLERS` runs it, so a route can ask nothing the others
could not. One table each, with the same keys (tests/pager/test_commands.py checks that).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable

if TYPE_CHECKING:
    from edge.pager.service import PagerService

COUNTER = {"counter": str}

# type -> {argument: type or (type, default)}, as edge.service.validate_args reads it.
SPEC: dict[str, dict[str, Any]] = {
    "issue": {"service": str, "priority": (str, None), "source": (str, "mqtt")},
    "checkin": {"code": str},
    "rejoin": {"ticket": str},
    "return_card": {"card": int},
    "book": {"code": str, "service": str, "slot": float},
    "call_next": {"counter": str, "ticket": (str, None)},
    "recall": COUNTER,
    "no_show": COUNTER,
    "transfer": {"counter": str, "to_service": (str, None), "to_counter": (str, None)},
    "done": COUNTER,
    "pause": {"counter": str, "paused": (bool, True)},
    "rate": {"counter": str, "score": int},
    "page": {"card": int},
    "stats": {"day": (str, None)},
}

Handler = Callable[["PagerService", dict], Awaitable[dict]]


async def _call_next(pager: "PagerService", args: dict) -> dict:
    result = await pager.call_next(args["counter"], args["ticket"])
    # An empty queue is an answer, not an error: the counter screen says so.
    return result if result else {"ticket": None, "counter": args["counter"], "message": "queue empty"}


# type -> the coroutine that runs it with arguments already checked against SPEC.
HANDLERS: dict[str, Handler] = {
    "issue": lambda pager, a: pager.issue(a["service"], a["priority"], a["source"]),
    "checkin": lambda pager, a: pager.checkin(a["code"]),
    "rejoin": lambda pager, a: pager.rejoin(a["ticket"]),
    "return_card": lambda pager, a: pager.return_card(a["card"]),
    "book": lambda pager, a: pager.book(a["code"], a["service"], a["slot"]),
    "call_next": _call_next,
    "recall": lambda pager, a: pager.recall(a["counter"]),
    "no_show": lambda pager, a: pager.no_show(a["counter"]),
    "transfer": lambda pager, a: pager.transfer(a["counter"], a["to_service"], a["to_counter"]),
    "done": lambda pager, a: pager.done(a["counter"]),
    "pause": lambda pager, a: pager.pause(a["counter"], a["paused"]),
    "rate": lambda pager, a: pager.rate(a["counter"], a["score"]),
    "page": lambda pager, a: pager.page(a["card"]),
    "stats": lambda pager, a: asyncio.to_thread(pager.engine.stats, a["day"]),
}
