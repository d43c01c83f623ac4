"""Pure box geometry. Boxes are tuples; xyxy unless a name says xywh."""

from __future__ import annotations

Box = tuple[float, float, float, float]


def xywh_to_xyxy(box: Box) -> Box:
    """(x, y, w, h) → (x0, y0, x1, y1)."""
    x, y, w, h = box
    return (x, y, x + w, y + h)


def xyxy_to_xywh(box: Box) -> Box:
    """(x0, y0, x1, y1) → (x, y, w, h)."""
    x0, y0, x1, y1 = box
    return (x0, y0, x1 - x0, y1 - y0)


def box_area(box: Box) -> float:
    """Area of an xyxy box (0 for a degenerate one)."""
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def intersection(a: Box, b: Box) -> float:
    """Intersection area of two xyxy boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two xyxy boxes."""
    inter = intersection(a, b)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def scale_box(box: Box, width: float, height: float) -> Box:
    """Normalised xyxy → pixel xyxy."""
    return (box[0] * width, box[1] * height, box[2] * width, box[3] * height)


def normalise_box(box: Box, width: float, height: float) -> Box:
    """Pixel xyxy → normalised xyxy."""
    return (box[0] / width, box[1] / height, box[2] / width, box[3] / height)


def pixel_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """Normalised xyxy → integer pixel xyxy, at least one pixel each way and inside the image."""
    x0 = min(round(box[0] * width), width - 1)
    y0 = min(round(box[1] * height), height - 1)
    x1 = max(min(round(box[2] * width), width), x0 + 1)
    y1 = max(min(round(box[3] * height), height), y0 + 1)
    return x0, y0, x1, y1
