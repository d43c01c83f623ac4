"""Semantic segmentation export: one class-index map per image.

On-disk layout (under the output directory DIR), written when `semantic_segmentation` is in spec.tasks:

    DIR/semantic/{split}/{id}.png   single-channel 8-bit PNG (grayscale, so every reader gets the index values):
                                    pixel = COCO category id, 0 = background, 255 = ignore
    DIR/semantic/classes.json       {"background": 0, "ignore": 255, "ignore_below_agreement": 0.5,
                                     "classes": [{"id", "name", "color"}, ...]}: id → name with a palette
                                    colour for viewing (PASCAL VOC's colour map), background and ignore included

A map is built from the instances the COCO file holds (area > 0), in this order:
1. every pixel of an instance mask gets the instance's category id;
2. a pixel that masks of two or more different classes claim is ignore (255): its class is ambiguous;
3. uncertain pixels are ignore: all pixels of an instance whose certificate agreement is below
   `IGNORE_BELOW_AGREEMENT`, and the whole box of an instance without a mask (it may cover any pixel of it).
The same maps go into the VOC export (`SegmentationClass`, palette PNGs) and the HF export (a `semantic`
column). `validate` rebuilds each map from the COCO file (its masks, boxes and `certificate` keys) and
compares them pixel for pixel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.tools.export.base import BaseExporter
from synthloop.tools.export.coco_records import category_ids, exported_instances
from synthloop.tools.io import atomic_write_json, atomic_write_png
from synthloop.tools.masks import rle_crops
from synthloop.tools.types import Sample, TaskSpec

BACKGROUND, IGNORE = 0, 255
IGNORE_BELOW_AGREEMENT = 0.5


@dataclass(frozen=True)
class MapInstance:
    """What a semantic map needs of one instance: class id, RLE counts (None without a mask), pixel xywh box
    and certificate agreement (None without a certificate)."""

    category_id: int
    counts: str | None
    bbox: tuple[float, float, float, float]
    agreement: float | None = None


def voc_palette() -> list[tuple[int, int, int]]:
    """PASCAL VOC's 256-colour map (index bits spread over the high bits of R, G and B; 255 is (224, 224, 192))."""
    palette = []
    for index in range(256):
        r = g = b = 0
        bits = index
        for shift in range(7, -1, -1):
            r |= (bits & 1) << shift
            g |= ((bits >> 1) & 1) << shift
            b |= ((bits >> 2) & 1) << shift
            bits >>= 3
        palette.append((r, g, b))
    return palette


def _box_window(bbox: tuple[float, float, float, float], height: int, width: int) -> tuple[slice, slice]:
    x, y, w, h = bbox
    x0, y0 = max(0, math.floor(x)), max(0, math.floor(y))
    x1, y1 = min(width, math.ceil(x + w)), min(height, math.ceil(y + h))
    return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))


def semantic_map(
    height: int, width: int, instances: Sequence[MapInstance], ignore_below: float = IGNORE_BELOW_AGREEMENT
) -> np.ndarray:
    """The (height, width) uint8 class-index map of one image (rules in the module docstring); an instance
    whose certificate agreement is below `ignore_below` is ignore."""
    label = np.zeros((height, width), dtype=np.uint8)
    masked = [inst for inst in instances if inst.counts is not None]
    counts = [inst.counts for inst in masked if inst.counts is not None]
    crops = rle_crops((height, width), counts) if counts else []
    for inst, (crop, x0, y0) in zip(masked, crops, strict=True):
        if crop.size == 0:
            continue
        region = label[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]]
        taken = region != BACKGROUND
        region[crop & taken & (region != inst.category_id)] = IGNORE
        region[crop & ~taken] = inst.category_id
    for inst, (crop, x0, y0) in zip(masked, crops, strict=True):
        if inst.agreement is not None and inst.agreement < ignore_below and crop.size:
            label[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]][crop] = IGNORE
    for inst in instances:
        if inst.counts is None:
            label[_box_window(inst.bbox, height, width)] = IGNORE
    return label


def sample_map_instances(sample: Sample, class_ids: dict[str, int]) -> list[MapInstance]:
    """The `MapInstance`s of a sample's exported instances."""
    out = []
    for _, inst in exported_instances(sample):
        if inst.category not in class_ids:
            raise ValueError(f"sample {sample.id}: class '{inst.category}' is not in the spec")
        if inst.segmentation is not None and tuple(inst.segmentation.size) != (sample.height, sample.width):
            raise ValueError(
                f"sample {sample.id}: a '{inst.category}' mask is {inst.segmentation.size}, "
                f"not the image's ({sample.height}, {sample.width})"
            )
        agreement = inst.certificate.agreement if inst.certificate is not None else None
        counts = inst.segmentation.counts if inst.segmentation is not None else None
        out.append(MapInstance(class_ids[inst.category], counts, inst.bbox, agreement))
    return out


def sample_semantic_map(sample: Sample, class_ids: dict[str, int]) -> np.ndarray:
    """The class-index map of one sample."""
    return semantic_map(sample.height, sample.width, sample_map_instances(sample, class_ids))


def classes_json(spec: TaskSpec) -> dict[str, Any]:
    """Content of semantic/classes.json."""
    palette = voc_palette()
    classes = [{"id": BACKGROUND, "name": "background", "color": list(palette[BACKGROUND])}]
    classes += [{"id": cid, "name": name, "color": list(palette[cid])} for name, cid in category_ids(spec).items()]
    classes.append({"id": IGNORE, "name": "ignore", "color": list(palette[IGNORE])})
    return {
        "background": BACKGROUND,
        "ignore": IGNORE,
        "ignore_below_agreement": IGNORE_BELOW_AGREEMENT,
        "classes": classes,
    }


class SemanticExporter(BaseExporter):
    """Writes `semantic/{split}/{id}.png` and `semantic/classes.json` (see the module docstring)."""

    id = "semantic"

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Start a new export into `out_dir`."""
        super().setup(out_dir, spec)
        self._class_ids = category_ids(spec)

    def export_sample(self, sample: Sample) -> None:
        """Write the sample's map."""
        self.check_sample(sample)
        path = self.out_dir / "semantic" / sample.split / f"{Path(sample.image_path).stem}.png"
        atomic_write_png(self.wrote(path), sample_semantic_map(sample, self._class_ids))

    def close(self) -> None:
        """Write classes.json and remove maps an earlier export left."""
        atomic_write_json(self.out_dir / "semantic" / "classes.json", classes_json(self.spec))
        for split in self.spec.splits.names():
            self.remove_stale(self.out_dir / "semantic" / split)
        self.finish()
