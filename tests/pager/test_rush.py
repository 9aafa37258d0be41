"""`edge demo`'s office day (edge.pager.rush) against the real PagerService: the rush builds a queue
that the three counters then clear, and reception is never refused for want of cards."""

import asyncio

from edge.pager.config import CounterDef, PagerConfig, ServiceDef
from edge.pager.rush import DAY_S, SPARE_CARDS, MorningRush
from edge.pager.service import PagerService
from edge.service import ServiceContext
from edge.store import Store


def test_a_demo_day_rushes_then_clears_and_never_runs_out_of_cards(tmp_path):
    config = PagerConfig(driver="jtech", port="sim", double_press_s=0,
                         services={"ho-tich": ServiceDef(prefix="A"), "dat-dai": ServiceDef(prefix="B")},
                         counters={"1": CounterDef(services=["ho-tich", "dat-dai"]), "2": CounterDef(services=["ho-tich"]),
                                   "3": CounterDef(services=["dat-dai"])})
    now = [0.0]
    pager = PagerService(ServiceContext(name="pager", site="s", device="d", store=Store(tmp_path / "edge.db"),
                                        config=config, data_dir=tmp_path, clock=lambda: 1_800_000_000 + now[0]))

    async def day():
        await pager.start()
        try:
            rush = MorningRush(pager, clock=lambda: now[0])
            waiting, free = [], []
            for second in range(DAY_S - 1):  # one simulated second per step; a refusal would raise here
                now[0] = float(second)
                await rush.step(second)
                view = pager.view()
                waiting.append(sum(s["waiting"] for s in view["services"].values()))
                free.append(view["cards_free"])
            return waiting, free
        finally:
            await pager.stop()

    waiting, free = asyncio.run(asyncio.wait_for(day(), 120))
    assert max(waiting[20:120]) >= 8, f"no morning rush: {waiting}"
    assert waiting[-1] <= 2 and max(waiting[-20:]) <= 3, f"the counters did not clear the hall: {waiting}"
    assert min(free) >= SPARE_CARDS, "the demo handed out cards reception needs"
