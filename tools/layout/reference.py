"""Layouts anchored on the user's own annotated data (AnySynth's layout priors).

Priors are fitted once, when the sampler is built, on a reference COCO file (`tools/reference.py`). Steps per
image:
1. counts: draw one reference image among those holding any of the spec's classes and take its count of each
   class (so objects per image and co-occurrence follow the reference), clipped to the spec's
   [min_count, max_count]; spec classes the reference lacks draw their counts like the procedural sampler;
2. boxes: per object, draw (size, aspect, centre) from its class's kernel density over the reference boxes
   (classes the reference lacks: the procedural sampler's size, aspect and uniform position);
3. place back to front (larger first), redrawing a box that would hide any object behind it by more than the
   difficulty's occlusion limit; a required object shrinks after repeated failures, as in the procedural
   sampler;
4. relations by the procedural sampler's rules when the spec asks for a scene graph.

Difficulty (DetDiffusion's easy / hard) keeps its meaning of measured scene properties while the layout stays
inside the reference's range: `medium` follows the reference as it is; `easy` draws boxes around the larger
half of the class's reference boxes and counts from the less cluttered half of the reference images, `hard`
from the smaller boxes and the more cluttered images; the occlusion limit is the procedural profile's. How far
easy and hard sizes lie apart therefore depends on how varied the reference is. Same spec + seed → same layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from synthloop.tools.backend import BackendError
from synthloop.tools.class_names import normal_class_name
from synthloop.tools.layout.base import BaseLayoutSampler
from synthloop.tools.layout.procedural import (
    MIN_BOX_PX,
    PROFILES,
    DifficultyProfile,
    acceptable_placement,
    spatial_relations,
)
from synthloop.tools.reference import LayoutPriors, ReferenceDataError, fit_priors, load_reference
from synthloop.tools.types import Difficulty, Layout, LayoutObject, ObjectSpec, Task, TaskSpec

TILT = {Difficulty.easy: 1, Difficulty.medium: 0, Difficulty.hard: -1}  # +1: larger, sparser; -1: smaller, fuller

Wanted = tuple[ObjectSpec, str | None, bool]  # spec object, reference class (None: procedural), required


class ReferenceOptions(BaseModel):
    """Options of the reference layout sampler."""

    model_config = ConfigDict(extra="forbid")

    coco: str = Field(min_length=1, description="Reference COCO instances file (the user's own annotated data).")
    images: str = Field(min_length=1, description="Folder the reference COCO file_name paths are relative to.")
    max_tries: int = Field(default=40, ge=1, le=10_000, description="Placement attempts per object.")
    bandwidth_scale: float = Field(default=1.0, ge=0.0, le=10.0,
                                   description="Kernel width of the box density, times Scott's rule.")


class ReferenceLayoutSampler(BaseLayoutSampler):
    """Layouts sampled from priors fitted on the user's reference COCO data.

    The priors are counts, co-occurrence, and box size, aspect and position per class; the spec's counts and
    overlap limits still hold.
    """

    id = "reference"
    Options = ReferenceOptions

    def __init__(self, coco: str, images: str, max_tries: int = 40, bandwidth_scale: float = 1.0) -> None:
        priors = fit_priors(load_reference(coco, images), bandwidth_scale=bandwidth_scale)
        self._init(priors, max_tries)

    @classmethod
    def from_priors(cls, priors: LayoutPriors, *, max_tries: int = 40) -> ReferenceLayoutSampler:
        """A sampler over priors already fitted (e.g. shared with a report)."""
        sampler = cls.__new__(cls)
        sampler._init(priors, max_tries)
        return sampler

    @classmethod
    def from_options(cls, options: BaseModel) -> ReferenceLayoutSampler:
        """Build from validated options; an unusable reference dataset is a one-line BackendError."""
        try:
            return super().from_options(options)
        except ReferenceDataError as exc:
            raise BackendError(f"layout 'reference': {exc}") from exc

    def _init(self, priors: LayoutPriors, max_tries: int) -> None:
        if max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {max_tries}")
        self.priors = priors
        self.max_tries = max_tries
        self._column = {name: k for k, name in enumerate(priors.classes)}
        self._halves: dict[tuple[str, int], np.ndarray] = {}  # (class, tilt) → rows of its larger / smaller boxes
        for name, boxes in priors.boxes.items():
            median = np.median(boxes[:, 0])
            self._halves[name, 1] = np.flatnonzero(boxes[:, 0] >= median)
            self._halves[name, -1] = np.flatnonzero(boxes[:, 0] <= median)

    def class_map(self, spec: TaskSpec) -> dict[str, str | None]:
        """Spec class → reference class (same normal form: lower case, singular), or None when it has none."""
        return {o.name: (normal_class_name(o.name) if normal_class_name(o.name) in self._column else None)
                for o in spec.objects}

    def unmatched_classes(self, spec: TaskSpec) -> list[str]:
        """Spec classes the reference does not have: they fall back to the procedural distributions."""
        return [name for name, ref in self.class_map(spec).items() if ref is None]

    def report(self, out_dir: Path, spec: TaskSpec) -> str | None:
        """Distances between synthetic and reference statistics per class, before (procedural) and after
        (this sampler): DIR/layout_prior.json, DIR/card_layout_prior.png, and the card section."""
        from synthloop.tools.layout.reference_report import (
            layout_prior_report,
            layout_report_markdown,
            write_layout_report,
        )

        report = layout_prior_report(spec, self, n=200, seed=spec.seed)
        write_layout_report(out_dir, report, spec)
        return layout_report_markdown(report)

    def review(self, spec: TaskSpec) -> list[str]:
        """Where each class's layout statistics come from, for classes the reference does not have."""
        return [f"{name}: not in the reference data, procedural layout" for name in self.unmatched_classes(spec)]

    def sample(self, spec: TaskSpec, seed: int) -> Layout:
        """Return a layout for one image: counts and boxes from the priors, depths back to front, relations."""
        rng = np.random.default_rng([seed, spec.seed, 0x2EF0])
        profile = PROFILES[spec.difficulty]
        tilt = TILT[spec.difficulty]
        mapping = self.class_map(spec)
        counts = self._draw_counts(spec, mapping, profile, tilt, rng)
        wanted: list[Wanted] = [(o, mapping[o.name], k < o.min_count)
                                for o, n in zip(spec.objects, counts, strict=True) for k in range(n)]
        first = [self._draw_box(ref, spec, profile, tilt, rng) for _, ref, _ in wanted]
        keys = [(b[2] - b[0]) * (b[3] - b[1]) for b in first]
        order = sorted(range(len(wanted)), key=lambda i: (not wanted[i][2], -keys[i]))
        boxes: list[tuple[int, int, int, int]] = []
        objects: list[LayoutObject] = []
        for i in order:
            obj, ref, required = wanted[i]
            box = self._place(first[i], ref, required, boxes, spec, profile, tilt, rng)
            if box is None:
                continue
            boxes.append(box)
            objects.append(LayoutObject(category=obj.name, depth=len(objects), attributes=list(obj.attributes),
                                        box=(box[0] / spec.width, box[1] / spec.height, box[2] / spec.width,
                                             box[3] / spec.height)))
        relations = spatial_relations(objects, spec.width, spec.height) if Task.scene_graph in spec.tasks else []
        return Layout(width=spec.width, height=spec.height, objects=objects, relations=relations, seed=seed,
                      source=self.id)

    def _draw_counts(self, spec: TaskSpec, mapping: dict[str, str | None], profile: DifficultyProfile, tilt: int,
                     rng: np.random.Generator) -> list[int]:
        columns = [self._column[ref] for ref in mapping.values() if ref is not None]
        counts = self.priors.counts
        holding = np.flatnonzero(counts[:, columns].sum(axis=1) > 0) if columns else np.arange(len(counts))
        pool = holding if len(holding) else np.arange(len(counts))
        if tilt:  # easy: the less cluttered half of the images, hard: the more cluttered half
            totals = counts[pool][:, columns].sum(axis=1)
            median = np.median(totals)
            pool = pool[totals <= median] if tilt > 0 else pool[totals >= median]
        row = counts[pool[int(rng.integers(0, len(pool)))]]
        result = []
        for obj in spec.objects:
            ref = mapping[obj.name]
            if ref is not None:
                result.append(int(np.clip(row[self._column[ref]], obj.min_count, obj.max_count)))
            else:
                result.append(int(rng.integers(obj.min_count, obj.max_count + 1, size=profile.count_bias).max()))
        if sum(result) == 0:
            candidates = [i for i, o in enumerate(spec.objects) if o.max_count > 0]
            result[candidates[int(rng.integers(len(candidates)))]] = 1
        return result

    def _draw_box(self, ref: str | None, spec: TaskSpec, profile: DifficultyProfile, tilt: int,
                  rng: np.random.Generator, shrink: float = 1.0) -> tuple[int, int, int, int]:
        """A pixel xyxy box: from the class's density (the tilt's half of its boxes), or procedural."""
        unit = float(np.sqrt(spec.width * spec.height))
        if ref is None:
            size = rng.uniform(*profile.size_range) * unit
            aspect = float(np.exp(rng.uniform(-1.0, 1.0) * np.log(profile.max_aspect)))
            centre = None
        else:
            rows = self._halves[ref, tilt] if tilt else None
            log_size, log_aspect, cx, cy = self.priors.sample_boxes(ref, 1, rng, rows)[0]
            size, aspect = float(np.exp(log_size)) * unit, float(np.exp(log_aspect))
            centre = (float(np.clip(cx, 0.0, 1.0)) * spec.width, float(np.clip(cy, 0.0, 1.0)) * spec.height)
        w = int(np.clip(round(size * np.sqrt(aspect) * shrink), MIN_BOX_PX, spec.width))
        h = int(np.clip(round(size / np.sqrt(aspect) * shrink), MIN_BOX_PX, spec.height))
        if centre is None:
            x0, y0 = int(rng.integers(0, spec.width - w + 1)), int(rng.integers(0, spec.height - h + 1))
        else:  # keep the drawn centre, shifted only as far as the box must to stay inside the image
            x0 = int(np.clip(round(centre[0] - w / 2), 0, spec.width - w))
            y0 = int(np.clip(round(centre[1] - h / 2), 0, spec.height - h))
        return (x0, y0, x0 + w, y0 + h)

    def _place(self, first: tuple[int, int, int, int], ref: str | None, required: bool,
               boxes: list[tuple[int, int, int, int]], spec: TaskSpec, profile: DifficultyProfile, tilt: int,
               rng: np.random.Generator) -> tuple[int, int, int, int] | None:
        """The first draw, or a redraw, that keeps every object behind within the occlusion limit."""
        tries = self.max_tries if required or not boxes else max(1, self.max_tries // 2)
        candidate = first
        for attempt in range(tries):
            if attempt:
                shrink = 0.8 ** (attempt // 10) if required else 1.0
                candidate = self._draw_box(ref, spec, profile, tilt, rng, shrink)
            if acceptable_placement(candidate, boxes, profile.max_occlusion):
                return candidate
        return None
