"""Procedural layouts: seeded rejection sampling of boxes with difficulty-driven size and occlusion.

Steps per image: (1) draw a count per class, (2) draw a size and aspect ratio per object, (3) place objects
back to front, rejecting positions that would hide any object already placed behind by more than the
difficulty's occlusion limit, (4) add rule-based spatial relations when the spec asks for a scene graph.

Boxes are snapped to whole pixels, so a renderer that fills its boxes (the compositor) produces masks whose
tight boxes are exactly the layout boxes; copy_paste gives a cut-out its box's area with the cut-out's own
shape, so its tight boxes are the cut-outs'. Depth is the stacking order: objects are listed back to front,
depth = index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from synthloop.tools.annotate.language.describe import regions_of
from synthloop.tools.annotate.language.relations import rule_relations
from synthloop.tools.layout.base import BaseLayoutSampler
from synthloop.tools.types import Difficulty, Layout, LayoutObject, Relation, Task, TaskSpec

MIN_BOX_PX = 8  # smaller boxes cannot show a recognisable shape (and the critic wants >= 4 px sides)
MAX_RELATIONS_PER_OBJECT = 3
_COVERAGE_GRID = 9  # occlusion is estimated on a 9×9 grid of points inside a box's inscribed ellipse


@dataclass(frozen=True)
class DifficultyProfile:
    """How difficulty shapes a layout.

    size_range: object size as a fraction of sqrt(width × height) (the side of a square of equal area).
    max_occlusion: the largest fraction of an object that objects in front of it may cover.
    max_aspect: aspect ratios are drawn log-uniformly in [1 / max_aspect, max_aspect].
    count_bias: number of count draws per class whose maximum is kept (more draws → more clutter).
    """

    size_range: tuple[float, float]
    max_occlusion: float
    max_aspect: float
    count_bias: int


PROFILES: dict[Difficulty, DifficultyProfile] = {
    Difficulty.easy: DifficultyProfile(
        size_range=(0.14, 0.35), max_occlusion=0.08, max_aspect=1.8, count_bias=1
    ),
    Difficulty.medium: DifficultyProfile(
        size_range=(0.09, 0.25), max_occlusion=0.25, max_aspect=2.2, count_bias=1
    ),
    Difficulty.hard: DifficultyProfile(
        size_range=(0.05, 0.17), max_occlusion=0.40, max_aspect=2.8, count_bias=2
    ),
}

# Sample points of the unit box that fall inside its inscribed ellipse: most shapes put their mass there,
# so this estimate of how much of an object is hidden is closer to the mask truth than box area would be.
_g = (np.arange(_COVERAGE_GRID) + 0.5) / _COVERAGE_GRID
_gx, _gy = np.meshgrid(_g, _g)
_inside = (_gx - 0.5) ** 2 + (_gy - 0.5) ** 2 <= 0.25
_UNIT_POINTS = np.stack([_gx[_inside], _gy[_inside]], axis=1)


class ProceduralOptions(BaseModel):
    """Options of the procedural layout sampler."""

    model_config = ConfigDict(extra="forbid")

    max_tries: int = Field(default=40, ge=1, le=10_000, description="Placement attempts per object.")


class ProceduralLayoutSampler(BaseLayoutSampler):
    """Seeded procedural layouts (counts, sizes and overlap from the spec and its difficulty).

    max_tries: placement attempts per object before it is dropped (required objects also shrink
    between attempts, so a class's min_count is kept whenever space allows).
    """

    id = "procedural"
    Options = ProceduralOptions

    def __init__(self, max_tries: int = 40) -> None:
        if max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {max_tries}")
        self.max_tries = max_tries

    def sample(self, spec: TaskSpec, seed: int) -> Layout:
        """Return a layout for one image: counts, boxes, depths, attributes and (optionally) relations."""
        rng = np.random.default_rng([seed, spec.seed, 0x1A70])
        profile = PROFILES[spec.difficulty]
        wanted = self._draw_objects(spec, profile, rng)
        placed = self._place(wanted, spec, profile, rng)
        objects = [
            LayoutObject(category=name, box=box, depth=depth, attributes=list(attrs))
            for depth, (name, attrs, box) in enumerate(placed)
        ]
        relations = spatial_relations(objects, spec.width, spec.height) if Task.scene_graph in spec.tasks else []
        return Layout(
            width=spec.width,
            height=spec.height,
            objects=objects,
            relations=relations,
            seed=seed,
            source=self.id,
        )

    def _draw_objects(
        self, spec: TaskSpec, profile: DifficultyProfile, rng: np.random.Generator
    ) -> list[tuple[str, list[str], float, float, bool]]:
        """Per object: (class, attributes, width px, height px, required); largest first."""
        counts = []
        for obj in spec.objects:
            draws = rng.integers(obj.min_count, obj.max_count + 1, size=profile.count_bias)
            counts.append(int(draws.max()))
        if sum(counts) == 0:
            candidates = [i for i, o in enumerate(spec.objects) if o.max_count > 0]
            counts[candidates[int(rng.integers(len(candidates)))]] = 1
        unit = float(np.sqrt(spec.width * spec.height))
        lo, hi = profile.size_range
        wanted = []
        for obj, count in zip(spec.objects, counts, strict=True):
            for k in range(count):
                size = rng.uniform(lo, hi) * unit
                aspect = float(np.exp(rng.uniform(-1.0, 1.0) * np.log(profile.max_aspect)))
                w = min(size * np.sqrt(aspect), 0.95 * spec.width)
                h = min(size / np.sqrt(aspect), 0.95 * spec.height)
                required = k < obj.min_count
                wanted.append(
                    (obj.name, list(obj.attributes), max(w, MIN_BOX_PX), max(h, MIN_BOX_PX), required)
                )
        # Large objects go to the back so small ones in front hide little of them; jitter keeps some variety.
        keys = [w * h * rng.uniform(0.6, 1.4) for _, _, w, h, _ in wanted]
        order = sorted(range(len(wanted)), key=lambda i: (not wanted[i][4], -keys[i]))
        return [wanted[i] for i in order]

    def _place(
        self,
        wanted: list[tuple[str, list[str], float, float, bool]],
        spec: TaskSpec,
        profile: DifficultyProfile,
        rng: np.random.Generator,
    ) -> list[tuple[str, list[str], tuple[float, float, float, float]]]:
        """Rejection-sample a position per object, back to front; drop objects that do not fit."""
        width, height = spec.width, spec.height
        boxes: list[tuple[int, int, int, int]] = []  # pixel xyxy, back to front
        placed = []
        for name, attrs, w, h, required in wanted:
            tries = self.max_tries if required or not boxes else max(1, self.max_tries // 2)
            box = None
            for attempt in range(tries):
                shrink = 0.8 ** (attempt // 10) if required else 1.0
                bw = int(np.clip(round(w * shrink), MIN_BOX_PX, width))
                bh = int(np.clip(round(h * shrink), MIN_BOX_PX, height))
                x0 = int(rng.integers(0, width - bw + 1))
                y0 = int(rng.integers(0, height - bh + 1))
                candidate = (x0, y0, x0 + bw, y0 + bh)
                if acceptable_placement(candidate, boxes, profile.max_occlusion):
                    box = candidate
                    break
            if box is None:
                continue
            boxes.append(box)
            placed.append((name, attrs, (box[0] / width, box[1] / height, box[2] / width, box[3] / height)))
        return placed


def acceptable_placement(
    candidate: tuple[int, int, int, int], boxes: list[tuple[int, int, int, int]], limit: float
) -> bool:
    """True if putting `candidate` in front keeps every object behind it at most `limit` hidden."""
    for i, back in enumerate(boxes):
        if not _overlaps(candidate, back):
            continue
        front = [*[b for b in boxes[i + 1 :] if _overlaps(b, back)], candidate]
        if occluded_fraction(back, front) > limit:
            return False
    return True


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def occluded_fraction(back: tuple[float, ...], front: list[tuple[float, ...]]) -> float:
    """Estimated fraction of the object in xyxy box `back` hidden by the xyxy boxes in `front`.

    Measured on sample points inside the inscribed ellipse of `back`, where object shapes concentrate.
    """
    if not front:
        return 0.0
    x0, y0, x1, y1 = back
    px = x0 + _UNIT_POINTS[:, 0] * (x1 - x0)
    py = y0 + _UNIT_POINTS[:, 1] * (y1 - y0)
    covered = np.zeros(len(_UNIT_POINTS), dtype=bool)
    for f in front:
        covered |= (px >= f[0]) & (px < f[2]) & (py >= f[1]) & (py < f[3])
    return float(covered.mean())


def spatial_relations(objects: list[LayoutObject], width: int = 1, height: int = 1) -> list[Relation]:
    """Relations a layout asks for, by the same rules that verify annotations (`annotate.language.relations`).

    Boxes are scaled to `width` × `height` pixels first (so "left of" vs "above" is judged on the image's
    real aspect); there are no masks yet, so depth relations need clearly overlapping boxes. Each object is
    the subject of at most MAX_RELATIONS_PER_OBJECT relations, strongest predicates and nearest pairs first.
    """
    boxes = [(o.box[0] * width, o.box[1] * height, o.box[2] * width, o.box[3] * height) for o in objects]
    regions = regions_of(boxes, [o.depth for o in objects])
    return rule_relations(regions, max_per_subject=MAX_RELATIONS_PER_OBJECT)
