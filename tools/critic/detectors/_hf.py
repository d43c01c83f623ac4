"""Shared plumbing for the transformers backends (detectors, and the SAM annotator): imports, model location,
device and dtype. Errors are `DetectorError` unless the caller names its own `error` class and `kind` word."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from synthloop.tools.critic.detector import DetectorError

INSTALL_HINT = "install synthloop[models]"
_DTYPES = ("float32", "float16", "bfloat16")


class DetectorModelOptions(BaseModel):
    """The options every transformers detector backend has (a backend's own Options add theirs after these)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, description="Local directory save_pretrained wrote, or a cached hub id.")
    device: str = Field(default="auto", description="auto (cuda when available, else cpu) | cpu | cuda[:N]")
    dtype: Literal["float32", "float16", "bfloat16"] = Field(default="float32", description="Used off the CPU.")
    score_threshold: float = Field(default=0.05, ge=0.0, le=1.0, description="Detections below are not returned.")
    max_detections: int = Field(default=100, ge=1, le=10_000, description="Most detections per image, best first.")


def import_torch_transformers(backend: str, *, kind: str = "detector",
                              error: type[ValueError] = DetectorError) -> tuple[Any, Any]:
    """`(torch, transformers)`, or an `error` naming the extra to install."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise error(f"{kind} backend '{backend}' needs torch and transformers ({exc.name} is missing): "
                    f"{INSTALL_HINT}") from exc
    return torch, transformers


def looks_like_path(model: str) -> bool:
    """True when `model` is meant as a filesystem path rather than a hub id ("org/name" or "name")."""
    return (model.startswith(("/", ".", "~")) or "\\" in model or model.count("/") > 1
            or Path(model).suffix in (".bin", ".safetensors", ".json", ".pt"))


def check_model_location(model: str, *, kind: str = "detector", error: type[ValueError] = DetectorError) -> str:
    """An existing local directory as a string, or the hub id unchanged; a missing path is an error."""
    if not model or not model.strip():
        raise error(f"{kind} model path or hub id is empty")
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise error(f"{kind} model path {path} is a file: give the directory save_pretrained wrote")
        return str(path)
    if looks_like_path(model):
        raise error(f"{kind} model path does not exist: {path}")
    return model


def resolve_device(torch: Any, device: str, *, kind: str = "detector", error: type[ValueError] = DetectorError) -> str:
    """'auto' → cuda when available, else cpu; anything else is checked and passed through."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise error(f"{kind} device '{device}' asked for, but torch sees no CUDA device")
    return device


def resolve_dtype(torch: Any, dtype: str, device: str, *, kind: str = "detector",
                  error: type[ValueError] = DetectorError) -> Any:
    """float32 on CPU (half precision is slow or unsupported there); the asked dtype on an accelerator."""
    if dtype not in _DTYPES:
        raise error(f"unknown {kind} dtype '{dtype}' ({' | '.join(_DTYPES)})")
    if device == "cpu":
        return torch.float32
    return getattr(torch, dtype)


def load_pretrained(loader: Any, model: str, backend: str, *, error: type[ValueError] = DetectorError,
                    **kwargs: Any) -> Any:
    """`loader.from_pretrained(model)` with a one-line `error` when nothing can be found or read."""
    try:
        return loader.from_pretrained(model, **kwargs)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"cannot load {backend} model '{model}' (local path or cached hub id): {first}") from exc
