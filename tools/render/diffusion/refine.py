"""control: refine — SDEdit (`AutoPipelineForImage2Image`) of the copy-paste composite at a set strength.

The composite's geometry is kept and its appearance harmonised; its exact instance map is passed through as
the labels (to be verified downstream by SAM / detector annotators, which reject labels that drifted). The
strength is the option scaled by the difficulty profile (at most 0.95, so some of the composite survives).
"""

from __future__ import annotations

import numpy as np

from synthloop.tools.render.diffusion.batching import Stage
from synthloop.tools.render.diffusion.jobs import Job, ModeContext, pil, record, resized
from synthloop.tools.render.diffusion.prompts import MAX_REFINE_STRENGTH

TASK = "image2image"


def strength(ctx: ModeContext, job: Job) -> float:
    """The SDEdit strength of a job: the option × its difficulty factor, capped."""
    return round(min(ctx.options.strength * job.profile.strength_factor, MAX_REFINE_STRENGTH), 4)


def render(ctx: ModeContext, jobs: list[Job]) -> list[np.ndarray]:
    """uint8 images at the jobs' render size: each job's composite re-noised and denoised."""
    value = strength(ctx, jobs[0])
    common = ctx.common(jobs[0].size, strength=value)
    inputs = []
    for job in jobs:
        assert job.composite is not None, "refine jobs carry their composite"
        inputs.append({**job.inputs(), "image": pil(resized(job.composite.image, job.size))})
        job.info.update(strength=value, denoise_steps=int(common["num_inference_steps"] * value))
    stage = Stage("refine", common, inputs, [j.seed for j in jobs])
    output = ctx.runner.run(stage)
    record(jobs, output)
    return output.images
