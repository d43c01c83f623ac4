"""Exact labels from a renderer that knows its masks (the compositor's instance map).

One `Instance` per layout object, in layout order, so relation indices of the layout stay valid for the
annotation. Objects that ended up fully hidden are kept (area 0, empty box, visible_fraction 0): judging
them is the critic's job, not the annotator's.

Every instance carries a certificate (`certificate.py`): the layout box's IoU with the visible box and the
rendered mask; its agreement is 1.0 unless the object is mostly hidden.
"""

from __future__ import annotations

import numpy as np

from synthloop.tools.annotate.base import BaseAnnotator
from synthloop.tools.annotate.certificate import certify, layout_iou, render_mask_evidence
from synthloop.tools.backend import Capabilities
from synthloop.tools.geometry import scale_box
from synthloop.tools.masks import encode_rle, mask_bbox
from synthloop.tools.render.base import RenderResult
from synthloop.tools.types import Annotation, Instance, Layout, Task, TaskSpec


class ExactAnnotator(BaseAnnotator):
    """Exact masks, tight boxes, areas and visible fractions read off the renderer's instance map."""

    id = "exact"
    capabilities = Capabilities(exact_labels=True, needs_instance_map=True, provides_masks=True)

    def annotate(self, layout: Layout, render: RenderResult, spec: TaskSpec) -> Annotation:
        """Return one instance per layout object (label k in the map = layout object k-1)."""
        instance_map = render.instance_map
        if instance_map is None:
            raise ValueError(
                "the exact annotator needs a renderer that knows its masks (compositor); "
                "use the SAM annotator for generated images"
            )
        height, width = instance_map.shape
        if (height, width) != (layout.height, layout.width):
            raise ValueError(
                f"instance map is {width}x{height} but the layout is {layout.width}x{layout.height}"
            )
        n = len(layout.objects)
        amodal = render.amodal_areas if len(render.amodal_areas) == n else None
        # One pass over the map gives every label's pixel count; a box crop then suffices per instance
        # unless its count disagrees (a renderer that paints outside its boxes), then the full map is used.
        totals = np.bincount(instance_map.ravel(), minlength=n + 1)
        scratch = np.zeros((height, width), dtype=np.uint8, order="F")

        instances = []
        for index, obj in enumerate(layout.objects):
            label = index + 1
            x0, y0, x1, y1 = _crop(obj.box, width, height)
            crop = instance_map[y0:y1, x0:x1] == label
            if int(crop.sum()) != int(totals[label]):
                x0, y0, x1, y1 = 0, 0, width, height
                crop = instance_map == label
            area = int(totals[label])
            scratch[y0:y1, x0:x1] = crop
            segmentation = encode_rle(scratch)
            scratch[y0:y1, x0:x1] = 0
            if area:
                bx, by, bw, bh = mask_bbox(crop)
                bbox = (bx + x0, by + y0, bw, bh)
            else:
                bbox = (0.0, 0.0, 0.0, 0.0)
            visible = _visible_fraction(area, amodal[index] if amodal else None)
            certificate = certify({"layout": layout_iou(scale_box(obj.box, width, height), bbox),
                                   "render_mask": render_mask_evidence(area, visible)})
            instances.append(
                Instance(
                    category=obj.category,
                    bbox=bbox,
                    area=area,
                    segmentation=segmentation,
                    source=self.id,
                    visible_fraction=visible,
                    layout_index=index,
                    certificate=certificate,
                )
            )
        relations = list(layout.relations) if Task.scene_graph in spec.tasks else []
        return Annotation(instances=instances, relations=relations)


def _crop(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """Pixel xyxy crop covering a normalised box with a one-pixel margin, inside the image."""
    x0, y0, x1, y1 = scale_box(box, width, height)
    return (
        max(int(np.floor(x0)) - 1, 0),
        max(int(np.floor(y0)) - 1, 0),
        min(int(np.ceil(x1)) + 1, width),
        min(int(np.ceil(y1)) + 1, height),
    )


def _visible_fraction(area: int, amodal: int | None) -> float:
    """Visible / amodal area in [0, 1]; 1.0 when the amodal area is unknown."""
    if amodal is None:
        return 1.0
    if amodal <= 0:
        return 0.0
    return min(1.0, area / amodal)
