"""control: gligen — `StableDiffusionGLIGENPipeline`: the layout's boxes with one phrase each ground the
generation (text-box GLIGEN checkpoints).

Deprecated upstream (moved to diffusers' deprecated pipelines, last supported 0.33.1, warns on construction,
its tests removed): optional, never the default; a diffusers without it gives one clear error at load. Its
grounding inputs are per call, so samples run one at a time. GLIGEN grounds at most 30 boxes: the front-most 30
are grounded and the others listed in the render info as `ungrounded`, never silently dropped.
"""

from __future__ import annotations

import numpy as np

from synthloop.tools.render.diffusion.batching import Stage
from synthloop.tools.render.diffusion.jobs import Job, ModeContext, record
from synthloop.tools.render.diffusion.prompts import object_prompt

TASK = "gligen"
MAX_BOXES = 30


def render(ctx: ModeContext, jobs: list[Job]) -> list[np.ndarray]:
    """uint8 images at the jobs' render size, one pipeline call per job."""
    inputs = []
    for job in jobs:
        layout, spec = job.request.layout, job.request.spec
        order = sorted(range(len(layout.objects)), key=lambda i: (-layout.objects[i].depth, i))
        grounded = sorted(order[:MAX_BOXES])
        if len(order) > MAX_BOXES:
            job.info["ungrounded"] = sorted(order[MAX_BOXES:])
        inputs.append({**job.inputs(),
                       "gligen_phrases": [object_prompt(layout.objects[i], spec) for i in grounded],
                       "gligen_boxes": [list(layout.objects[i].box) for i in grounded]})
        job.info["gligen_beta"] = ctx.options.gligen_beta
    stage = Stage("gligen", ctx.common(jobs[0].size, gligen_scheduled_sampling_beta=ctx.options.gligen_beta),
                  inputs, [j.seed for j in jobs], batchable=False)
    output = ctx.runner.run(stage)
    record(jobs, output)
    return output.images
