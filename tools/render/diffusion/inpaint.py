"""control: inpaint — a background, then each object inpainted into its box (`AutoPipelineForInpainting`:
SD, SDXL, SD3, FLUX Fill; any inpainting checkpoint renders any layout).

1. background: one of `background_images` (chosen by the sample's seed, centre-cropped to the aspect), or
   painted from the scene text by the same pipeline with the whole image masked;
2. objects back to front (layout depth, then index): stage j inpaints every sample's j-th object at once, its
   box as the mask, its class prompt (with attributes and style) as the prompt, a seed derived from the
   sample's seed and j. Only the box is taken from the output: everything outside it stays exactly as the
   previous stage left it, so a later (nearer) object can cover an earlier one but nothing else moves.
Labels come from the model annotators (the object's silhouette inside its box is the model's choice).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthloop.tools.render.diffusion.batching import Stage
from synthloop.tools.render.diffusion.jobs import Job, ModeContext, pil, record
from synthloop.tools.render.diffusion.options import DiffusionError
from synthloop.tools.render.diffusion.prompts import background_prompt, object_prompt, with_terms
from synthloop.tools.render.diffusion.references import IMAGE_SUFFIXES
from synthloop.tools.seeding import derive_seed

TASK = "inpaint"
GREY = 127


def render(ctx: ModeContext, jobs: list[Job]) -> list[np.ndarray]:
    """uint8 images at the jobs' render size: background, then objects painted back to front."""
    size = jobs[0].size
    if ctx.options.background_images:
        images = [background_image(Path(ctx.options.background_images), job.seed, size) for job in jobs]
        for job in jobs:
            job.info["background"] = "image"
    else:
        images = _painted_backgrounds(ctx, jobs, size)
    orders = [sorted(range(len(j.request.layout.objects)),
                     key=lambda i, j=j: (j.request.layout.objects[i].depth, i)) for j in jobs]
    for step in range(max((len(o) for o in orders), default=0)):
        active = [k for k, order in enumerate(orders) if len(order) > step]
        boxes, inputs = {}, []
        for k in active:
            job = jobs[k]
            obj = job.request.layout.objects[orders[k][step]]
            boxes[k] = pixel_box(obj.box, size)
            prompt = with_terms(object_prompt(obj, job.request.spec), job.profile.terms)
            inputs.append({**job.inputs(prompt), "image": pil(images[k]), "mask_image": pil(box_mask(boxes[k], size))})
        stage = Stage(f"object-{step}", ctx.common(size, strength=ctx.options.inpaint_strength), inputs,
                      [derive_seed(jobs[k].seed, "object", step) for k in active])
        output = ctx.runner.run(stage)
        record([jobs[k] for k in active], output)
        for k, generated in zip(active, output.images, strict=True):
            x0, y0, x1, y1 = boxes[k]
            images[k][y0:y1, x0:x1] = generated[y0:y1, x0:x1]
    for job in jobs:
        job.info["strength"] = ctx.options.inpaint_strength
    return images


def _painted_backgrounds(ctx: ModeContext, jobs: list[Job], size: tuple[int, int]) -> list[np.ndarray]:
    width, height = size
    grey = pil(np.full((height, width, 3), GREY, dtype=np.uint8))
    everything = pil(np.full((height, width), 255, dtype=np.uint8))
    inputs = [{**job.inputs(with_terms(background_prompt(job.request.spec), job.profile.terms)), "image": grey,
               "mask_image": everything} for job in jobs]
    output = ctx.runner.run(Stage("background", ctx.common(size, strength=1.0), inputs, [j.seed for j in jobs]))
    record(jobs, output)
    for job in jobs:
        job.info["background"] = "painted"
    return [image.copy() for image in output.images]


def pixel_box(box: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Normalised xyxy → pixel xyxy covering the box (at least one pixel each way)."""
    width, height = size
    x0, y0 = int(np.floor(box[0] * width)), int(np.floor(box[1] * height))
    x1 = max(int(np.ceil(box[2] * width)), x0 + 1)
    y1 = max(int(np.ceil(box[3] * height)), y0 + 1)
    return x0, y0, min(x1, width), min(y1, height)


def box_mask(box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """L-mode mask: 255 inside the pixel box (repaint), 0 elsewhere (keep)."""
    mask = np.zeros((size[1], size[0]), dtype=np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 255
    return mask


def background_image(folder: Path, seed: int, size: tuple[int, int]) -> np.ndarray:
    """A background from `folder` chosen by the seed, centre-cropped to the aspect and resized (uint8 RGB)."""
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DiffusionError(f"background_images {folder}: no images in it")
    path = files[derive_seed(seed, "background") % len(files)]
    try:
        image = Image.open(path).convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise DiffusionError(f"background image {path} cannot be read: {exc}") from exc
    width, height = size
    scale = max(width / image.width, height / image.height)
    crop_w, crop_h = width / scale, height / scale
    left, top = (image.width - crop_w) / 2, (image.height - crop_h) / 2
    image = image.resize(size, Image.Resampling.LANCZOS, box=(left, top, left + crop_w, top + crop_h))
    return np.array(image)
