"""The re-page timer (`repage_s`): no cheap card acknowledges over the air, so a called citizen is
paged again every `repage_s` seconds, each time as a recall, until `max_recalls`; then staff decide."""

from __future__ import annotations

from typing import Awaitable, Callable

from edge.pager.queue import QueueError

FORGET_S = 3600  # pages older than this are forgotten (their tickets are long finished)


class Repager:
    def __init__(self, repage_s: float, *, clock: Callable[[], float], recall: Callable[[str], Awaitable[dict]]):
        self.repage_s = repage_s
        self.clock = clock
        self.recall = recall  # the service's recall: a store transaction and a page
        self._last_page: dict[tuple[str, str], float] = {}  # (counter, ticket) -> last page

    def paged(self, counter: str, ticket: str) -> None:
        """A recall paged this ticket now (a staff recall or our own): the next is due repage_s later."""
        self._last_page[(counter, ticket)] = self.clock()

    async def repage_due(self, counters: dict[str, dict]) -> None:
        """Recall every called ticket (the queue's view of `counters`) not paged for repage_s."""
        now = self.clock()
        for counter, state in counters.items():
            if state["ticket"] is None:
                continue
            last = max(state["called_at"] or 0, self._last_page.get((counter, state["ticket"]), 0))
            if now - last >= self.repage_s:
                try:
                    await self.recall(counter)
                except QueueError:
                    self._last_page[(counter, state["ticket"])] = now  # limit reached: staff decide
        self._last_page = {k: v for k, v in self._last_page.items() if now - v < FORGET_S}
