"""Multi-code frames: finder patterns that no read code accounts for are cropped and read."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from edge.qr.decoder import Decoder, DecodeStats
from edge.qr.regions import finder_patterns, unread_regions
from edge.qr.synth import make_set, qr_image


def decoder() -> Decoder:
    """A second of budget, counted in this thread's CPU time: the region search runs after the other
    passes, and on a loaded machine the wall clock could spend the budget before it."""
    return Decoder(budget_ms=1000, clock=time.thread_time)


def poster_wall(texts, module_px=4, gap=40) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Codes side by side on white; returns the frame and each code's box (x0, y0, x1, y1)."""
    codes = [qr_image(t, module_px=module_px) for t in texts]
    height = max(c.shape[0] for c in codes) + 2 * gap
    frame = np.full((height, sum(c.shape[1] + gap for c in codes) + gap), 255, np.uint8)
    boxes, x = [], gap
    for code in codes:
        h, w = code.shape
        frame[gap:gap + h, x:x + w] = code
        boxes.append((x, gap, x + w, gap + h))
        x += w + gap
    return frame, boxes


def corners(box):
    x0, y0, x1, y1 = box
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def test_three_finders_per_code_are_found():
    frame, _ = poster_wall(["1.001193", "2.000815"])
    assert len(finder_patterns(frame)) == 6


def test_the_unread_code_is_the_one_region_left():
    frame, boxes = poster_wall(["1.001193", "2.000815", "1.004222"])
    (region,) = unread_regions(frame, [corners(boxes[0]), corners(boxes[2])])
    x0, y0, x1, y1 = boxes[1]
    assert region.x0 <= x0 + 16 and region.x1 >= x1 - 16 and region.y0 <= y0 + 16 and region.y1 >= y1 - 16
    assert region.x1 < boxes[2][0] and region.x0 > boxes[0][2] - 16  # not its neighbours
    assert region.module_px == pytest.approx(4, rel=0.3)
    assert unread_regions(frame, [corners(b) for b in boxes]) == []  # everything read: no search


@pytest.mark.parametrize("seed, index", [(42, 3)])
def test_region_search_reads_the_second_code_the_fast_path_did_not_see(seed, index):
    """A camera-like two-code frame (edge bench qr's generator) where only the search reads both.

    (Frames 154 and 205 of seed 1 and 217 and 230 of seed 2 are others; slower to generate.)
    """
    sample = make_set(index + 1, seed)[index]
    without = decoder()
    without.search_regions = False
    stats = DecodeStats()
    found = {s.text for s in decoder().decode(sample.image, stats)}
    assert len({s.text for s in without.decode(sample.image)}) == 1
    assert found == set(sample.texts) and "region" in stats.passes


def test_region_search_reports_positions_in_frame_pixels():
    sample = make_set(4, 42)[3]
    scans = decoder().decode(sample.image)
    (fast,) = [s for s in scans if s.decoder == "zxing"]
    (searched,) = [s for s in scans if s.decoder == "region"]
    gray = cv2.cvtColor(sample.image, cv2.COLOR_BGR2GRAY)
    (region,) = unread_regions(gray, [fast.points])
    x, y = np.mean(searched.points, axis=0)
    assert region.x0 <= x <= region.x1 and region.y0 <= y <= region.y1  # frame pixels, not the crop's
