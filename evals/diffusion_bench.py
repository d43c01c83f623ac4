"""`synthloop bench --renderer diffusion`: synthloop's diffusion render path against a plain diffusers loop.

Real-size architectures with random weights: the UNet, VAE and text encoder(s) of SD 1.5 and SDXL are written
out below as configs (the published models' shapes, so the same parameter counts and FLOPs; the counts are
printed), saved once in diffusers' folder format, and loaded by `DiffusionRenderer` through `from_pretrained`
as a hub checkpoint would be. The tokenizer is a character vocabulary (prompts are padded to 77 tokens either
way, so text-encoder FLOPs are the real ones).

In one run, on the same pipeline object, at the same batch, steps, guidance, size and prompts:
- raw: `pipe(prompt=[…], negative_prompt=[…], generator=[one per image], …)` over the batches, PIL images out
  (what a plain diffusers script does), plus the composites / control maps precomputed for refine and
  controlnet (a plain loop is handed its inputs);
- synthloop: `DiffusionRenderer.render_batch` on the same requests: prompts, composites and control maps
  drawn, padded batches with CPU generators, output checks, uint8 pixels, `RenderResult`s.
Each is timed `repeats` times, alternating, after one warm-up batch each; images/s from the median; the
ratio is synthloop / raw (target ≥ 0.95 on a GPU). Measured and printed, never asserted.

GPU commands (H200): `synthloop bench --renderer diffusion --arch sd15 --steps 20 --batch 8` (512²) and
`synthloop bench --renderer diffusion --arch sdxl --steps 4 --batch 4` (1024²).
"""

from __future__ import annotations

import gc
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ARCHS = ("sd15", "sdxl")
NATIVE_SIZE = {"sd15": 512, "sdxl": 1024}
DEFAULT_GUIDANCE = {"sd15": 7.5, "sdxl": 0.0}  # SDXL at 4 steps is the distilled (turbo / lightning) regime
BENCH_CONTROLS = ("none", "refine", "controlnet")
MARKER = "synthloop-bench.json"


def unet_config(arch: str) -> dict[str, Any]:
    """UNet2DConditionModel config of the real model."""
    if arch == "sd15":
        return {"sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
                "block_out_channels": (320, 640, 1280, 1280), "cross_attention_dim": 768, "attention_head_dim": 8,
                "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                     "DownBlock2D"),
                "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")}
    return {"sample_size": 128, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
            "block_out_channels": (320, 640, 1280), "cross_attention_dim": 2048, "attention_head_dim": (5, 10, 20),
            "transformer_layers_per_block": (1, 2, 10), "use_linear_projection": True,
            "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
            "projection_class_embeddings_input_dim": 2816,
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D")}


def vae_config(arch: str) -> dict[str, Any]:
    """AutoencoderKL config (SD 1.5 and SDXL share the architecture; SDXL decodes in float32 by default)."""
    config = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2,
              "block_out_channels": (128, 256, 512, 512), "down_block_types": ("DownEncoderBlock2D",) * 4,
              "up_block_types": ("UpDecoderBlock2D",) * 4, "sample_size": NATIVE_SIZE[arch]}
    if arch == "sdxl":
        config.update(scaling_factor=0.13025, force_upcast=True)
    else:
        config.update(scaling_factor=0.18215)
    return config


def text_configs(arch: str) -> list[dict[str, Any]]:
    """CLIPTextConfig kwargs: CLIP ViT-L/14 (both), plus OpenCLIP bigG/14 with projection for SDXL."""
    clip_l = {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
              "num_attention_heads": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu",
              "projection_dim": 768, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}
    if arch == "sd15":
        return [clip_l]
    big_g = {**clip_l, "hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
             "num_attention_heads": 20, "hidden_act": "gelu", "projection_dim": 1280}
    return [clip_l, big_g]


def write_tokenizer(folder: Path) -> Path:
    """A CLIP tokenizer folder with a character vocabulary (offline; prompts still pad to 77 tokens)."""
    import string

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in string.ascii_lowercase + string.digits + string.punctuation:
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(f"{char}</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 77}))
    return folder


def build_components(arch: str, device: str = "cpu", dtype: str = "float32",
                     controlnet: bool = False) -> dict[str, Any]:
    """Random-weight models of the real sizes, built on `device` (fast init on a GPU), in `dtype`."""
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    configs = text_configs(arch)
    with torch.device(device):
        parts: dict[str, Any] = {"unet": UNet2DConditionModel(**unet_config(arch)),
                                 "vae": AutoencoderKL(**vae_config(arch)),
                                 "text_encoder": CLIPTextModel(CLIPTextConfig(**configs[0]))}
        if arch == "sdxl":
            parts["text_encoder_2"] = CLIPTextModelWithProjection(CLIPTextConfig(**configs[1]))
        if controlnet:
            parts["controlnet"] = ControlNetModel.from_unet(parts["unet"])
    if dtype != "float32":
        parts = {name: module.to(getattr(torch, dtype)) for name, module in parts.items()}
    return parts


def parameter_counts(arch: str) -> dict[str, int]:
    """Parameters per component, counted on the meta device (no memory, no init)."""
    import torch

    with torch.device("meta"):
        parts = build_components(arch, device="meta")
    return {name: sum(p.numel() for p in module.parameters()) for name, module in parts.items()}


def save_random_pipeline(arch: str, folder: Path, device: str, dtype: str, controlnet: bool) -> None:
    """Build and save the random pipeline (and ControlNet) once; a marker records what the folder holds."""
    marker = folder / MARKER
    wanted = {"arch": arch, "dtype": dtype, "controlnet": controlnet}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return
    import torch
    from diffusers import EulerDiscreteScheduler, PNDMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    parts = build_components(arch, device=device, dtype=dtype, controlnet=controlnet)
    tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(folder.parent / f"{folder.name}-tokenizer"))
    common = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1}
    net = parts.pop("controlnet", None)
    if arch == "sd15":
        pipe = StableDiffusionPipeline(**parts, tokenizer=tokenizer, safety_checker=None, feature_extractor=None,
                                       scheduler=PNDMScheduler(**common, skip_prk_steps=True, set_alpha_to_one=False),
                                       requires_safety_checker=False)
    else:
        pipe = StableDiffusionXLPipeline(**parts, tokenizer=tokenizer, tokenizer_2=tokenizer,
                                         scheduler=EulerDiscreteScheduler(**common, timestep_spacing="leading"))
    pipe.save_pretrained(folder)
    if net is not None:
        net.save_pretrained(folder.parent / f"{folder.name}-controlnet-seg")
    marker.write_text(json.dumps(wanted))
    del pipe, parts, net
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass
class DiffusionBenchResult:
    """Images per second of both paths and their ratio, with the setting they were measured at."""

    arch: str
    control: str
    size: int
    steps: int
    batch: int
    n: int
    guidance: float
    dtype: str
    device: str
    params: dict[str, int]
    raw_seconds: list[float] = field(default_factory=list)
    synthloop_seconds: list[float] = field(default_factory=list)
    raw_ips: float = 0.0
    synthloop_ips: float = 0.0
    ratio: float = 0.0
    defects: int = 0
    setup_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _requests(n: int, size: int, seed: int) -> list[Any]:
    from synthloop.tools.layout.procedural import ProceduralLayoutSampler
    from synthloop.tools.render.base import RenderRequest
    from synthloop.tools.render.compositor import scene_prompt
    from synthloop.tools.seeding import derive_seed
    from synthloop.tools.types import ObjectSpec, TaskSpec

    spec = TaskSpec(objects=[ObjectSpec(name="cup", max_count=3), ObjectSpec(name="plate", max_count=2)],
                    n_images=n, width=size, height=size, scene="kitchen table", seed=seed)
    sampler = ProceduralLayoutSampler()
    requests = []
    for index in range(n):
        layout = sampler.sample(spec, derive_seed(seed, "layout", index))
        requests.append(RenderRequest(layout, spec, derive_seed(seed, "render", index),
                                      prompt=f"a photo of {scene_prompt(layout, spec)}"))
    return requests


def _raw_inputs(renderer: Any, requests: list[Any], control: str) -> list[dict[str, Any]]:
    """What a plain loop is handed: per image its prompt and (refine / controlnet) its image input."""
    from PIL import Image

    from synthloop.tools.render.diffusion.control_maps import segmentation_map

    inputs = []
    for request in requests:
        item: dict[str, Any] = {"prompt": request.prompt}
        if control != "none":
            composite = renderer.composite_renderer().render(request.layout, request.spec, request.seed)
            image = composite.image if control == "refine" else segmentation_map(
                request.layout, composite.instance_map, request.spec)[0]
            item["image"] = Image.fromarray(image)
        inputs.append(item)
    return inputs


def _raw_loop(pipe: Any, inputs: list[dict[str, Any]], requests: list[Any], batch: int, common: dict[str, Any],
              negative: str, device: str) -> int:
    import torch

    made = 0
    for start in range(0, len(inputs), batch):
        chunk = inputs[start:start + batch]
        kwargs = {**common, "prompt": [c["prompt"] for c in chunk], "negative_prompt": [negative] * len(chunk)}
        if "image" in chunk[0]:
            kwargs["image"] = [c["image"] for c in chunk]
        generators = [torch.Generator(device).manual_seed(r.seed) for r in requests[start:start + batch]]
        made += len(pipe(**kwargs, generator=generators).images)
    return made


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_diffusion_bench(arch: str = "sd15", control: str = "none", steps: int = 20, batch: int = 8,
                        size: int | None = None, n: int | None = None, guidance: float | None = None,
                        dtype: str = "auto", device: str = "auto", repeats: int = 3, work_dir: Path | None = None,
                        compile: bool = False, seed: int = 0) -> DiffusionBenchResult:
    """Build (once) the random real-size model, then time raw diffusers and synthloop's path alternately."""
    from synthloop.tools.render.diffusion.loading import resolve_device, resolve_dtype
    from synthloop.tools.render.diffusion.renderer import DiffusionRenderer

    if arch not in ARCHS:
        raise ValueError(f"--arch must be one of {', '.join(ARCHS)}, got {arch}")
    if control not in BENCH_CONTROLS:
        raise ValueError(f"--control for the bench is one of {', '.join(BENCH_CONTROLS)} (inpaint and gligen run "
                         f"several passes per image, which a plain loop has no single equivalent of), got {control}")
    started = time.perf_counter()
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    size = size or NATIVE_SIZE[arch]
    n = n or 4 * batch
    guidance = DEFAULT_GUIDANCE[arch] if guidance is None else guidance
    work = Path(work_dir) if work_dir else Path(tempfile.gettempdir()) / "synthloop-diffusion-bench"
    folder = work / f"{arch}-{dtype}"
    save_random_pipeline(arch, folder, device, dtype, controlnet=control == "controlnet")
    options: dict[str, Any] = {"model": str(folder), "control": control, "steps": steps, "guidance": guidance,
                               "dtype": dtype, "device": device, "batch_size": batch, "max_retries": 0,
                               "compile": compile, "cpu_max_params": 1e12}
    if control != "none":
        options["composite"] = "compositor"
    if control == "controlnet":
        options.update(controlnet=str(work / f"{folder.name}-controlnet-seg"), control_map="segmentation")
    renderer = DiffusionRenderer(**options)
    requests = _requests(n, size, seed)
    renderer.render_batch(requests[:batch])  # load and warm up
    pipe = renderer.pipeline().pipe
    negative = renderer.options.negative_prompt
    # The same call arguments the renderer uses (steps lengthened for strength as it does).
    strength = renderer.options.strength if control == "refine" else None
    common = renderer.mode_context().common((size, size), strength=strength)
    if control == "controlnet":
        common["controlnet_conditioning_scale"] = renderer.options.control_scale
    raw_inputs = _raw_inputs(renderer, requests, control)
    _raw_loop(pipe, raw_inputs[:batch], requests[:batch], batch, common, negative, device)  # warm-up
    result = DiffusionBenchResult(arch=arch, control=control, size=size, steps=steps, batch=batch, n=n,
                                  guidance=guidance, dtype=dtype, device=device, params=parameter_counts(arch))
    result.setup_seconds = round(time.perf_counter() - started, 2)
    for _ in range(repeats):
        _sync(device)
        begin = time.perf_counter()
        _raw_loop(pipe, raw_inputs, requests, batch, common, negative, device)
        _sync(device)
        result.raw_seconds.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        rendered = renderer.render_batch(requests)
        _sync(device)
        result.synthloop_seconds.append(time.perf_counter() - begin)
        result.defects = sum(1 for r in rendered if r.info["diffusion"].get("defect"))
    result.raw_ips = n / statistics.median(result.raw_seconds)
    result.synthloop_ips = n / statistics.median(result.synthloop_seconds)
    result.ratio = result.synthloop_ips / result.raw_ips
    return result


def format_diffusion_bench(result: DiffusionBenchResult) -> str:
    """Human-readable report of one bench run."""
    params = ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in result.params.items())
    total = sum(result.params.values()) / 1e9
    return "\n".join([
        f"diffusion bench: {result.arch} (random weights, real size: {total:.2f} B parameters — {params})",
        f"  control {result.control}, {result.size}x{result.size}, {result.steps} steps, batch {result.batch}, "
        f"{result.n} images, guidance {result.guidance}, {result.dtype} on {result.device}",
        f"  raw diffusers loop   {result.raw_ips:8.3f} images/s   (runs: "
        f"{', '.join(f'{s:.2f}' for s in result.raw_seconds)} s)",
        f"  synthloop render     {result.synthloop_ips:8.3f} images/s   (runs: "
        f"{', '.join(f'{s:.2f}' for s in result.synthloop_seconds)} s)",
        f"  ratio synthloop/raw  {result.ratio:8.3f}   (target >= 0.95 on a GPU)",
        f"  outputs flagged by the checks: {result.defects} (random weights; not retried in the bench)",
        f"  setup (build, save, load, warm-up): {result.setup_seconds:.1f} s",
    ])
