"""The diffusion renderer family: any diffusers pipeline (hub id or local folder) steered by the layout.

One concern per module: `options` (the contract), `model_files` (where weights are, their hash and size),
`loading` (the per-process pipeline cache), `batching` (padded batches, one generator per sample, retries,
out-of-memory halving), `checks` (NaN / black / safety-blank outputs), `prompts` (scene and object prompts,
DetDiffusion-style difficulty), `control_maps` (layout → segmentation / canny / depth), `references`
(IP-Adapter reference and style images), one module per control mode (`text2image`, `inpaint`,
`controlnet`, `refine`, `gligen`), `edit` (instruction edits) and `renderer` (the backend itself).
Nothing here imports torch or diffusers at module import time.
"""

from synthloop.tools.render.diffusion.options import DiffusionError, DiffusionOptions

__all__ = ["DiffusionError", "DiffusionOptions"]
