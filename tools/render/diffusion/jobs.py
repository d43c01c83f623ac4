"""What the control modes share: one `Job` per requested image and the `ModeContext` they render through.

The renderer groups jobs so that every job handed to a mode at once has the same render size and the same
difficulty (pipeline arguments such as height, strength and conditioning scale are per call, not per sample).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthloop.tools.render.base import RenderRequest, RenderResult
from synthloop.tools.render.diffusion.batching import BatchRunner, StageOutput
from synthloop.tools.render.diffusion.options import DiffusionOptions
from synthloop.tools.render.diffusion.prompts import DifficultyProfile


@dataclass
class Job:
    """One image to render: its request, final prompts, torch seed, render size and what it was made from."""

    request: RenderRequest
    prompt: str
    negative: str
    seed: int
    size: tuple[int, int]  # (width, height) the pipeline renders at
    profile: DifficultyProfile
    composite: RenderResult | None = None
    ip: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    retries: list[dict[str, Any]] = field(default_factory=list)
    defect: str | None = None

    def inputs(self, prompt: str | None = None) -> dict[str, Any]:
        """Per-sample pipeline inputs every mode passes: prompt, negative prompt, IP-Adapter inputs."""
        return {"prompt": self.prompt if prompt is None else prompt, "negative_prompt": self.negative, **self.ip}


@dataclass
class ModeContext:
    """The loaded pipeline's runner, the options, and the keyword arguments its `__call__` accepts."""

    runner: BatchRunner
    options: DiffusionOptions
    accepts: frozenset[str]

    def common(self, size: tuple[int, int], strength: float | None = None, **extra: Any) -> dict[str, Any]:
        """Call arguments shared by a stage: steps, guidance, strength, and the size where the pipeline takes
        one. With a strength, diffusers runs int(steps × strength) steps: the schedule is lengthened so at
        least one runs."""
        steps = self.options.steps
        kwargs: dict[str, Any] = {"guidance_scale": self.options.guidance}
        if strength is not None:
            steps = max(steps, math.ceil(1.0 / strength - 1e-9))
            kwargs["strength"] = strength
        kwargs["num_inference_steps"] = steps
        if "height" in self.accepts:
            kwargs.update(height=size[1], width=size[0])
        kwargs.update(extra)
        return kwargs


def record(jobs: list[Job], output: StageOutput) -> None:
    """Keep each job's final seed, its retries and any defect that survived them."""
    for job, seed, retries, defect in zip(jobs, output.seeds, output.retries, output.defects, strict=True):
        job.retries.extend(retries)
        job.defect = defect or job.defect
        if retries:
            job.info.setdefault("retry_seeds", {})[retries[0]["stage"]] = seed


def resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An RGB uint8 image at (width, height) (Lanczos; unchanged when already that size)."""
    if (image.shape[1], image.shape[0]) == size:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def pil(image: np.ndarray) -> Any:
    """uint8 RGB (or L) array → PIL image (what pipelines take as image inputs)."""
    from PIL import Image

    return Image.fromarray(image)
