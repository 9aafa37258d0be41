"""`edge demo` over a long run: the paced arrivals (edge.pager.rush) and the desk QR camera's
tickets together stay below what the three counters serve, so the pager cards never run out.

QA (issue 19) measured the old demo: the sim camera issued ~8 tickets a minute while the counters
served 6-7, cards fell 92 -> 51 in 16 minutes and all 99 were out after ~40. This runs the demo's
own configuration (edge/demo.toml) through the real PagerService, QrService and SimCamera on an
injected clock, one simulated second per step, for several demo days.
"""

import asyncio
import dataclasses

from gpiozero.pins.mock import MockFactory

from edge.demo import demo_config
from edge.pager.rush import DAY_S, SPARE_CARDS, MorningRush
from edge.pager.service import PagerService
from edge.qr.service import QrService
from edge.service import ServiceContext
from edge.store import Store

DAYS = 8  # 40 simulated minutes: the old demo had handed out every card by then
EPOCH = 1_800_000_000


def _services(tmp_path, now):
    config = demo_config("mqtt://127.0.0.1:1", str(tmp_path))
    store = Store(tmp_path / "edge.db")
    clock = lambda: EPOCH + now[0]  # noqa: E731
    pins = MockFactory()  # counter 1's panel buttons, as under `edge demo`

    def ctx(name, section, peers=None):
        return ServiceContext(name=name, site=config.site, device=config.device, store=store, config=section,
                              data_dir=tmp_path, clock=clock, peers=peers or {}, demo=True, pin_factory=pins)

    pager = PagerService(ctx("pager", config.services["pager"]))
    qr = QrService(ctx("qr", dataclasses.replace(config.services["qr"], fps=1.0), {"pager": pager}))
    return pager, qr


def _decode_each_image_once(qr):
    """The camera loops over ten images: decode each once (the handling, dedupe and tickets stay real)."""
    decode, seen = qr._decoder.decode, {}

    def cached(frame):
        key = frame.tobytes()
        if key not in seen:
            seen[key] = decode(frame)
        return seen[key]

    qr._decoder.decode = cached


def test_a_long_demo_never_runs_out_of_pager_cards(tmp_path):
    now = [0.0]
    pager, qr = _services(tmp_path, now)

    async def demo():
        await pager.start()
        await qr.start()
        try:
            _decode_each_image_once(qr)
            rush = MorningRush(pager, clock=lambda: now[0])
            free, end_of_day, camera_tickets = [], [], 0
            for second in range(DAYS * DAY_S):
                now[0] = float(second)
                await rush.step(second % DAY_S)
                handled = await qr.scan_frame(qr.source.read(), rgb=True)  # the demo's camera, a frame a second
                camera_tickets += sum(1 for event in handled if event.get("ticket"))
                view = pager.view()
                free.append(view["cards_free"])
                if second % DAY_S == DAY_S - 1:
                    end_of_day.append(sum(s["waiting"] for s in view["services"].values()))
            return free, end_of_day, camera_tickets
        finally:
            await qr.stop()
            await pager.stop()

    free, end_of_day, camera_tickets = asyncio.run(asyncio.wait_for(demo(), 600))
    assert camera_tickets >= DAYS * DAY_S / 60, "the camera issued (almost) no tickets: the test lost its point"
    assert min(free) >= SPARE_CARDS, f"cards ran low: lowest {min(free)} free"
    assert max(end_of_day) <= 4, f"a demo day ended with people still waiting (backlog grows): {end_of_day}"
    print(f"camera tickets: {camera_tickets}, lowest free cards {min(free)}, waiting at each day's end {end_of_day}")
