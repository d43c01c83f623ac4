"""Where a model's files are, what they are (revision or content hash), and how many parameters they hold.

A hub id resolves to its snapshot in the local Hugging Face cache (downloaded first when the hub is
reachable); its revision is the snapshot's commit. A local folder is identified by a content hash of every
file in it (computed once per process). Parameter counts come from the safetensors headers (no tensor is
read), so a model too large for the CPU is refused before it is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from synthloop.tools.render.diffusion.options import DiffusionError

_HASH_CACHE: dict[tuple[str, int, float], str] = {}
_HASH_LOCK = threading.Lock()
_SNAPSHOT = re.compile(r"/snapshots/([0-9a-f]{40})(/|$)")
BYTES_PER_PARAM = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class ModelFiles:
    """A resolved model: its folder, its id as the user wrote it, and its revision string for provenance."""

    model: str
    folder: Path
    revision: str

    @property
    def local(self) -> bool:
        """Whether the user named a local folder (not a hub id)."""
        return self.revision.startswith("sha256:")


def is_local(model: str) -> bool:
    """A model written as an existing path is local; anything else is a hub id."""
    return Path(model).expanduser().exists()


def resolve_model(model: str, *, revision: str | None = None, variant: str | None = None) -> ModelFiles:
    """The folder of a diffusers pipeline: the local folder itself, or the hub snapshot (downloaded if needed)."""
    if is_local(model):
        folder = Path(model).expanduser().resolve()
        if not (folder / "model_index.json").is_file():
            raise DiffusionError(f"model {model}: not a diffusers pipeline folder (no model_index.json)")
        return ModelFiles(model, folder, f"sha256:{folder_hash(folder)}")
    from diffusers import DiffusionPipeline

    try:
        folder = Path(DiffusionPipeline.download(model, revision=revision, variant=variant))
    except Exception as exc:  # hub errors come in many types (offline, 404, gated, bad revision)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DiffusionError(f"model {model}: not a local folder and not available from the hub cache ({first})") \
            from exc
    return ModelFiles(model, folder, hub_revision(folder, revision))


def hub_revision(folder: Path, asked: str | None) -> str:
    """The commit of a hub snapshot folder (`.../snapshots/<commit>`), else the revision asked for."""
    match = _SNAPSHOT.search(folder.as_posix())
    if match:
        return f"commit:{match.group(1)}"
    return f"revision:{asked or 'main'}"


def folder_hash(folder: Path) -> str:
    """SHA-256 over every file's relative path and content (hidden files and folders skipped), first 16 hex
    digits; cached per process by (folder, total size, newest modification time)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(folder).parts))
    stats = [p.stat() for p in files]
    key = (str(folder), sum(s.st_size for s in stats), max((s.st_mtime for s in stats), default=0.0))
    with _HASH_LOCK:
        if key in _HASH_CACHE:
            return _HASH_CACHE[key]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    value = digest.hexdigest()[:16]
    with _HASH_LOCK:
        _HASH_CACHE[key] = value
    return value


def safetensors_params(path: Path) -> int:
    """Number of parameters in a .safetensors file, read from its JSON header only."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in entry["shape"]:
            count *= int(dim)
        total += count
    return total


def parameter_count(folder: Path, variant: str | None = None) -> int:
    """Parameters of every component weight file under `folder` (safetensors headers; a .bin file counts as
    float32, or float16 for a variant named fp16). Only the files `from_pretrained` would pick are counted."""
    total = 0
    for component in _component_dirs(folder):
        weights = _weight_files(component, variant)
        for path in weights:
            if path.suffix == ".safetensors":
                total += safetensors_params(path)
            else:
                total += path.stat().st_size // (2 if variant == "fp16" else 4)
    return total


def _component_dirs(folder: Path) -> list[Path]:
    index = folder / "model_index.json"
    if not index.is_file():  # a single model folder (ControlNet, VAE)
        return [folder]
    names = [k for k, v in json.loads(index.read_text()).items()
             if not k.startswith("_") and isinstance(v, list) and v and v[0] is not None]
    return [folder / n for n in names if (folder / n).is_dir()]


def _weight_files(component: Path, variant: str | None) -> list[Path]:
    """The weight files from_pretrained would load: the variant's safetensors when present, else plain ones."""
    files = [p for p in component.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file()]

    def is_variant(p: Path) -> bool:
        return variant is not None and f".{variant}." in p.name

    chosen = [p for p in files if is_variant(p)] if variant else []
    if not chosen:
        chosen = [p for p in files if not re.search(r"\.(fp16|bf16|fp32)\.", p.name)]
    safetensors = [p for p in chosen if p.suffix == ".safetensors"]
    return safetensors or chosen


def available_memory_bytes() -> int | None:
    """Memory the system can still give this process (MemAvailable), or None when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_cpu(model: str, params: int, dtype: str, max_params: float) -> None:
    """Refuse, with one line, a model too large to run on this CPU (by parameter count and free memory)."""
    billions = params / 1e9
    if params > max_params:
        raise DiffusionError(
            f"model {model} has {billions:.2f} B parameters and no GPU is in use: too large for the CPU "
            f"(cpu_max_params {max_params / 1e9:.2f} B); run it on a GPU or raise cpu_max_params")
    needed = params * BYTES_PER_PARAM[dtype]
    free = available_memory_bytes()
    if free is not None and needed > 0.9 * free:
        raise DiffusionError(
            f"model {model} needs about {needed / 2**30:.1f} GiB in {dtype} but this machine has "
            f"{free / 2**30:.1f} GiB free: run it on a GPU or use dtype bfloat16")
