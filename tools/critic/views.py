"""Zoomed detector views: a detector run on windows of an image, its detections mapped back to image pixels.

A detector with a fixed input side (YOLOv3-tiny: 416) shrinks a 512² image and loses what was small in it; run on
a window, it sees the window's content enlarged to its input side. Two kinds of window:
- an object window (`object_window`): a square around one annotated box, `context` times its longer side (at least
  `min_side` px), shifted to lie inside the image; its detections speak for that box only;
- tiles (`tiles`): a `grid` × `grid` cover of the image with overlapping squares; a detection touching a tile
  side that is not an image border is cut by the tile and dropped (the whole-image pass or a neighbouring tile
  sees that object whole).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthloop.tools.critic.detector import Detection, Detector

Window = tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels
EDGE_PX = 2.0  # a detection within this of a cut side touches it


def object_window(box: Sequence[float], width: int, height: int, *, context: float = 2.0,
                  min_side: int = 96) -> Window | None:
    """A square window centred on the xywh `box` (side `context` × its longer side, at least `min_side`), moved to
    lie inside the image; None when it would cover most of the image (the whole-image pass is that view)."""
    x, y, w, h = box
    side = round(max(min_side, context * max(w, h)))
    if side * side >= 0.5 * width * height or side >= min(width, height):
        return None
    cx, cy = x + w / 2, y + h / 2
    x0 = round(min(max(cx - side / 2, 0), width - side))
    y0 = round(min(max(cy - side / 2, 0), height - side))
    return x0, y0, x0 + side, y0 + side


def tiles(width: int, height: int, *, grid: int = 2, overlap: float = 0.25) -> list[Window]:
    """`grid` × `grid` overlapping windows covering the image (each side `1 / (grid − (grid − 1) × overlap)` of the
    image's); none for grid < 2."""
    if grid < 2:
        return []
    share = 1.0 / (grid - (grid - 1) * overlap)
    tile_w, tile_h = round(width * share), round(height * share)
    xs = np.linspace(0, width - tile_w, grid).round().astype(int)
    ys = np.linspace(0, height - tile_h, grid).round().astype(int)
    return [(int(x0), int(y0), int(x0) + tile_w, int(y0) + tile_h) for y0 in ys for x0 in xs]


def detect_in(detector: Detector, image: np.ndarray, window: Window, class_names: list[str], *,
              drop_cut: bool) -> list[Detection]:
    """The detector's detections inside `window`, in image pixels; with `drop_cut`, those touching a window side
    that is not an image border are left out."""
    x0, y0, x1, y1 = window
    height, width = image.shape[:2]
    found = detector.detect(np.ascontiguousarray(image[y0:y1, x0:x1]), class_names)
    cut = [x0 > 0, y0 > 0, x1 < width, y1 < height]  # left, top, right, bottom sides lie inside the image
    mapped = []
    for det in found:
        x, y, w, h = det.bbox
        touches = [x <= EDGE_PX, y <= EDGE_PX, x + w >= x1 - x0 - EDGE_PX, y + h >= y1 - y0 - EDGE_PX]
        if drop_cut and any(c and t for c, t in zip(cut, touches, strict=True)):
            continue
        mapped.append(Detection(det.category, (x + x0, y + y0, w, h), det.score))
    return mapped
