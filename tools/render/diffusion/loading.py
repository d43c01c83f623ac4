"""Pipelines loaded once per process and kept: a cache keyed by everything that changes the loaded weights
(model, revision, variant, dtype, device, task, ControlNet, VAE, scheduler, IP-Adapter, placement).

Each task loads its pipeline class straight from the model folder through `from_pretrained`, exactly as a hub
id would (`AutoPipelineForText2Image` / `…Inpainting` / `…Image2Image`, the GLIGEN and InstructPix2Pix
pipelines). Placement happens here too: device, dtype, SDPA attention (diffusers' default on torch 2,
recorded), optional channels_last, `torch.compile` and model CPU offload. On the CPU a model whose parameter
count (read from the weight files before loading) exceeds `cpu_max_params`, or the free memory, is refused
with one line.
"""

from __future__ import annotations

import json
import logging
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from synthloop.tools.render.diffusion.model_files import (
    ModelFiles,
    check_fits_cpu,
    folder_hash,
    hub_revision,
    is_local,
    parameter_count,
    resolve_model,
)
from synthloop.tools.render.diffusion.options import DiffusionError

logger = logging.getLogger(__name__)

Task = Literal["text2image", "inpaint", "image2image", "gligen", "instruct_pix2pix"]


@dataclass(frozen=True)
class IPAdapterSpec:
    """Where an IP-Adapter's weights and image encoder are."""

    location: str
    subfolder: str
    weight: str
    image_encoder: str
    scale: float


@dataclass(frozen=True)
class LoadSpec:
    """Everything that decides which weights are loaded and where; the cache key."""

    model: str
    task: Task
    dtype: str
    device: str
    revision: str | None = None
    variant: str | None = None
    controlnet: str | None = None
    vae: str | None = None
    scheduler: str | None = None
    ip_adapter: IPAdapterSpec | None = None
    safety_checker: bool = True
    compile: bool = False
    channels_last: bool = False
    cpu_offload: str = "none"
    cpu_max_params: float = 2.0e9


@dataclass
class LoadedPipeline:
    """A ready pipeline with its provenance; `lock` serialises calls into it."""

    pipe: Any
    spec: LoadSpec
    files: ModelFiles
    params: int
    attention: str
    controlnet_revision: str = ""
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def execution_device(self) -> str:
        """Where the pipeline computes (the GPU under CPU offload)."""
        return str(getattr(self.pipe, "_execution_device", self.spec.device))


_CACHE: dict[LoadSpec, LoadedPipeline] = {}
_LOAD_LOCK = threading.Lock()


def resolve_device(name: str) -> str:
    """auto → cuda when a GPU is visible, else cpu; cuda without a GPU is an error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DiffusionError(f"device {name}: no CUDA GPU is visible here (use device auto or cpu)")
    return name


def resolve_dtype(name: str, device: str) -> str:
    """auto → float16 on a GPU, float32 on the CPU; float16 on the CPU is refused (slow, unsupported ops)."""
    if name == "auto":
        return "float32" if device == "cpu" else "float16"
    if name == "float16" and device == "cpu":
        raise DiffusionError("dtype float16 needs a GPU; on the CPU use float32 (default) or bfloat16")
    return name


def load_pipeline(spec: LoadSpec) -> LoadedPipeline:
    """The pipeline for `spec`, loaded on first use and kept for the life of the process."""
    with _LOAD_LOCK:
        loaded = _CACHE.get(spec)
        if loaded is None:
            loaded = _load(spec)
            _CACHE[spec] = loaded
        return loaded


def clear_cache() -> None:
    """Drop every cached pipeline (tests, or a long-lived process switching models)."""
    with _LOAD_LOCK:
        _CACHE.clear()


def _pipeline_class(task: Task) -> Any:
    import diffusers

    if task == "gligen":
        cls = getattr(diffusers, "StableDiffusionGLIGENPipeline", None)
        if cls is None:
            raise DiffusionError(
                f"control 'gligen' needs StableDiffusionGLIGENPipeline, which diffusers {diffusers.__version__} "
                "no longer has (deprecated upstream, last supported 0.33.1): use control inpaint or controlnet")
        return cls
    names = {"text2image": "AutoPipelineForText2Image", "inpaint": "AutoPipelineForInpainting",
             "image2image": "AutoPipelineForImage2Image", "instruct_pix2pix": "StableDiffusionInstructPix2PixPipeline"}
    return getattr(diffusers, names[task])


def _quiet_loading() -> None:
    """Loading progress bars would interleave with the run's own progress."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    except ImportError:
        pass


def _load(spec: LoadSpec) -> LoadedPipeline:
    import torch

    _quiet_loading()
    files = resolve_model(spec.model, revision=spec.revision, variant=spec.variant)
    params = parameter_count(files.folder, spec.variant)
    if spec.controlnet and is_local(spec.controlnet):
        params += parameter_count(Path(spec.controlnet).expanduser(), None)
    if spec.device == "cpu":
        check_fits_cpu(spec.model, params, spec.dtype, spec.cpu_max_params)
    torch_dtype = getattr(torch, spec.dtype)
    kwargs: dict[str, Any] = {"torch_dtype": torch_dtype}
    if spec.variant:
        kwargs["variant"] = spec.variant
    index = json.loads((files.folder / "model_index.json").read_text())
    if not spec.safety_checker and index.get("safety_checker", [None])[0] is not None:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    controlnet_revision = ""
    if spec.controlnet:
        kwargs["controlnet"], controlnet_revision = _load_controlnet(spec.controlnet, torch_dtype)
    if spec.vae:
        from diffusers import AutoencoderKL

        kwargs["vae"] = _from_pretrained(AutoencoderKL, spec.vae, f"vae {spec.vae}", torch_dtype=torch_dtype)
    pipe = _from_pretrained(_pipeline_class(spec.task), str(files.folder), f"model {spec.model}", **kwargs)
    pipe.set_progress_bar_config(disable=True)
    if spec.scheduler:
        pipe.scheduler = _scheduler(spec.scheduler, pipe.scheduler.config)
    if spec.ip_adapter:
        _load_ip_adapter(pipe, spec.ip_adapter)
    _place(pipe, spec)
    return LoadedPipeline(pipe=pipe, spec=spec, files=files, params=params, attention=_attention_name(pipe),
                          controlnet_revision=controlnet_revision)


def _from_pretrained(cls: Any, location: str, what: str, **kwargs: Any) -> Any:
    try:
        with warnings.catch_warnings():
            # diffusers ≥ 0.36 renamed torch_dtype to dtype; the old name works across every supported version.
            warnings.filterwarnings("ignore", message=".*torch_dtype.* is deprecated", category=FutureWarning)
            return cls.from_pretrained(location, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DiffusionError(f"{what}: cannot load as {cls.__name__} ({first})") from exc


def _load_controlnet(location: str, torch_dtype: Any) -> tuple[Any, str]:
    """A ControlNet of whatever family its config names (SD / SDXL ControlNetModel, SD3, FLUX)."""
    import diffusers

    loader = getattr(diffusers, "AutoModel", None) or diffusers.ControlNetModel
    model = _from_pretrained(loader, location, f"controlnet {location}", torch_dtype=torch_dtype)
    if is_local(location):
        return model, f"sha256:{folder_hash(Path(location).expanduser().resolve())}"
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(location, "config.json")
        folder = Path(cached).parent if isinstance(cached, str) else None
    except ImportError:
        folder = None
    return model, hub_revision(folder, None) if folder else "revision:main"


def _scheduler(name: str, config: Any) -> Any:
    import diffusers

    cls = getattr(diffusers, name, None)
    if cls is None or not hasattr(cls, "from_config"):
        raise DiffusionError(f"scheduler {name}: no such diffusers scheduler class")
    return cls.from_config(config)


def _load_ip_adapter(pipe: Any, ip: IPAdapterSpec) -> None:
    if not hasattr(pipe, "load_ip_adapter") or getattr(pipe, "unet", None) is None:
        raise DiffusionError(f"{type(pipe).__name__} cannot take IP-Adapter references here (use an SD 1.5 or "
                             "SDXL model)")
    try:
        pipe.load_ip_adapter(ip.location, subfolder=ip.subfolder, weight_name=ip.weight,
                             image_encoder_folder=ip.image_encoder)
        pipe.set_ip_adapter_scale(ip.scale)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DiffusionError(f"ip_adapter {ip.location}: cannot load {ip.weight} ({first})") from exc


def denoiser(pipe: Any) -> Any:
    """The pipeline's denoising network (UNet, or transformer for SD3 / FLUX)."""
    return getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)


def _place(pipe: Any, spec: LoadSpec) -> None:
    import torch

    net = denoiser(pipe)
    if spec.channels_last:
        for module in (net, getattr(pipe, "vae", None)):
            if module is not None:
                module.to(memory_format=torch.channels_last)
    if spec.cpu_offload == "model":
        pipe.enable_model_cpu_offload(device=spec.device)
    elif spec.cpu_offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=spec.device)
    else:
        pipe.to(spec.device)
    if spec.compile and net is not None:
        compiled = torch.compile(net)
        if getattr(pipe, "unet", None) is net:
            pipe.unet = compiled
        else:
            pipe.transformer = compiled


def _attention_name(pipe: Any) -> str:
    net = denoiser(pipe)
    processors = getattr(net, "attn_processors", None)
    if not processors:
        return "default"
    return sorted({type(p).__name__ for p in processors.values()})[-1]
