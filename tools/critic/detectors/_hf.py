"""Shared plumbing for the transformers detector backends: imports, model location, device and dtype."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthloop.tools.critic.detector import DetectorError

INSTALL_HINT = "install synthloop[models]"
_DTYPES = ("float32", "float16", "bfloat16")


def import_torch_transformers(backend: str) -> tuple[Any, Any]:
    """`(torch, transformers)`, or a DetectorError naming the extra to install."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise DetectorError(f"detector backend '{backend}' needs torch and transformers ({exc.name} is missing): "
                            f"{INSTALL_HINT}") from exc
    return torch, transformers


def looks_like_path(model: str) -> bool:
    """True when `model` is meant as a filesystem path rather than a hub id ("org/name" or "name")."""
    return (model.startswith(("/", ".", "~")) or "\\" in model or model.count("/") > 1
            or Path(model).suffix in (".bin", ".safetensors", ".json", ".pt"))


def check_model_location(model: str) -> str:
    """An existing local directory as a string, or the hub id unchanged; a missing path is an error."""
    if not model or not model.strip():
        raise DetectorError("detector model path or hub id is empty")
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise DetectorError(f"detector model path {path} is a file: give the directory save_pretrained wrote")
        return str(path)
    if looks_like_path(model):
        raise DetectorError(f"detector model path does not exist: {path}")
    return model


def resolve_device(torch: Any, device: str) -> str:
    """'auto' → cuda when available, else cpu; anything else is checked and passed through."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DetectorError(f"detector device '{device}' asked for, but torch sees no CUDA device")
    return device


def resolve_dtype(torch: Any, dtype: str, device: str) -> Any:
    """float32 on CPU (half precision is slow or unsupported there); the asked dtype on an accelerator."""
    if dtype not in _DTYPES:
        raise DetectorError(f"unknown detector dtype '{dtype}' ({' | '.join(_DTYPES)})")
    if device == "cpu":
        return torch.float32
    return getattr(torch, dtype)


def load_pretrained(loader: Any, model: str, backend: str, **kwargs: Any) -> Any:
    """`loader.from_pretrained(model)` with a one-line DetectorError when nothing can be found or read."""
    try:
        return loader.from_pretrained(model, **kwargs)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DetectorError(f"cannot load {backend} model '{model}' (local path or cached hub id): {first}") from exc
