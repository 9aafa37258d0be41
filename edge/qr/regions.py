"""Where unread QR codes may be: finder patterns that no decoded code accounts for.

A QR code has three finder patterns (a dark 7×7-module square ring around a 3×3 square) at
three of its corners. In a frame with several codes, the fast path may read one and not even
detect another (small, blurred, at an angle). Counting finder patterns outside the codes already
read, and grouping them in threes shaped like a code's corners (two equal sides at a right
angle, finders of a similar size), gives the regions worth a closer look: a crop, upscaled.

Cost: a median filter, a local threshold and one contour tree on the gray frame (about 2 ms for
640×480 on the build machine); only run when a frame's fast path already read something.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import cv2
import numpy as np

MAX_FINDERS = 12  # unread finders considered (12 give 220 triples: bounded work)
MAX_REGIONS = 4
HALF = 0.5  # finder patterns are looked for at half resolution in frames of at least…
MIN_HALF_SIDE = 240  # …480 px on the short side (at 2.2 px/module a finder is still 7–8 px there)


@dataclass(frozen=True)
class Finder:
    x: float
    y: float
    size: float  # side of the outer square, in pixels (7 modules)


@dataclass(frozen=True)
class Region:
    """A box (x0, y0, x1, y1) in frame pixels that probably holds an unread code."""

    x0: int
    y0: int
    x1: int
    y1: int
    module_px: float

    def crop(self, gray: np.ndarray) -> np.ndarray:
        return gray[self.y0:self.y1, self.x0:self.x1]


def finder_patterns(gray: np.ndarray, skip: list[np.ndarray] = ()) -> list[Finder]:
    """Square ring-in-ring shapes: a dark contour holding a light one holding a dark one.

    `skip`: polygons (codes already read) blanked first: their modules are most of the contours.
    """
    scale = HALF if min(gray.shape) >= 2 * MIN_HALF_SIDE else 1.0
    if scale != 1.0:  # a quarter of the pixels; area averaging also smooths camera noise
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    else:
        small = cv2.medianBlur(gray, 3)  # camera noise would give thousands of tiny contours
    # A local threshold: glare and shading make one global (Otsu) level miss whole codes.
    dark = cv2.adaptiveThreshold(small, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 21 if scale != 1.0 else 41, 10)
    if len(skip):
        cv2.fillPoly(dark, [np.round(p * scale).astype(np.int32) for p in skip], 0)
    contours, hierarchy = cv2.findContours(dark, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    tree = hierarchy[0]
    found: list[Finder] = []
    for outer in np.flatnonzero(tree[:, 2] >= 0):
        inner = tree[tree[outer][2]][2]  # the dark centre inside the light ring
        if inner < 0:
            continue
        finder = _finder(contours[outer], contours[inner], scale)
        if finder is not None and all(math.dist((finder.x, finder.y), (f.x, f.y)) > f.size / 2 for f in found):
            found.append(finder)
    return found


def _finder(outer, inner, scale: float) -> Finder | None:
    outer_area = cv2.contourArea(outer)
    inner_area = cv2.contourArea(inner)
    if outer_area < 25 * scale * scale or inner_area <= 0:
        return None
    # 7×7 modules around 3×3: 49/9 = 5.4, loose for blur and perspective.
    if not 2.5 < outer_area / inner_area < 10:
        return None
    x, y, w, h = cv2.boundingRect(outer)
    if not 0.5 < w / h < 2.0 or outer_area < 0.45 * w * h:
        return None  # not square-ish, or a thin shape (a letter, a line)
    return Finder((x + w / 2) / scale, (y + h / 2) / scale, math.sqrt(outer_area) / scale)


def unread_regions(gray: np.ndarray, read_codes: list[tuple[tuple[int, int], ...]]) -> list[Region]:
    """Regions of finder triples outside every code in `read_codes` (their corner points)."""
    polygons = [np.array(points, np.float32) for points in read_codes if len(points) >= 3]
    unread = [f for f in finder_patterns(gray, polygons) if not _inside_any((f.x, f.y), f.size, polygons)]
    if len(unread) < 3:
        return []
    unread = sorted(unread, key=lambda f: -f.size)[:MAX_FINDERS]
    regions: list[Region] = []
    used: set[int] = set()
    for triple in itertools.combinations(range(len(unread)), 3):
        if used & set(triple):
            continue  # a finder belongs to one code
        region = _region([unread[i] for i in triple], gray.shape)
        if region is not None:
            regions.append(region)
            used |= set(triple)
            if len(regions) >= MAX_REGIONS:
                break
    return regions


def _inside_any(point, size: float, polygons) -> bool:
    return any(cv2.pointPolygonTest(p, (float(point[0]), float(point[1])), True) > -size / 2 for p in polygons)


def _region(triple: list[Finder], shape) -> Region | None:
    """The box of a code whose three finders are `triple`, or None if they cannot be one code."""
    sizes = [f.size for f in triple]
    if max(sizes) / min(sizes) > 1.8:
        return None
    pts = np.array([(f.x, f.y) for f in triple])
    # The corner finder (top-left of the code) is the one opposite the longest side.
    sides = [np.linalg.norm(pts[(i + 1) % 3] - pts[(i + 2) % 3]) for i in range(3)]
    corner = int(np.argmax(sides))
    legs = sorted(s for i, s in enumerate(sides) if i != corner)
    size = float(np.mean(sizes))
    if legs[0] < 2.0 * size or legs[1] / legs[0] > 1.6 or not 1.15 < sides[corner] / legs[1] < 1.75:
        return None  # too close, not two equal legs, or no right angle between them
    a, b = (pts[i] for i in range(3) if i != corner)
    fourth = a + b - pts[corner]
    corners = np.vstack([pts, fourth])
    margin = 1.1 * size  # half a finder (3.5 modules) plus the quiet zone (4 modules)
    x0, y0 = np.maximum(corners.min(axis=0) - margin, 0).astype(int)
    x1, y1 = np.minimum(corners.max(axis=0) + margin, (shape[1], shape[0])).astype(int)
    if x1 - x0 < 21 or y1 - y0 < 21:
        return None
    return Region(int(x0), int(y0), int(x1), int(y1), module_px=size / 7.0)
