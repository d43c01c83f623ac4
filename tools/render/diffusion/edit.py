"""Instruction edits (InstructDiffusion-style repairs): an image and an instruction in, the edited image out.

`edit_image(image, instruction, seed, model=…)` runs an InstructPix2Pix pipeline (`StableDiffusionInstruct
Pix2PixPipeline`, hub id or local folder, loaded once per process through the same cache as the renderer) on
the image at its own size (rounded up to a multiple of 8 for the model, resized back). Same image +
instruction + seed → same pixels. NaN / black outputs are re-run with derived seeds like renders are.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from synthloop.tools.render.diffusion.batching import BatchRunner, Stage
from synthloop.tools.render.diffusion.jobs import pil, resized
from synthloop.tools.render.diffusion.loading import LoadSpec, load_pipeline, resolve_device, resolve_dtype
from synthloop.tools.render.diffusion.options import DiffusionError

MULTIPLE = 8


class InstructionEditor:
    """An InstructPix2Pix model ready to apply instructions.

    steps: denoising steps; guidance: how strongly the instruction is followed; image_guidance: how strongly
    the source image is kept (InstructPix2Pix's second guidance scale).
    """

    def __init__(self, model: str, *, steps: int = 20, guidance: float = 7.5, image_guidance: float = 1.5,
                 dtype: str = "auto", device: str = "auto", revision: str | None = None, max_retries: int = 2,
                 cpu_max_params: float = 2.0e9) -> None:
        if steps < 1:
            raise DiffusionError(f"edit steps must be >= 1, got {steps}")
        self.device = resolve_device(device)
        self.spec = LoadSpec(model=model, task="instruct_pix2pix", dtype=resolve_dtype(dtype, self.device),
                             device=self.device, revision=revision, cpu_max_params=cpu_max_params)
        self.steps, self.guidance, self.image_guidance = steps, guidance, image_guidance
        self.max_retries = max_retries
        self._runner: BatchRunner | None = None
        self._lock = threading.Lock()

    def _loaded(self) -> BatchRunner:
        with self._lock:
            if self._runner is None:
                self._runner = BatchRunner(load_pipeline(self.spec), 1, self.max_retries, self.guidance)
            return self._runner

    @property
    def backend(self) -> dict[str, str]:
        """Provenance of the edits: editor id, model and its revision or folder hash."""
        runner = self._loaded()
        return {"editor": "instruct_pix2pix", "model": self.spec.model, "revision": runner.loaded.files.revision}

    def edit_image(self, image: np.ndarray, instruction: str, seed: int) -> np.ndarray:
        """The edited (H, W, 3) uint8 image (same size as `image`)."""
        if not instruction.strip():
            raise DiffusionError("an edit needs a non-empty instruction")
        if seed < 0:
            raise DiffusionError(f"seed must be >= 0, got {seed}")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise DiffusionError(f"edit_image takes an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        size = (-(-width // MULTIPLE) * MULTIPLE, -(-height // MULTIPLE) * MULTIPLE)
        runner = self._loaded()
        common: dict[str, Any] = {"num_inference_steps": self.steps, "guidance_scale": self.guidance,
                                  "image_guidance_scale": self.image_guidance}
        stage = Stage("edit", common, [{"prompt": instruction.strip(), "image": pil(resized(image, size))}], [seed])
        output = runner.run(stage)
        return resized(output.images[0], (width, height))


_EDITORS: dict[tuple[Any, ...], InstructionEditor] = {}
_EDITORS_LOCK = threading.Lock()


def editor(model: str, **options: Any) -> InstructionEditor:
    """The process-wide editor for `model` with these options (built once)."""
    key = (model, *sorted(options.items()))
    with _EDITORS_LOCK:
        if key not in _EDITORS:
            _EDITORS[key] = InstructionEditor(model, **options)
        return _EDITORS[key]


def edit_image(image: np.ndarray, instruction: str, seed: int, *, model: str, **options: Any) -> np.ndarray:
    """Apply `instruction` to `image` with the InstructPix2Pix model `model` (options: steps, guidance,
    image_guidance, dtype, device, revision)."""
    return editor(model, **options).edit_image(image, instruction, seed)
