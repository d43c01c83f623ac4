"""`DiffusionRenderer`: the renderer backend `diffusion`, any diffusers pipeline steered by the layout.

Steps of `render_batch`:
1. check inputs (non-negative seeds);
2. load (once per process) the pipeline the control mode needs (`loading.py`);
3. one `Job` per request: the scene prompt with the difficulty's terms, the torch seed (the request's seed,
   or one derived from it and the model under `seed_policy: derived`), the render size (the layout's,
   scaled up to `min_side`, rounded up to the model's multiple);
4. refine / controlnet: the composite of every request from the composite renderer (copy_paste when
   installed, else compositor, through the RENDERERS registry);
5. IP-Adapter inputs per job when `references` is set;
6. the mode renders jobs grouped by render size and difficulty (`text2image`, `inpaint`, `controlnet`,
   `refine`, `gligen`), through padded batches with one generator per sample (`batching.py`);
7. results at the layout's size; `backend` names model, revision (hub commit, or folder hash for local
   models) and mode; `info` carries steps, guidance, strength, seeds, retries and the composite's own info.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import numpy as np

from synthloop.tools.backend import BackendError, Capabilities
from synthloop.tools.render.base import BaseRenderer, RenderRequest, RenderResult
from synthloop.tools.render.diffusion import controlnet, gligen, inpaint, refine, text2image
from synthloop.tools.render.diffusion.batching import BatchRunner
from synthloop.tools.render.diffusion.jobs import Job, ModeContext, resized
from synthloop.tools.render.diffusion.loading import (
    IPAdapterSpec,
    LoadedPipeline,
    LoadSpec,
    load_pipeline,
    resolve_device,
    resolve_dtype,
)
from synthloop.tools.render.diffusion.options import DiffusionError, DiffusionOptions, parse_options
from synthloop.tools.render.diffusion.prompts import difficulty_profile, scene_prompt, with_terms
from synthloop.tools.seeding import derive_seed

MODES: dict[str, ModuleType] = {"none": text2image, "inpaint": inpaint, "controlnet": controlnet,
                                "refine": refine, "gligen": gligen}
COMPOSITE_THREADS = 8


class DiffusionRenderer(BaseRenderer):
    """Diffusers pipelines (hub id or local folder) steered by the layout: text, inpainting, ControlNet,
    SDEdit of the composite, GLIGEN; IP-Adapter references; instruction edits.

    Options: see `DiffusionOptions` (`synthloop backends` lists them). Instance maps only in `refine` mode
    (the composite's, passed through); other modes need a model annotator. With `edit_model` it declares
    `edits_images`: the loop repairs `edit` verdicts that ask for an image change with `edit_image`.
    """

    id = "diffusion"
    Options = DiffusionOptions
    capabilities = Capabilities(text_conditioned=True, uses_references=True, batched=True, device="auto")
    requires = ("torch", "diffusers", "transformers")

    def __init__(self, **options: Any) -> None:
        self.options = parse_options(options)
        # refine passes the composite's instance map through; an edit model repairs `edit` verdicts.
        self.capabilities = dataclasses.replace(type(self).capabilities,
                                                provides_masks=self.options.control == "refine",
                                                edits_images=bool(self.options.edit_model))
        self.device = resolve_device(self.options.device)
        self.dtype = resolve_dtype(self.options.dtype, self.device)
        self._context: ModeContext | None = None
        self._composite: Any = None
        self._encoder: Any = None
        self._lock = threading.RLock()

    # -- loading ---------------------------------------------------------------------------------------

    def load_spec(self) -> LoadSpec:
        """What this renderer loads (the pipeline cache key)."""
        o = self.options
        ip = IPAdapterSpec(o.ip_adapter, o.ip_adapter_subfolder, o.ip_adapter_weight, o.ip_adapter_image_encoder,
                           o.ip_adapter_scale) if o.ip_adapter else None
        return LoadSpec(model=o.model, task=MODES[o.control].TASK, dtype=self.dtype, device=self.device,
                        revision=o.revision, variant=o.variant, controlnet=o.controlnet, vae=o.vae,
                        scheduler=o.scheduler, ip_adapter=ip, safety_checker=o.safety_checker, compile=o.compile,
                        channels_last=o.channels_last, cpu_offload=o.cpu_offload, cpu_max_params=o.cpu_max_params)

    def pipeline(self) -> LoadedPipeline:
        """The loaded pipeline (loaded now if needed): for benchmarks and inspection."""
        return self.mode_context().runner.loaded

    def mode_context(self) -> ModeContext:
        """The loaded pipeline's runner and call conventions (loaded now if needed)."""
        with self._lock:
            if self._context is None:
                loaded = load_pipeline(self.load_spec())
                runner = BatchRunner(loaded, self.options.batch_size, self.options.max_retries, self.options.guidance)
                accepts = frozenset(inspect.signature(loaded.pipe.__call__).parameters)
                self._context = ModeContext(runner, self.options, accepts)
            return self._context

    def composite_renderer(self) -> Any:
        """The renderer drawing composites for refine / controlnet (built on first use)."""
        with self._lock:
            if self._composite is None:
                from synthloop.tools.render.registry import RENDERERS

                block = self.options.composite or ("copy_paste" if "copy_paste" in RENDERERS else "compositor")
                try:
                    renderer = RENDERERS.build(block)
                except BackendError as exc:
                    raise DiffusionError(f"composite renderer: {exc}") from exc
                if not renderer.capabilities.provides_masks or renderer.id == self.id:
                    raise DiffusionError(f"composite renderer '{renderer.id}' does not draw instance maps; "
                                         "refine and controlnet need a compositing renderer")
                self._composite = renderer
            return self._composite

    def _reference_encoder(self, loaded: LoadedPipeline) -> Any:
        with self._lock:
            if self._encoder is None:
                from synthloop.tools.render.diffusion.references import ReferenceEncoder, ReferenceFolder

                folder = ReferenceFolder.scan(self.options.references or "")
                self._encoder = ReferenceEncoder(folder, loaded.pipe, loaded.execution_device)
            return self._encoder

    # -- rendering -------------------------------------------------------------------------------------

    def render_batch(self, requests: Sequence[RenderRequest]) -> list[RenderResult]:
        """Render every request (results in request order); a sample's pixels depend on its request only."""
        requests = list(requests)
        for request in requests:
            if request.seed < 0:
                raise DiffusionError(f"seed must be >= 0, got {request.seed}")
        if not requests:
            return []
        context = self.mode_context()
        jobs = [self._job(request, context.runner.loaded) for request in requests]
        if self.options.control in ("refine", "controlnet"):
            for job, composite in zip(jobs, self._composites(requests), strict=True):
                job.composite = composite
        if self.options.references:
            encoder = self._reference_encoder(context.runner.loaded)
            for job in jobs:
                encoder.folder.check(job.request.spec)
                job.ip, job.info["references"] = encoder.inputs(job.request.layout, job.request.spec, job.seed,
                                                                job.size)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, job in enumerate(jobs):
            groups.setdefault((job.size, job.request.spec.difficulty), []).append(index)
        images: list[np.ndarray | None] = [None] * len(jobs)
        with self._lock:
            for indices in groups.values():
                rendered = MODES[self.options.control].render(context, [jobs[i] for i in indices])
                for i, image in zip(indices, rendered, strict=True):
                    images[i] = image
        return [self._result(job, image, context) for job, image in zip(jobs, images, strict=True)
                if image is not None]

    def _composites(self, requests: list[RenderRequest]) -> list[RenderResult]:
        """Composites of every request; a per-image (CPU) composite renderer is spread over threads, as the
        engine would spread it."""
        renderer = self.composite_renderer()
        if renderer.capabilities.batched or len(requests) == 1:
            return renderer.render_batch(requests)
        workers = min(len(requests), os.cpu_count() or 1, COMPOSITE_THREADS)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda r: renderer.render_batch([r])[0], requests))

    def _job(self, request: RenderRequest, loaded: LoadedPipeline) -> Job:
        layout, spec = request.layout, request.spec
        profile = difficulty_profile(spec, self.options.difficulty)
        seed = request.seed if self.options.seed_policy == "request" else derive_seed(
            request.seed, "diffusion", self.options.model)
        return Job(request=request, prompt=with_terms(scene_prompt(layout, spec, request.prompt), profile.terms),
                   negative=self.options.negative_prompt, seed=seed,
                   size=render_size(layout.width, layout.height, self.options.min_side, size_multiple(loaded.pipe)),
                   profile=profile)

    def _result(self, job: Job, image: np.ndarray, context: ModeContext) -> RenderResult:
        layout = job.request.layout
        loaded = context.runner.loaded
        o = self.options
        backend = {"renderer": self.id, "model": o.model, "revision": loaded.files.revision, "mode": o.control}
        if o.controlnet:
            backend.update(controlnet=o.controlnet, controlnet_revision=loaded.controlnet_revision)
        if o.ip_adapter:
            backend["ip_adapter"] = o.ip_adapter
        diffusion: dict[str, Any] = {
            "mode": o.control, "steps": o.steps, "guidance": o.guidance, "seed": job.seed,
            "size": list(job.size), "dtype": self.dtype, "device": self.device,
            "scheduler": type(loaded.pipe.scheduler).__name__, "attention": loaded.attention,
            "batch_size": context.runner.batch_size, "negative_prompt": job.negative,
            "difficulty": {"level": job.request.spec.difficulty.value, "terms": job.profile.terms,
                           "control_factor": job.profile.control_factor,
                           "strength_factor": job.profile.strength_factor},
            **job.info,
        }
        if job.retries:
            diffusion["retries"] = job.retries
        if job.defect:
            diffusion["defect"] = job.defect
        info: dict[str, Any] = {}
        instance_map, amodal = None, []
        if job.composite is not None:
            info.update(job.composite.info)
            backend.update(composite=str(job.composite.backend.get("renderer", "")),
                           composite_model=str(job.composite.backend.get("model", "")))
            if o.control == "refine":
                instance_map, amodal = job.composite.instance_map, list(job.composite.amodal_areas)
        info["diffusion"] = diffusion
        pixels = resized(image, (layout.width, layout.height))
        return RenderResult(image=pixels, instance_map=instance_map, amodal_areas=amodal, backend=backend,
                            prompt=job.prompt, info=info)

    # -- instruction edits -----------------------------------------------------------------------------

    def edit_image(self, image: np.ndarray, instruction: str, seed: int) -> np.ndarray:
        """Apply an edit instruction with the configured `edit_model` (InstructPix2Pix); same size out."""
        return self._editor().edit_image(image, instruction, seed)

    def edit_provenance(self) -> dict[str, str]:
        """The edit model and its revision (hub commit or folder hash), recorded with each edit pair."""
        return self._editor().backend

    def _editor(self) -> Any:
        if not self.options.edit_model:
            raise DiffusionError("no edit_model configured for the diffusion renderer (an InstructPix2Pix "
                                 "hub id or folder)")
        from synthloop.tools.render.diffusion.edit import editor

        return editor(self.options.edit_model, steps=self.options.edit_steps, dtype=self.dtype, device=self.device,
                      cpu_max_params=self.options.cpu_max_params)


def size_multiple(pipe: Any) -> int:
    """What the pipeline's height and width must be multiples of: the VAE factor (× 2 for the patchified
    latents of transformer pipelines such as SD3 and FLUX), at least 8."""
    factor = int(getattr(pipe, "vae_scale_factor", 8))
    if getattr(pipe, "transformer", None) is not None:
        factor *= 2
    return max(8, factor)


def render_size(width: int, height: int, min_side: int, multiple: int) -> tuple[int, int]:
    """The size the pipeline renders at: the layout's, scaled up so its short side reaches `min_side`,
    rounded up to `multiple`."""
    scale = max(1.0, min_side / min(width, height)) if min_side else 1.0
    return (math.ceil(width * scale / multiple) * multiple, math.ceil(height * scale / multiple) * multiple)
