"""Reference and style images for the IP-Adapter (AnySynth's reference-conditioned generation).

A references folder holds images at its top level (they steer the whole image: a run-wide style) and/or one
subfolder per class, named as the spec names the class (they steer that class's boxes through regional
IP-Adapter masks). Each sample picks one image per slot by its seed. Images are encoded once by the
pipeline's own image encoder (`encode_image`) and kept; the per-sample embeddings and masks go into the call
as `ip_adapter_image_embeds` and `cross_attention_kwargs["ip_adapter_masks"]` (batching.py stacks them), so
samples of one batch can each have their own references.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.tools.render.diffusion.options import DiffusionError
from synthloop.tools.seeding import derive_seed
from synthloop.tools.types import Layout, TaskSpec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def _images_in(folder: Path) -> tuple[Path, ...]:
    return tuple(sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))


def class_key(name: str) -> str:
    """Folder name → class name ('coffee_mug' and 'Coffee Mug' both name 'coffee mug')."""
    return name.strip().lower().replace("_", " ")


@dataclass(frozen=True)
class ReferenceFolder:
    """Run-wide reference images and per-class ones, as found in a folder."""

    root: Path
    run: tuple[Path, ...]
    classes: dict[str, tuple[Path, ...]]

    @classmethod
    def scan(cls, folder: str | Path) -> ReferenceFolder:
        """Read a references folder; one with no image at all is an error."""
        root = Path(folder).expanduser()
        classes = {class_key(d.name): _images_in(d) for d in sorted(root.iterdir()) if d.is_dir()}
        classes = {k: v for k, v in classes.items() if v}
        run = _images_in(root)
        if not run and not classes:
            raise DiffusionError(f"references {root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in it or "
                                 "in its class subfolders")
        return cls(root, run, classes)

    def check(self, spec: TaskSpec) -> None:
        """Every class subfolder must name a class of the spec (a typo would otherwise be silently unused)."""
        unknown = sorted(set(self.classes) - set(spec.class_names))
        if unknown:
            raise DiffusionError(f"references {self.root}: subfolder '{unknown[0]}' names no class of the spec "
                                 f"(classes: {', '.join(spec.class_names)})")

    def slots(self, spec: TaskSpec) -> list[str | None]:
        """The reference slots of every sample, in a fixed order: None for run-wide, then class names."""
        return ([None] if self.run else []) + [c for c in spec.class_names if c in self.classes]

    def choose(self, slot: str | None, seed: int) -> Path:
        """The image of a slot for a sample (by its seed)."""
        pool = self.run if slot is None else self.classes[slot]
        return pool[derive_seed(seed, "reference", slot or "") % len(pool)]


class ReferenceEncoder:
    """IP-Adapter inputs per sample: embeddings of its chosen references (encoded once) and region masks."""

    def __init__(self, folder: ReferenceFolder, pipe: Any, device: str) -> None:
        self.folder = folder
        self.pipe = pipe
        self.device = device
        self._cache: dict[Path, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def _encode(self, path: Path) -> tuple[Any, Any]:
        from PIL import Image, UnidentifiedImageError

        with self._lock:
            if path not in self._cache:
                from diffusers.models.embeddings import ImageProjection

                try:
                    image = Image.open(path).convert("RGB")
                except (OSError, UnidentifiedImageError) as exc:
                    raise DiffusionError(f"reference image {path} cannot be read: {exc}") from exc
                layer = self.pipe.unet.encoder_hid_proj.image_projection_layers[0]
                hidden = not isinstance(layer, ImageProjection)
                positive, negative = self.pipe.encode_image(image, self.device, 1, hidden)
                self._cache[path] = (positive[0], negative[0])
            return self._cache[path]

    def inputs(self, layout: Layout, spec: TaskSpec, seed: int, size: tuple[int, int]) -> tuple[dict[str, Any],
                                                                                             dict[str, str]]:
        """Per-sample call inputs (`ip_embeds`, `ip_negative`, `ip_masks` when any slot is regional) and the
        chosen files for provenance."""
        import torch

        slots = self.folder.slots(spec)
        if not slots:
            raise DiffusionError(f"references {self.folder.root}: none apply to this spec's classes")
        chosen = {slot: self.folder.choose(slot, seed) for slot in slots}
        encoded = [self._encode(chosen[slot]) for slot in slots]
        sample = {"ip_embeds": torch.stack([e[0] for e in encoded]),
                  "ip_negative": torch.stack([e[1] for e in encoded])}
        if any(slot is not None for slot in slots):
            sample["ip_masks"] = torch.from_numpy(np.stack([region_mask(layout, slot, size) for slot in slots]))
        names = {(slot or "*"): chosen[slot].relative_to(self.folder.root).as_posix() for slot in slots}
        return sample, names


def region_mask(layout: Layout, slot: str | None, size: tuple[int, int]) -> np.ndarray:
    """Float (H, W) mask of a slot: everywhere for the run-wide slot, else the union of that class's boxes."""
    width, height = size
    if slot is None:
        return np.ones((height, width), dtype=np.float32)
    mask = np.zeros((height, width), dtype=np.float32)
    for obj in layout.objects:
        if obj.category == slot:
            x0, y0, x1, y1 = obj.box
            mask[int(y0 * height):max(int(np.ceil(y1 * height)), int(y0 * height) + 1),
                 int(x0 * width):max(int(np.ceil(x1 * width)), int(x0 * width) + 1)] = 1.0
    return mask
