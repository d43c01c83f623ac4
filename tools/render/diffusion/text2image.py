"""control: none — text to image (`AutoPipelineForText2Image`: SD 1.5, SDXL, SDXL-Turbo, SD3, FLUX).

The layout reaches the image only through the prompt (its objects with counts); labels come from the model
annotators (detector + SAM), as in DataDreamer.
"""

from __future__ import annotations

import numpy as np

from synthloop.tools.render.diffusion.batching import Stage
from synthloop.tools.render.diffusion.jobs import Job, ModeContext, record

TASK = "text2image"


def render(ctx: ModeContext, jobs: list[Job]) -> list[np.ndarray]:
    """uint8 images at the jobs' (shared) render size, in job order."""
    stage = Stage("text2image", ctx.common(jobs[0].size), [j.inputs() for j in jobs], [j.seed for j in jobs])
    output = ctx.runner.run(stage)
    record(jobs, output)
    return output.images
