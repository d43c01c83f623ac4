"""Spatial relations by rules (Synthetic Visual Genome style): emitted only when clearly true.

Each predicate has one rule over two `Region`s (visible box, optional mask, depth and full extent), with
margins so that a borderline pair gets no relation rather than a wrong one:

- left of / right of: the boxes overlap along x by at most SIDE_OVERLAP of the narrower one, and the
  centres are at least DOMINANCE times further apart along x than along y (above / below: the same on y);
- near: the boxes do not overlap and the gap between the objects (mask to mask when both have masks, box to
  box otherwise) is at most NEAR_GAP × sqrt(smaller box area);
- on (under is its inverse): the subject is the smaller and not the wider object, lies over the object
  horizontally (at least ON_WIDTH_INSIDE of its width) and sticks out above its top, and either rests in
  front of it with its bottom in the object's upper band ON_BAND (depth higher, masks touching), or touches
  its top edge from above (masks touching);
- inside: the subject's box lies within the object's box, is at most INSIDE_MAX_AREA of it, and is in front;
- in front of (behind is its inverse): the subject is higher in depth order, and the occlusion is real: its
  mask touches the object's mask along at least CONTACT_FRACTION × sqrt(smaller box area) pixels (at least
  CONTACT_MIN), it overlaps the object's full extent, and the object is partly hidden; without masks, the
  boxes must overlap by BOX_OVERLAP_NO_MASK of the smaller one.

`rule_relations` evaluates every ordered pair and keeps a bounded, deterministic selection: nearest pairs
(by box centres) first, and within a pair the strongest predicates first (on/under, inside, depth,
directions, near).
The procedural layout sampler uses the same rules on its boxes (no masks), so there is one implementation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from synthloop.tools.annotate.language.describe import Region
from synthloop.tools.annotate.language.vocabulary import (
    ABOVE,
    BEHIND,
    BELOW,
    IN_FRONT_OF,
    INSIDE,
    LEFT_OF,
    NEAR,
    ON,
    RIGHT_OF,
    SPATIAL_PREDICATES,
    UNDER,
)
from synthloop.tools.geometry import box_area, intersection
from synthloop.tools.types import Relation

SIDE_OVERLAP = 0.1
DOMINANCE = 1.3
NEAR_GAP = 0.35
ON_BAND = (0.05, 0.5)
ON_WIDTH_INSIDE = 0.8
INSIDE_MAX_AREA = 0.5
CONTACT_MIN = 4
CONTACT_FRACTION = 0.1
EXTENT_OVERLAP = 0.02
BOX_OVERLAP_NO_MASK = 0.1
OCCLUDED_BELOW = 0.99  # a visible fraction at or above this counts as not hidden at all
_MAX_BOUNDARY_POINTS = 800  # thinning can only overestimate a gap, never call far objects near

PRIORITY: dict[str, int] = {
    ON: 0, UNDER: 0, INSIDE: 1, IN_FRONT_OF: 2, BEHIND: 2, LEFT_OF: 3, RIGHT_OF: 3, ABOVE: 3, BELOW: 3, NEAR: 4,
}  # fmt: skip


class Pair:
    """Facts about two regions that need their masks, computed once when a rule first asks."""

    def __init__(self, a: Region, b: Region) -> None:
        self.a, self.b = a, b

    @property
    def has_masks(self) -> bool:
        """Both regions carry masks."""
        return self.a.mask is not None and self.b.mask is not None

    @cached_property
    def box_gap(self) -> float:
        """Euclidean gap between the visible boxes (0 when they touch or overlap)."""
        a, b = self.a.box, self.b.box
        gx = max(0.0, b[0] - a[2], a[0] - b[2])
        gy = max(0.0, b[1] - a[3], a[1] - b[3])
        return float(np.hypot(gx, gy))

    @cached_property
    def contact(self) -> int:
        """Pixels of b that touch (4-neighbourhood) or share a pixel with a; 0 without masks."""
        if not self.has_masks:
            return 0
        ax0, ay0, ax1, ay1 = self.a.pixel_box
        bx0, by0, bx1, by1 = self.b.pixel_box
        x0, y0 = max(ax0 - 1, bx0 - 1), max(ay0 - 1, by0 - 1)
        x1, y1 = min(ax1 + 1, bx1 + 1), min(ay1 + 1, by1 + 1)
        if x1 <= x0 or y1 <= y0:
            return 0
        mask_a = self.a.mask_window(x0, y0, x1, y1)
        mask_b = self.b.mask_window(x0, y0, x1, y1)
        grown = mask_a.copy()
        grown[1:, :] |= mask_a[:-1, :]
        grown[:-1, :] |= mask_a[1:, :]
        grown[:, 1:] |= mask_a[:, :-1]
        grown[:, :-1] |= mask_a[:, 1:]
        return int((grown & mask_b).sum())

    @cached_property
    def mask_gap(self) -> float:
        """Gap between the visible masks in pixels (0 when they touch); the box gap without masks."""
        if not self.has_masks:
            return self.box_gap
        if self.contact:
            return 0.0
        points_a, points_b = _boundary(self.a), _boundary(self.b)
        if len(points_a) == 0 or len(points_b) == 0:
            return float("inf")
        best = np.inf
        for start in range(0, len(points_a), 256):
            chunk = points_a[start : start + 256]
            d2 = ((chunk[:, None, :] - points_b[None, :, :]) ** 2).sum(axis=2)
            best = min(best, float(d2.min()))
        return max(0.0, float(np.sqrt(best)) - 1.0)


def _boundary(region: Region) -> np.ndarray:
    """(N, 2) pixel coordinates (x, y) of the mask's boundary pixels, thinned to at most a fixed number."""
    crop = region.mask_crop
    if crop is None or crop.size == 0:
        return np.zeros((0, 2))
    inner = crop.copy()
    inner[1:, :] &= crop[:-1, :]
    inner[:-1, :] &= crop[1:, :]
    inner[:, 1:] &= crop[:, :-1]
    inner[:, :-1] &= crop[:, 1:]
    inner[0, :] = inner[-1, :] = False
    inner[:, 0] = inner[:, -1] = False
    ys, xs = np.nonzero(crop & ~inner)
    step = max(1, int(np.ceil(len(xs) / _MAX_BOUNDARY_POINTS)))
    x0, y0 = max(region.pixel_box[0], 0), max(region.pixel_box[1], 0)
    return np.stack([xs[::step] + x0, ys[::step] + y0], axis=1).astype(np.float64)


# -- the rules: each answers "is `a <predicate> b` clearly true?" ---------------------------------------------


def left_of(a: Region, b: Region) -> bool:
    """a is clearly left of b."""
    if a.box[2] > b.box[0] + SIDE_OVERLAP * min(a.width, b.width):
        return False
    dx, dy = b.centre[0] - a.centre[0], b.centre[1] - a.centre[1]
    return dx > 0 and dx >= DOMINANCE * abs(dy)


def above(a: Region, b: Region) -> bool:
    """a is clearly above b."""
    if a.box[3] > b.box[1] + SIDE_OVERLAP * min(a.height, b.height):
        return False
    dx, dy = b.centre[0] - a.centre[0], b.centre[1] - a.centre[1]
    return dy > 0 and dy >= DOMINANCE * abs(dx)


def near(a: Region, b: Region, pair: Pair) -> bool:
    """a and b are separate and close (relative to the smaller object)."""
    if intersection(a.box, b.box) > 0:
        return False
    scale = float(np.sqrt(min(a.box_area, b.box_area)))
    if pair.box_gap > NEAR_GAP * scale:
        return False
    return pair.mask_gap <= NEAR_GAP * scale


def _contact_needed(a: Region, b: Region) -> float:
    return max(CONTACT_MIN, CONTACT_FRACTION * float(np.sqrt(min(a.box_area, b.box_area))))


def in_front_of(a: Region, b: Region, pair: Pair) -> bool:
    """a is in front of b and really hides part of it."""
    if a.depth is None or b.depth is None or a.depth <= b.depth:
        return False
    extent = b.extent or b.box
    overlap = intersection(a.box, extent)
    if not pair.has_masks:
        return overlap >= BOX_OVERLAP_NO_MASK * min(a.box_area, box_area(extent))
    if overlap < EXTENT_OVERLAP * min(a.box_area, box_area(extent)):
        return False
    if b.visible_fraction is not None and b.visible_fraction >= OCCLUDED_BELOW:
        return False
    return pair.contact >= _contact_needed(a, b)


def on(a: Region, b: Region, pair: Pair) -> bool:
    """a rests on top of b: over it, sticking out above its top, in front of it or touching it from above."""
    if a.box_area >= b.box_area or a.width > b.width:
        return False
    x_overlap = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
    if x_overlap < ON_WIDTH_INSIDE * a.width or a.box[1] > b.box[1] - 0.1 * a.height:
        return False
    low, high = b.box[1] + ON_BAND[0] * b.height, b.box[1] + ON_BAND[1] * b.height
    resting = a.depth is not None and b.depth is not None and a.depth > b.depth and low <= a.box[3] <= high
    touching = abs(a.box[3] - b.box[1]) <= max(1.0, ON_BAND[0] * b.height)
    if not (resting or touching):
        return False
    if not pair.has_masks:
        return resting or a.box[3] >= b.box[1] - 1.0
    return pair.contact >= _contact_needed(a, b)


def inside(a: Region, b: Region) -> bool:
    """a's box lies within b's box, is much smaller, and a is in front."""
    tol = 1.0
    contained = (a.box[0] >= b.box[0] - tol and a.box[1] >= b.box[1] - tol
                 and a.box[2] <= b.box[2] + tol and a.box[3] <= b.box[3] + tol)
    if not contained or a.box_area > INSIDE_MAX_AREA * b.box_area:
        return False
    return a.depth is None or b.depth is None or a.depth > b.depth


def predicates(a: Region, b: Region, pair: Pair | None = None) -> list[str]:
    """Every spatial predicate P for which "a P b" is clearly true, in SPATIAL_PREDICATES order."""
    pair = pair or Pair(a, b)
    reverse = Pair(b, a)
    true = {
        ON: on(a, b, pair),
        UNDER: on(b, a, reverse),
        INSIDE: inside(a, b),
        IN_FRONT_OF: in_front_of(a, b, pair),
        BEHIND: in_front_of(b, a, reverse),
        LEFT_OF: left_of(a, b),
        RIGHT_OF: left_of(b, a),
        ABOVE: above(a, b),
        BELOW: above(b, a),
        NEAR: near(a, b, pair),
    }
    return [p for p in SPATIAL_PREDICATES if true[p]]


@dataclass(frozen=True)
class Candidate:
    """One true relation between positions in a region list, with how strongly it ranks."""

    subject: int
    predicate: str
    object: int
    distance: float

    def key(self) -> tuple[float, int, int, int, str]:
        """Selection order: nearest pairs first, then predicate strength, then indices."""
        return (round(self.distance, 6), PRIORITY[self.predicate], self.subject, self.object, self.predicate)


def candidate_relations(regions: Sequence[Region]) -> list[Candidate]:
    """Every clearly true relation between every ordered pair of regions, in selection order."""
    found = []
    for i, a in enumerate(regions):
        for j, b in enumerate(regions):
            if i == j:
                continue
            distance = float(np.hypot(a.centre[0] - b.centre[0], a.centre[1] - b.centre[1]))
            found.extend(Candidate(i, p, j, distance) for p in predicates(a, b))
    return sorted(found, key=Candidate.key)


def select(
    candidates: Iterable[Candidate], *, max_relations: int | None = None, max_per_subject: int | None = None
) -> list[Candidate]:
    """The first candidates (in the given order) within a total and a per-subject bound."""
    kept: list[Candidate] = []
    per_subject: Counter[int] = Counter()
    for c in candidates:
        if max_relations is not None and len(kept) >= max_relations:
            break
        if max_per_subject is not None and per_subject[c.subject] >= max_per_subject:
            continue
        kept.append(c)
        per_subject[c.subject] += 1
    return kept


def rule_relations(
    regions: Sequence[Region],
    *,
    max_relations: int | None = None,
    max_per_subject: int | None = None,
    source: str = "rule",
) -> list[Relation]:
    """Bounded rule relations between `regions` (subject/object are positions in the list)."""
    chosen = select(candidate_relations(regions), max_relations=max_relations, max_per_subject=max_per_subject)
    return [Relation(subject=c.subject, predicate=c.predicate, object=c.object, source=source) for c in chosen]
