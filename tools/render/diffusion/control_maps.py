"""Control images drawn from the layout and its composite, for ControlNets.

- segmentation: the composite's visible object shapes (its instance map) coloured with the ADE20K palette
  by class (`ade20k.py`), the background coloured as the scene's ground when the scene names one (e.g.
  "kitchen table"), else black; what each class was mapped to is returned for provenance;
- canny: OpenCV Canny edges of the composite (white on black, three channels);
- depth: a depth map of the composite in the MiDaS convention ControlNets expect (near is bright): the
  background recedes from bottom to top, objects are layered by their layout depth (and, at equal depth,
  by how low their box reaches), each a flat plane.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from synthloop.tools.render.diffusion.ade20k import CLASSES, PALETTE, ade_class, fallback_class, scene_class
from synthloop.tools.render.diffusion.options import DiffusionError
from synthloop.tools.types import Layout, TaskSpec

MapKind = Literal["segmentation", "canny", "depth"]
CANNY_LOW, CANNY_HIGH = 100, 200


def map_kind(option: str, controlnet: str) -> MapKind:
    """The control map a ControlNet wants: the option when set, else read from its name (seg, canny, depth)."""
    if option != "auto":
        return option  # type: ignore[return-value]
    name = controlnet.lower()
    for needle, kind in (("seg", "segmentation"), ("canny", "canny"), ("depth", "depth")):
        if needle in name:
            return kind  # type: ignore[return-value]
    raise DiffusionError(f"controlnet {controlnet}: cannot tell from its name which map it reads; set "
                         "control_map to segmentation, canny or depth")


def class_colours(spec: TaskSpec) -> tuple[dict[str, tuple[int, int, int]], dict[str, str]]:
    """An ADE20K colour per spec class, and the ADE20K class each was drawn as (unmatched names get a stable
    unused thing class, marked with a trailing '?')."""
    indices: dict[str, int] = {}
    names: dict[str, str] = {}
    for obj in spec.objects:
        k = ade_class(obj.name)
        if k is not None:
            indices[obj.name], names[obj.name] = k, CLASSES[k]
    for obj in spec.objects:
        if obj.name not in indices:
            k = fallback_class(obj.name, set(indices.values()))
            indices[obj.name], names[obj.name] = k, f"{CLASSES[k]}?"
    return {name: PALETTE[k] for name, k in indices.items()}, names


def segmentation_map(layout: Layout, instance_map: np.ndarray, spec: TaskSpec) -> tuple[np.ndarray, dict[str, str]]:
    """ADE20K-coloured map of the visible objects (label k = layout object k-1) over the scene's ground."""
    colours, names = class_colours(spec)
    ground = scene_class(spec.scene)
    lut = np.zeros((len(layout.objects) + 1, 3), dtype=np.uint8)
    if ground is not None:
        lut[0] = PALETTE[ground]
    for k, obj in enumerate(layout.objects, start=1):
        lut[k] = colours.get(obj.category) or PALETTE[fallback_class(obj.category, set())]
    return lut[instance_map], names


def canny_map(image: np.ndarray) -> np.ndarray:
    """Canny edges of an RGB image, as a three-channel white-on-black image."""
    import cv2

    edges = cv2.Canny(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), CANNY_LOW, CANNY_HIGH)
    return np.repeat(edges[:, :, None], 3, axis=2)


def depth_map(layout: Layout, instance_map: np.ndarray) -> np.ndarray:
    """Near-is-bright depth of the composite: a receding background, objects as planes in layout depth order."""
    height, width = instance_map.shape
    rows = np.linspace(20.0, 90.0, height, dtype=np.float32)[:, None]
    depth = np.broadcast_to(rows, (height, width)).copy()
    order = sorted(range(len(layout.objects)), key=lambda i: (layout.objects[i].depth, layout.objects[i].box[3]))
    for rank, index in enumerate(order):
        depth[instance_map == index + 1] = 120.0 + 135.0 * (rank + 1) / max(len(order), 1)
    return np.repeat(np.clip(depth, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
