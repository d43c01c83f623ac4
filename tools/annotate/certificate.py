"""Label certificates: which sources saw an annotation, and one agreement score the critic can threshold.

Sources (every value in [0, 1]; a source that did not look at the object is absent, not 0):
- `layout`: IoU of the layout box (where the object was placed, or where a generator was told to draw it)
  with the final pixel box;
- `render_mask`: the renderer drew the object and knows its visible pixels (exact labels): 1.0 for an object
  at least half visible, visible_fraction / 0.5 below that, 0.0 for a hidden one;
- `sam_iou`: SAM's predicted IoU of the mask it chose (0.0 when it found nothing usable);
- `detector_iou`, `detector_score`: IoU of the best same-class detection with the layout box, and that
  detection's score (both 0.0 when the detector saw nothing there);
- `vlm`: 1.0 when the VLM answered "yes, this box shows a <class>", 0.0 for "no".

Agreement = the geometric mean of the witness values, where every source present is a witness except
`layout` when `render_mask` is present (an exact mask's box differs from its layout box only by occlusion,
which `render_mask` already measures):

    agreement = (∏ witnesses) ** (1 / number of witnesses)

A single source that did not see the object (a 0) makes the agreement 0; a weak one pulls it down
proportionally. The layout alone is no evidence that anything was drawn: without a source that looked at the
pixels (render_mask, sam_iou, detector, vlm) the agreement is 0. Values are rounded to 4 decimals so manifests
stay readable and byte-stable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from synthloop.tools.geometry import Box, iou, xywh_to_xyxy
from synthloop.tools.types import Certificate

MOSTLY_HIDDEN = 0.5  # below this visible fraction an exact mask is weaker evidence (render_mask < 1)
KNOWN_SOURCES = ("layout", "render_mask", "sam_iou", "detector_iou", "detector_score", "vlm")


def agreement(sources: Mapping[str, float]) -> float:
    """The agreement score of `sources` (module docstring: geometric mean of the witnesses)."""
    if not any(name != "layout" for name in sources):
        return 0.0
    witnesses = [v for k, v in sources.items() if not (k == "layout" and "render_mask" in sources)]
    if min(witnesses) <= 0.0:
        return 0.0
    return _clip(math.exp(sum(math.log(v) for v in witnesses) / len(witnesses)))


def certify(sources: Mapping[str, float]) -> Certificate:
    """A `Certificate` of `sources` (each clipped to [0, 1] and rounded) with its agreement."""
    clean = {name: round(_clip(value), 4) for name, value in sources.items()}
    return Certificate(sources=clean, agreement=round(agreement(clean), 4))


def render_mask_evidence(area: int, visible_fraction: float | None) -> float:
    """`render_mask` for an exact mask: 1.0 from half visible up, proportionally less when mostly hidden."""
    if area <= 0:
        return 0.0
    visible = 1.0 if visible_fraction is None else visible_fraction
    return min(1.0, visible / MOSTLY_HIDDEN)


def layout_iou(layout_box_px: Box, bbox_xywh: tuple[float, float, float, float]) -> float:
    """IoU of a pixel xyxy layout box with a final pixel xywh box (0 for an empty final box)."""
    if bbox_xywh[2] <= 0 or bbox_xywh[3] <= 0:
        return 0.0
    return iou(layout_box_px, xywh_to_xyxy(bbox_xywh))


def _clip(value: float) -> float:
    return min(1.0, max(0.0, float(value))) if math.isfinite(value) else 0.0
