"""Options of the diffusion renderer: the contract other parts build on (`backend: diffusion`, `model`, the five
`control` modes), validated when the run config is read so a mistake fails at start-up, not mid-run.

```yaml
renderer:
  backend: diffusion
  model: stabilityai/sdxl-turbo        # hub id or a local diffusers folder
  control: inpaint                     # none | inpaint | controlnet | refine | gligen
  steps: 4
  guidance: 0.0
  dtype: float16
  batch_size: 8
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Control = Literal["none", "inpaint", "controlnet", "refine", "gligen"]
DType = Literal["auto", "float32", "float16", "bfloat16"]
ControlMap = Literal["auto", "segmentation", "canny", "depth"]


class DiffusionError(ValueError):
    """A diffusion model, option or input is unusable; the message is one line naming it."""


class DiffusionOptions(BaseModel):
    """Options of `DiffusionRenderer` (`synthloop backends` lists them with these descriptions)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="Diffusers pipeline: a hub id (e.g. stabilityai/sdxl-turbo) or a "
                                                 "local diffusers folder (with model_index.json).")
    control: Control = Field(default="none", description=(
        "How the layout steers the image: none (text only; labels from model annotators) | inpaint (background, "
        "then each object inpainted into its box) | controlnet (ControlNet on a map drawn from the layout) | "
        "refine (SDEdit of the composite; its instance map is passed through) | gligen (grounded boxes; "
        "deprecated upstream, optional)."))
    steps: int = Field(default=25, ge=1, le=500, description="Denoising steps (refine and inpaint run steps × "
                                                              "strength of them).")
    guidance: float = Field(default=7.5, ge=0.0, le=50.0, description="Classifier-free guidance scale; ≤ 1 turns "
                                                                      "it off (turbo models want 0).")
    dtype: DType = Field(default="auto", description="Weights and activations: auto = float16 on a GPU, float32 "
                                                     "on the CPU; bfloat16 also runs on the CPU.")
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$",
                        description="auto (cuda when available, else cpu) | cpu | cuda[:N].")
    batch_size: int = Field(default=4, ge=1, le=256, description=(
        "Images per pipeline call. Every call is padded to this many, so a sample's pixels never depend on what "
        "else is in its batch; halved (and kept halved) on CUDA out-of-memory."))
    revision: str | None = Field(default=None, description="Hub revision (branch, tag or commit) of `model`.")
    variant: str | None = Field(default=None, description="Weight variant to load, e.g. fp16.")
    scheduler: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]+Scheduler$", description=(
        "Replace the model's scheduler by this diffusers class (e.g. EulerAncestralDiscreteScheduler), built "
        "from the model's scheduler config."))
    negative_prompt: str = Field(default="blurry, deformed, low quality, watermark, text", max_length=500,
                                 description="Negative prompt (used when guidance > 1).")
    strength: float = Field(default=0.5, gt=0.0, le=1.0, description=(
        "refine: share of the noise schedule re-run on the composite (low keeps its look, high harmonises more "
        "and lets labels drift)."))
    inpaint_strength: float = Field(default=1.0, gt=0.0, le=1.0, description=(
        "inpaint: how much of each object's box is repainted (1.0 = from noise)."))
    background_images: str | None = Field(default=None, description=(
        "inpaint: a folder of background images (one chosen per sample by its seed) instead of a background "
        "painted from the scene text."))
    controlnet: str | None = Field(default=None, description=(
        "controlnet: the ControlNet, a hub id or local folder (SD 1.5 / SDXL / SD3 / FLUX ControlNets)."))
    control_map: ControlMap = Field(default="auto", description=(
        "controlnet: the map drawn from the layout: segmentation (ADE20K palette, objects' visible shapes), "
        "canny or depth of the composite; auto reads the ControlNet's name (seg, canny, depth)."))
    control_scale: float = Field(default=1.0, ge=0.0, le=2.0, description="controlnet: conditioning scale.")
    composite: str | dict[str, Any] | None = Field(default=None, description=(
        "refine / controlnet: the renderer drawing the composite (a name or {backend: NAME, ...}); default "
        "copy_paste when installed, else compositor."))
    gligen_beta: float = Field(default=0.3, ge=0.0, le=1.0, description=(
        "gligen: share of the steps that see the grounding boxes (scheduled sampling)."))
    ip_adapter: str | None = Field(default=None, description=(
        "IP-Adapter for reference / style images: a local folder or hub id holding `ip_adapter_weight` "
        "(and its image encoder)."))
    ip_adapter_subfolder: str = Field(default="", description="Subfolder of `ip_adapter` holding the weights "
                                                              "(h94/IP-Adapter: models).")
    ip_adapter_weight: str = Field(default="ip-adapter_sd15.safetensors", min_length=1,
                                   description="IP-Adapter weight file name.")
    ip_adapter_image_encoder: str = Field(default="image_encoder", min_length=1, description=(
        "Image encoder folder, relative to `ip_adapter_subfolder` (or to `ip_adapter` when it holds a '/')."))
    ip_adapter_scale: float = Field(default=0.6, ge=0.0, le=2.0, description="How strongly references steer.")
    references: str | None = Field(default=None, description=(
        "Folder of reference / style images (needs ip_adapter): images at its top level steer the whole image; "
        "a subfolder named after a class steers that class's boxes (regional IP-Adapter masks). One image per "
        "sample is chosen by its seed."))
    edit_model: str | None = Field(default=None, description=(
        "Instruction-editing pipeline (InstructPix2Pix) for `edit` verdicts: hub id or local folder. Set, the "
        "renderer declares edits_images and the loop repairs image instructions ('make the cup red') with it."))
    edit_steps: int = Field(default=20, ge=1, le=500, description="Denoising steps of each instruction edit "
                                                                  "(with edit_model).")
    difficulty: bool = Field(default=True, description=(
        "DetDiffusion-style: the spec's easy / hard changes prompt terms, control scale and refine strength."))
    min_side: int = Field(default=0, ge=0, le=4096, description=(
        "Render with at least this short side (512 for SD 1.5, 1024 for SDXL), then resize to the layout's "
        "size; 0 renders at the layout's size (rounded up to the model's multiple)."))
    seed_policy: Literal["request", "derived"] = Field(default="request", description=(
        "request: torch seed = the sample's seed (a plain diffusers script reproduces it); derived: hashed with "
        "the model id, so two models never share noise."))
    max_retries: int = Field(default=2, ge=0, le=10, description=(
        "Re-renders, each with a new derived seed, of a NaN, black or safety-blanked output."))
    safety_checker: bool = Field(default=True, description=(
        "Keep the model's safety checker when it ships one (its blanked images are re-rendered)."))
    vae: str | None = Field(default=None, description=(
        "Replacement VAE (hub id or folder), e.g. madebyollin/sdxl-vae-fp16-fix so SDXL decodes in float16; "
        "without it SDXL's VAE decodes in float32 (its force_upcast)."))
    compile: bool = Field(default=False, description=(
        "torch.compile the denoiser (fixed, padded batch shapes make one compilation enough)."))
    channels_last: bool = Field(default=False, description="channels_last memory format for the UNet and VAE.")
    cpu_offload: Literal["none", "model", "sequential"] = Field(default="none", description=(
        "Model CPU offload for small GPUs (needs accelerate): model (whole models move in turn) or sequential "
        "(layer by layer, slowest)."))
    cpu_max_params: float = Field(default=2.0e9, gt=0, description=(
        "On the CPU, refuse models with more parameters than this (estimated from the weight files)."))

    @model_validator(mode="after")
    def _consistent(self) -> DiffusionOptions:
        if self.control == "controlnet" and not self.controlnet:
            raise ValueError("control 'controlnet' needs the `controlnet` option (a ControlNet hub id or folder)")
        if self.controlnet and self.control == "controlnet":
            from synthloop.tools.render.diffusion.control_maps import map_kind

            map_kind(self.control_map, self.controlnet)  # auto must read the map from the name: fail at start-up
        if self.controlnet and self.control != "controlnet":
            raise ValueError(f"option `controlnet` is only used by control 'controlnet', not '{self.control}'")
        if self.references and not self.ip_adapter:
            raise ValueError("option `references` needs `ip_adapter` (the IP-Adapter that reads them)")
        if self.ip_adapter and not self.references:
            raise ValueError("option `ip_adapter` needs `references` (a folder of reference images)")
        if self.ip_adapter and self.control == "gligen":
            raise ValueError("control 'gligen' cannot take IP-Adapter references")
        if self.background_images and self.control != "inpaint":
            raise ValueError(f"option `background_images` is only used by control 'inpaint', not '{self.control}'")
        if self.cpu_offload != "none" and self.device == "cpu":
            raise ValueError("cpu_offload moves models between a GPU and the CPU: it needs device auto or cuda")
        for name in ("model", "controlnet", "vae", "ip_adapter", "edit_model"):
            _check_location(name, getattr(self, name))
        for name in ("references", "background_images"):
            folder = getattr(self, name)
            if folder is not None and not Path(folder).expanduser().is_dir():
                raise ValueError(f"option `{name}`: {folder} is not a folder")
        return self


def _check_location(option: str, value: str | None) -> None:
    """A value written as a path (absolute, ./, ../, ~) must exist; anything else may be a hub id."""
    if value is None:
        return
    if value.startswith(("/", "./", "../", "~")) and not Path(value).expanduser().exists():
        raise ValueError(f"option `{option}`: {value} does not exist (a local diffusers folder or a hub id)")


def parse_options(values: dict[str, Any]) -> DiffusionOptions:
    """Validate constructor keywords; one `DiffusionError` line naming the option on a mistake."""
    try:
        return DiffusionOptions.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise DiffusionError(f"diffusion option {where!r}: {message}" if where else f"diffusion: {message}") from exc
