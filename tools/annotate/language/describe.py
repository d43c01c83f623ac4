"""What the language generators know about one image: its visible objects, read off the annotation.

`describe_scene(layout, annotation)` turns every instance with a visible pixel into a `SceneObject`: its
visible box (the annotation's tight box, pixel xyxy), mask (decoded lazily, once, inside that box), area,
and from the layout object it came from (`Instance.layout_index`) its depth, attributes and full (amodal)
box. Hidden instances (area 0) are left out, so nothing downstream can describe or relate them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from synthloop.tools.geometry import Box, scale_box, xywh_to_xyxy
from synthloop.tools.masks import decode_rle_crop
from synthloop.tools.types import RLE, Annotation, Layout


@dataclass(frozen=True)
class Region:
    """An object as the relation rules see it: boxes in pixels, optional depth, mask and visibility.

    box: visible extent (xyxy); extent: full extent before occlusion (the layout box), when known;
    depth: stacking order (higher is in front), when known; mask: visible pixels as RLE, when known;
    visible_fraction: visible / full area, when known.
    """

    box: Box
    depth: int | None = None
    extent: Box | None = None
    mask: RLE | None = None
    visible_fraction: float | None = None

    @property
    def width(self) -> float:
        """Visible box width in pixels."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        """Visible box height in pixels."""
        return self.box[3] - self.box[1]

    @property
    def centre(self) -> tuple[float, float]:
        """Centre of the visible box."""
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    @property
    def box_area(self) -> float:
        """Area of the visible box."""
        return max(0.0, self.width) * max(0.0, self.height)

    @cached_property
    def pixel_box(self) -> tuple[int, int, int, int]:
        """The visible box on whole pixels (what the mask crop covers)."""
        x0, y0, x1, y1 = self.box
        return (int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1)), int(np.ceil(y1)))

    @cached_property
    def mask_crop(self) -> np.ndarray | None:
        """The visible mask inside `pixel_box` (decoded once), or None without a mask."""
        if self.mask is None:
            return None
        height, width = self.mask.size
        x0, y0, x1, y1 = self.pixel_box
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 <= x0 or y1 <= y0:
            return np.zeros((0, 0), bool)
        return decode_rle_crop(self.mask, x0, y0, x1, y1)

    def mask_window(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The visible mask over pixel window [x0, x1) × [y0, y1) (False outside the object's box)."""
        out = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), bool)
        crop = self.mask_crop
        if crop is None or crop.size == 0:
            return out
        bx0, by0 = max(self.pixel_box[0], 0), max(self.pixel_box[1], 0)
        bx1, by1 = bx0 + crop.shape[1], by0 + crop.shape[0]
        ix0, iy0, ix1, iy1 = max(x0, bx0), max(y0, by0), min(x1, bx1), min(y1, by1)
        if ix1 > ix0 and iy1 > iy0:
            out[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = crop[iy0 - by0 : iy1 - by0, ix0 - bx0 : ix1 - bx0]
        return out


@dataclass(frozen=True)
class SceneObject:
    """One visible object: which instance it is, its class and attributes, and its region."""

    index: int  # into Annotation.instances
    category: str
    attributes: tuple[str, ...]
    region: Region
    area: int = 0  # visible pixels
    layout_index: int | None = None


@dataclass(frozen=True)
class Scene:
    """The visible objects of one image and its size."""

    width: int
    height: int
    objects: tuple[SceneObject, ...] = field(default_factory=tuple)


def describe_scene(layout: Layout, annotation: Annotation) -> Scene:
    """The visible objects of `annotation` with what the layout adds (depth, attributes, full box)."""
    objects = []
    for index, inst in enumerate(annotation.instances):
        if inst.area <= 0 or inst.bbox[2] <= 0 or inst.bbox[3] <= 0:
            continue
        source = None
        if inst.layout_index is not None and inst.layout_index < len(layout.objects):
            source = layout.objects[inst.layout_index]
        region = Region(
            box=xywh_to_xyxy(inst.bbox),
            depth=source.depth if source is not None else None,
            extent=scale_box(source.box, layout.width, layout.height) if source is not None else None,
            mask=inst.segmentation,
            visible_fraction=inst.visible_fraction,
        )
        attributes = tuple(source.attributes) if source is not None else ()
        objects.append(SceneObject(index=index, category=inst.category, attributes=attributes, region=region,
                                   area=inst.area, layout_index=inst.layout_index))
    return Scene(width=layout.width, height=layout.height, objects=tuple(objects))


def regions_of(boxes: Sequence[Box], depths: Sequence[int | None]) -> list[Region]:
    """Regions from bare boxes and depths (no masks), e.g. a layout's objects in pixels."""
    return [Region(box=b, depth=d, extent=b) for b, d in zip(boxes, depths, strict=True)]
