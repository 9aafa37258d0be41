"""Bar-chart geometry for the SVG charts drawn by `templates/_chart.html`.

Only numbers are computed here (bar boxes, axis ticks at round values); the template writes
the SVG, so every label goes through Jinja's autoescape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WIDTH, HEIGHT = 720, 230
LEFT, RIGHT, TOP, BOTTOM = 48, 10, 34, 30


@dataclass
class BarChart:
    title: str
    unit: str
    color: str
    empty: bool
    bars: list = field(default_factory=list)      # {x, y, w, h, label, value}
    ticks: list = field(default_factory=list)     # {y, text}
    labels: list = field(default_factory=list)    # {x, text}
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    baseline: float = HEIGHT - BOTTOM


def nice_top(peak: float, *, integer: bool) -> tuple[float, float]:
    """(axis maximum, tick step): 1, 2 or 5 × 10^n, four or five ticks, whole steps for counts."""
    if peak <= 0:
        return (4.0, 1.0)
    raw = peak / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if integer:
        step = max(1.0, math.ceil(step))
    return step * math.ceil(peak / step), step


def bar_chart(values: list, labels: list[str], *, title: str, unit: str = "", color: str = "#1f6feb",
              integer: bool = True, label_every: int | None = None, scale: tuple | None = None) -> BarChart:
    """Bars for `values` (None = no data that day/hour: a gap, not a zero). `scale` = (axis top,
    tick step) for a bounded score (a /5 rating ends at 5, not at the next round number)."""
    numbers = [v for v in values if v is not None]
    chart = BarChart(title=title, unit=unit, color=color, empty=not numbers or max(numbers) <= 0)
    top, step = scale or nice_top(max(numbers) if numbers else 0, integer=integer)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(1, len(values))
    slot = plot_w / n
    tick = 0.0
    while tick <= top + 1e-9:
        y = TOP + plot_h * (1 - tick / top)
        chart.ticks.append({"y": round(y, 1), "text": f"{tick:g}"})
        tick += step
    every = label_every or max(1, math.ceil(n / 12))
    for i, (value, label) in enumerate(zip(values, labels)):
        x = LEFT + i * slot
        if value:
            h = plot_h * value / top
            chart.bars.append({"x": round(x + slot * 0.15, 1), "y": round(TOP + plot_h - h, 1),
                               "w": round(slot * 0.7, 1), "h": round(h, 1), "label": label,
                               "value": f"{value:.0f}" if integer else f"{value:.1f}"})
        if i % every == 0:
            chart.labels.append({"x": round(x + slot / 2, 1), "text": label})
    return chart
