"""Batched pipeline calls: one `torch.Generator` per sample, fixed padded shapes, retries, OOM halving.

- Every sample draws its noise from its own CPU generator seeded with its own seed, so its noise never
  depends on its neighbours (nor on the device: CPU noise is moved to the GPU).
- Every call is padded to the batch size with copies of its last sample (their outputs are dropped): float
  kernels pick their algorithm by tensor shape, so a fixed shape is what makes a sample's pixels identical
  whatever else is in its batch and wherever it sits in it (measured: unpadded batches of 1 and 3 differ by
  one level in a few pixels on the CPU; padded ones are bit-identical).
- An output that fails `checks.output_defect` (NaN, safety-blanked, black, flat) is rendered again with a
  new seed derived from the old one, up to `max_retries` times; each retry is recorded.
- CUDA out-of-memory halves the batch size (kept halved for later calls) and the call goes on.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthloop.tools.render.diffusion.checks import checked_pixels
from synthloop.tools.render.diffusion.loading import LoadedPipeline
from synthloop.tools.render.diffusion.options import DiffusionError
from synthloop.tools.seeding import derive_seed

logger = logging.getLogger(__name__)

IP_KEYS = ("ip_embeds", "ip_negative", "ip_masks")


@dataclass
class Stage:
    """One pipeline pass over some samples: shared call arguments, per-sample inputs and torch seeds.

    `batchable` False (GLIGEN, whose grounding inputs are per call) runs the samples one at a time.
    """

    name: str
    common: dict[str, Any]
    inputs: list[dict[str, Any]]
    seeds: list[int]
    batchable: bool = True


@dataclass
class StageOutput:
    """uint8 (H, W, 3) images in sample order, the seed that made each, retries and unresolved defects."""

    images: list[np.ndarray]
    seeds: list[int]
    retries: list[list[dict[str, Any]]] = field(default_factory=list)
    defects: list[str | None] = field(default_factory=list)


class BatchRunner:
    """Runs stages through one loaded pipeline at a batch size that shrinks on out-of-memory."""

    def __init__(self, loaded: LoadedPipeline, batch_size: int, max_retries: int, guidance: float) -> None:
        self.loaded = loaded
        self.batch_size = batch_size
        self.max_retries = max_retries
        net = getattr(loaded.pipe, "unet", None)
        # The pipelines' own rule for classifier-free guidance (IP-Adapter inputs must match its batch layout).
        self.cfg = guidance > 1.0 and getattr(getattr(net, "config", None), "time_cond_proj_dim", None) is None
        # Some pipelines (FLUX before true CFG) take no negative prompt: it is left out for them, and said so once.
        self.takes_negative = "negative_prompt" in inspect.signature(loaded.pipe.__call__).parameters
        if not self.takes_negative:
            logger.info("diffusion: %s takes no negative prompt; none is sent", type(loaded.pipe).__name__)

    def run(self, stage: Stage) -> StageOutput:
        """Every sample of the stage, re-rendering defective outputs with derived seeds."""
        n = len(stage.inputs)
        seeds = list(stage.seeds)
        images: list[np.ndarray | None] = [None] * n
        retries: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        defects: list[str | None] = [None] * n
        pending = list(range(n))
        for attempt in range(self.max_retries + 1):
            outputs = self._call_all(stage, pending, seeds)
            still = []
            for index, (image, defect) in zip(pending, outputs, strict=True):
                images[index] = image
                defects[index] = defect
                if defect is None:
                    continue
                retries[index].append({"stage": stage.name, "seed": seeds[index], "defect": defect})
                if attempt < self.max_retries:
                    seeds[index] = derive_seed(seeds[index], "retry", attempt + 1)
                    still.append(index)
                else:
                    logger.warning("diffusion %s: output still %s after %d retries (seed %d)", stage.name, defect,
                                   self.max_retries, seeds[index])
            pending = still
            if not pending:
                break
        return StageOutput([img for img in images if img is not None], seeds, retries, defects)

    def _call_all(self, stage: Stage, indices: list[int], seeds: list[int]) -> list[tuple[np.ndarray, str | None]]:
        import torch

        oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
        results: list[tuple[np.ndarray, str | None]] = []
        position = 0
        while position < len(indices):
            size = self.batch_size if stage.batchable else 1
            chunk = indices[position:position + size]
            try:
                results.extend(self._call(stage, chunk, seeds, size))
            except oom as exc:
                if size == 1:
                    raise DiffusionError("out of GPU memory at batch size 1: use cpu_offload: model, dtype "
                                         "float16, or a smaller min_side") from exc
                self.batch_size = max(1, size // 2)
                logger.warning("diffusion: CUDA out of memory at batch %d, going on with batch %d", size,
                               self.batch_size)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            position += len(chunk)
        return results

    def _call(self, stage: Stage, chunk: list[int], seeds: list[int],
              size: int) -> list[tuple[np.ndarray, str | None]]:
        import torch

        members = chunk + [chunk[-1]] * (size - len(chunk))
        generators = [torch.Generator("cpu").manual_seed(seeds[i]) for i in members]
        kwargs = combine_inputs(stage.common, [stage.inputs[i] for i in members], self.cfg, stage.batchable)
        if not self.takes_negative:
            kwargs.pop("negative_prompt", None)
        with self.loaded.lock, torch.inference_mode():
            output = self.loaded.pipe(**kwargs, generator=generators if stage.batchable else generators[0],
                                      output_type="pt")
            images = output.images[:len(chunk)]
            flags = [bool(f) for f in (getattr(output, "nsfw_content_detected", None) or [False] * len(members))]
            pixels, defects = checked_pixels(images, flags[:len(chunk)])
        return list(zip(pixels, defects, strict=True))


def combine_inputs(common: dict[str, Any], inputs: list[dict[str, Any]], cfg: bool,
                   batchable: bool = True) -> dict[str, Any]:
    """Per-sample inputs → one call's keyword arguments (lists, or stacked IP-Adapter tensors laid out as the
    pipeline's guidance batch expects: negatives first)."""
    import torch

    kwargs = dict(common)
    for key in inputs[0]:
        if key not in IP_KEYS:
            kwargs[key] = [s[key] for s in inputs] if batchable else inputs[0][key]
    if "ip_embeds" in inputs[0]:
        positive = torch.stack([s["ip_embeds"] for s in inputs])
        negative = torch.stack([s["ip_negative"] for s in inputs])
        kwargs["ip_adapter_image_embeds"] = [torch.cat([negative, positive]) if cfg else positive]
        if inputs[0].get("ip_masks") is not None:
            masks = torch.stack([s["ip_masks"] for s in inputs])
            kwargs["cross_attention_kwargs"] = {"ip_adapter_masks": [torch.cat([masks, masks]) if cfg else masks]}
    return kwargs
