"""control: controlnet — ControlNet conditioned on a map drawn from the layout (SD 1.5 / SDXL / SD3 / FLUX
ControlNet pipelines through `AutoPipelineForText2Image(controlnet=…)`).

The map is an ADE20K segmentation of the composite's visible object shapes for segmentation ControlNets, or
the composite's canny edges or depth for the others (`control_maps.py`). The conditioning scale is the option
times the difficulty profile's factor. Labels come from the model annotators: a ControlNet follows its map
closely but not to the pixel.
"""

from __future__ import annotations

import numpy as np

from synthloop.tools.render.diffusion.batching import Stage
from synthloop.tools.render.diffusion.control_maps import canny_map, depth_map, map_kind, segmentation_map
from synthloop.tools.render.diffusion.jobs import Job, ModeContext, pil, record, resized

TASK = "text2image"


def control_image(kind: str, job: Job) -> tuple[np.ndarray, dict[str, str]]:
    """The job's control map at layout size, and (segmentation) the ADE20K class each spec class became."""
    composite = job.composite
    assert composite is not None and composite.instance_map is not None, "controlnet jobs carry their composite"
    layout = job.request.layout
    if kind == "segmentation":
        return segmentation_map(layout, composite.instance_map, job.request.spec)
    if kind == "canny":
        return canny_map(composite.image), {}
    return depth_map(layout, composite.instance_map), {}


def render(ctx: ModeContext, jobs: list[Job]) -> list[np.ndarray]:
    """uint8 images at the jobs' render size, each following its own control map."""
    kind = map_kind(ctx.options.control_map, ctx.options.controlnet or "")
    scale = round(min(ctx.options.control_scale * jobs[0].profile.control_factor, 2.0), 4)
    key = "control_image" if "control_image" in ctx.accepts else "image"
    inputs = []
    for job in jobs:
        image, classes = control_image(kind, job)
        inputs.append({**job.inputs(), key: pil(resized(image, job.size))})
        job.info.update(control_map=kind, control_scale=scale)
        if classes:
            job.info["ade20k_classes"] = classes
    stage = Stage("controlnet", ctx.common(jobs[0].size, controlnet_conditioning_scale=scale), inputs,
                  [j.seed for j in jobs])
    output = ctx.runner.run(stage)
    record(jobs, output)
    return output.images
