"""`edge demo`'s office day for the pager: a morning rush that the counters then clear.

Arrivals are paced to what the counters serve: a ticket is issued only while the hall holds fewer
people than the phase wants (the rush builds a queue, the afternoon lets it drain), and never when
few cards are left, so reception is never refused. Tickets the desk camera issues (the QR demo)
count too. Each counter serves for a few seconds, sometimes marks a no-show, rates what it finished,
and one takes a short break. The day repeats, so a long demo keeps telling the same story.
"""

from __future__ import annotations

import asyncio
import logging
import random

from edge.pager.queue import QueueError

log = logging.getLogger("edge.pager")

TICK_S = 1.0
# (seconds from the start of the day, people the hall should hold, seconds between two arrivals)
PHASES = ((0, 2, 6.0), (20, 14, 2.0), (120, 5, 12.0), (190, 1, 20.0))
DAY_S = 300  # then a new morning
# How long one citizen stays at a counter: a demo minute is short, but long enough that the wall
# display's estimates read like an office's ("8 người chờ · khoảng 2 phút").
SERVICE_S = (15.0, 35.0)
NO_SHOW_EVERY = 9  # about one call in nine is a no-show
SPARE_CARDS = 10  # never hand out the last cards: reception must not be refused during the demo
BREAK = ("3", 80, 40)  # counter, seconds into the day, how long its break lasts


def phase(t: float) -> tuple[int, float]:
    """(people wanted in the hall, seconds between arrivals) at `t` seconds into the day."""
    wanted, gap = PHASES[0][1], PHASES[0][2]
    for start, people, interval in PHASES:
        if t >= start:
            wanted, gap = people, interval
    return wanted, gap


class MorningRush:
    """Drives a PagerService (issue, call_next, done, no_show, rate, pause) like an office would."""

    def __init__(self, pager, *, seed: int = 19, clock=None, sleep=asyncio.sleep):
        self.pager = pager
        self.random = random.Random(seed)
        self.clock = clock or asyncio.get_running_loop().time
        self.sleep = sleep  # the pager's ServiceContext.sleep
        self.started = self.clock()
        self.next_arrival = 0.0
        self.until: dict[str, float] = {}  # counter -> when its current citizen leaves
        self.calls = 0

    async def run(self) -> None:
        while True:
            t = (self.clock() - self.started) % DAY_S
            try:
                await self.step(t)
            except QueueError as err:  # a refusal is part of the story, said once per kind by the quiet log
                log.info("pager demo: %s", err)
            await self.sleep(TICK_S)

    async def step(self, t: float) -> None:
        view = self.pager.view()
        await self._arrive(t, view)
        await self._take_break(t, view)
        for counter, state in view["counters"].items():
            await self._serve(counter, state, view)

    async def _arrive(self, t: float, view: dict) -> None:
        wanted, gap = phase(t)
        waiting = sum(s["waiting"] for s in view["services"].values())
        now = self.clock()
        if now < self.next_arrival or waiting >= wanted or view.get("cards_free", 99) <= SPARE_CARDS:
            return
        self.next_arrival = now + gap * self.random.uniform(0.6, 1.4)
        service = self.random.choice(sorted(view["services"]))
        priority = "elderly" if self.random.random() < 0.12 else None
        ticket = await self.pager.issue(service, priority=priority, source="demo")
        log.info("pager: issued %s on card %d (%s, about %d min wait)", ticket["ticket"], ticket["card"], service,
                 round(ticket["estimated_wait_s"] / 60))

    async def _take_break(self, t: float, view: dict) -> None:
        counter, start, length = BREAK
        state = view["counters"].get(counter)
        if state is None:
            return
        on_break = start <= t < start + length
        if on_break != state["paused"] and (not on_break or state["ticket"] is None):
            await self.pager.pause(counter, on_break)
            log.info("pager: counter %s %s", counter, "takes a break" if on_break else "is back")

    async def _serve(self, counter: str, state: dict, view: dict) -> None:
        if state["paused"]:
            return
        now = self.clock()
        if state["ticket"] is not None:
            if now < self.until.setdefault(counter, now + self.random.uniform(*SERVICE_S)):
                return
            self.until.pop(counter)
            if self.random.randrange(NO_SHOW_EVERY) == 0:
                gone = await self.pager.no_show(counter)
                log.info("pager: counter %s: %s did not come (no-show)", counter, gone["ticket"])
            else:
                finished = await self.pager.done(counter)
                await self.pager.rate(counter, self.random.choice((4, 5, 5, 3)))
                log.info("pager: counter %s finished %s, card %d back", counter, finished["ticket"], finished["card"])
        if BREAK[0] == counter and BREAK[1] <= (now - self.started) % DAY_S < BREAK[1] + BREAK[2]:
            return  # going on a break: call nobody new
        called = await self.pager.call_next(counter)
        if called:
            self.until[counter] = now + self.random.uniform(*SERVICE_S)
            log.info("pager: counter %s calls %s (card %d)", counter, called["ticket"], called["card"])
