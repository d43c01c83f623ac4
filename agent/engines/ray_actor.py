"""What a Ray actor of the Ray engine holds: the run's renderer and annotator, loaded once.

A plain class (no Ray import here): `ray_engine.py` turns it into an actor with `ray.remote`. The backends are
built on the worker from the run's config blocks, through the same registries as on the driver, so a model is
loaded where it runs (one actor per GPU, or one per CPU worker) and stays loaded for the whole run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from synthloop.agent.engines.base import Rendered, render_and_encode
from synthloop.tools.annotate.base import AnnotateRequest
from synthloop.tools.backend import BackendBlock
from synthloop.tools.render.base import RenderRequest, RenderReview
from synthloop.tools.types import Annotation, TaskSpec

Interval = tuple[float, float]


class BackendActor:
    """The loaded renderer and annotator of one run, on one Ray worker."""

    def __init__(self, renderer: BackendBlock, annotator: BackendBlock) -> None:
        from synthloop.agent.backends import make_annotator, make_renderer

        self.renderer = make_renderer(renderer)
        self.annotator = make_annotator(annotator)

    def describe(self) -> dict[str, Any]:
        """Ids and capabilities of the loaded backends (the driver's view of them), and this worker's pid."""
        return {"renderer": (self.renderer.id, self.renderer.capabilities),
                "annotator": (self.annotator.id, self.annotator.capabilities), "pid": os.getpid()}

    def cpu_seconds(self) -> float:
        """CPU time this worker process has used so far."""
        return time.process_time()

    def review(self, spec: TaskSpec) -> RenderReview:
        """The renderer's review of `spec` (shown before approval)."""
        return self.renderer.review(spec)

    def render(self, requests: Sequence[RenderRequest], png_level: int | None) -> tuple[list[Rendered], list[Interval]]:
        """Render a chunk (a batched renderer in one call, others one request at a time), encoding each image as
        PNG when `png_level` is set; returns the results and the busy intervals (wall clock) they took."""
        intervals: list[Interval] = []

        def busy(start: float, end: float) -> None:
            intervals.append((start, end))

        if self.renderer.capabilities.batched:
            return render_and_encode(self.renderer, requests, png_level, busy), intervals
        return [render_and_encode(self.renderer, [r], png_level, busy)[0] for r in requests], intervals

    def edit_image(self, image: np.ndarray, instruction: str, seed: int) -> np.ndarray:
        """The renderer's plain-language edit of `image` (the loop's repair of `edit` verdicts)."""
        return self.renderer.edit_image(image, instruction, seed)

    def edit_provenance(self) -> dict[str, str]:
        """What applies the renderer's edits (editor, model), recorded with each edit."""
        provenance = getattr(self.renderer, "edit_provenance", None)
        return dict(provenance()) if callable(provenance) else {"editor": self.renderer.id}

    def annotate(self, requests: Sequence[AnnotateRequest]) -> list[Annotation]:
        """Annotate a chunk (a batched annotator in one call, others one request at a time)."""
        if self.annotator.capabilities.batched:
            return self.annotator.annotate_batch(list(requests))
        return [self.annotator.annotate_batch([r])[0] for r in requests]
