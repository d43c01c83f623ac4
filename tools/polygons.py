"""Mask → polygon geometry: connected parts, pixel-edge contours and Douglas–Peucker simplification.

What the YOLO-seg export writes and `validate` / the card check against:
- `largest_component` / `largest_component_boxes`: the largest 4-connected part of a mask (topmost on a tie);
- `trace_outer_contour`: the pixel-edge outer contour of a 4-connected region, as its corner vertices;
- `mask_polygon` / `rle_polygons`: that contour simplified by Douglas–Peucker at 0.5–1 px, keeping the
  contour's extreme points so its box is exactly that part's box. Holes and smaller parts are dropped.

OpenCV does the pixel work (components, contour, Douglas–Peucker; imported lazily), numpy decodes only each
mask's tight box from its RLE (`tools.masks.rle_crops`), and the masks of an image go through together; a
check on every contour point keeps the Douglas–Peucker bound exact (see `_simplify_polylines`).
"""

from __future__ import annotations

import itertools
from types import ModuleType

import numpy as np

from synthloop.tools.masks import MaskCrop, MaskSize, rle_crops, tight_crop

# Douglas–Peucker tolerance: 0.5 % of the contour's length, kept within [0.5, 1] px. At 0.5 px the polygon
# rasterises back to the exact mask; 1 px keeps large shapes at IoU > 0.99 with a tenth of the vertices.
MIN_TOLERANCE_PX, MAX_TOLERANCE_PX, TOLERANCE_PER_LENGTH = 0.5, 1.0, 0.005

Polygon = np.ndarray  # (N, 2) float64 pixel xy, corner coordinates


def _cv2() -> ModuleType:
    """OpenCV, imported on first use (only polygon work needs it)."""
    import cv2

    return cv2


def _largest_part(crop: np.ndarray) -> MaskCrop:
    """Largest 4-connected part of a (non-empty) crop, cut to its own tight box: (part, x, y) in the crop.

    A tie goes to the part whose first pixel comes first in row-major order (the topmost, then leftmost).
    """
    cv2 = _cv2()
    n, labels, stats, _ = cv2.connectedComponentsWithStats(crop.view(np.uint8), connectivity=4)
    if n <= 2:
        return crop, 0, 0
    area = stats[1:, cv2.CC_STAT_AREA]
    tied = np.flatnonzero(area == area.max()) + 1
    best = int(tied[0])
    if tied.size > 1:  # do not rely on OpenCV's label order
        flat = labels.ravel()
        best = min(tied.tolist(), key=lambda label: int(np.argmax(flat == label)))
    x, y, w, h = stats[best, :4].tolist()
    return np.ascontiguousarray(labels[y : y + h, x : x + w] == best), x, y


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected part of a boolean mask (the topmost one on a tie); empty in, empty out."""
    out = np.zeros(mask.shape, dtype=bool)
    crop, x0, y0 = tight_crop(np.asarray(mask, dtype=bool))
    if crop.size:
        part, x, y = _largest_part(crop)
        out[y0 + y : y0 + y + part.shape[0], x0 + x : x0 + x + part.shape[1]] = part
    return out


def largest_component_boxes(size: MaskSize, counts: list[str] | list[bytes]) -> list[tuple[float, float, float, float]]:
    """Pixel xywh boxes of the largest 4-connected part of each COCO RLE mask of one image; zeros if empty."""
    boxes = []
    for crop, x0, y0 in rle_crops(size, counts):
        if crop.size == 0:
            boxes.append((0.0, 0.0, 0.0, 0.0))
            continue
        part, x, y = _largest_part(crop)
        boxes.append((float(x0 + x), float(y0 + y), float(part.shape[1]), float(part.shape[0])))
    return boxes


def _outline(crop: np.ndarray) -> np.ndarray | None:
    """Pixel-edge outer contour of a crop that is one 4-connected part; None when it holds several parts.

    The ring is int32 (N, 2) in crop corners, clockwise on screen from the top-left corner of the first
    pixel, and may repeat a corner or hold points along straight edges (`trace_outer_contour` drops those).

    OpenCV follows borders with 8-connected foreground, the opposite of what a 4-connected region needs
    (diagonal neighbours must stay apart). So the tracer runs on the outside instead: the inverted crop,
    upsampled 2x and framed by one outside pixel. The outside is then 8-connected foreground and every
    4-connected part a hole in it (a part inside another's hole is a hole of an enclosed outside piece), so
    one hole in all means one part. The frame's hole border consists of outside sub-pixels next to the part;
    sub-pixel i (frame included) lies in the half of a pixel that faces corner i // 2, so halving maps the
    border onto the part's pixel corners.
    """
    cv2 = _cv2()
    h, w = crop.shape
    inverted = (~crop).view(np.uint8)
    up = cv2.resize(inverted, (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)
    outside = cv2.copyMakeBorder(up, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1)
    contours, hierarchy = cv2.findContours(outside, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    links = hierarchy.reshape(-1, 4)
    if int((links[:, 3] >= 0).sum()) != 1:
        return None
    return contours[int(np.flatnonzero(links[:, 3] >= 0)[0])].reshape(-1, 2) >> 1


def _part_ring(crop: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Outline (as `_outline`) of the largest 4-connected part of a non-empty crop, and that part's offset."""
    ring = _outline(crop)
    if ring is not None:
        return ring, 0, 0
    part, x, y = _largest_part(crop)
    ring = _outline(part)
    if ring is None:  # impossible: a single part has a single outline
        raise RuntimeError("contour tracing found several outlines for one 4-connected part")
    return ring, x, y


def _corners(ring: np.ndarray) -> np.ndarray:
    """A ring without repeated points and without points inside straight edges."""
    ring = ring[np.any(ring != np.roll(ring, 1, axis=0), axis=1)]
    before = ring - np.roll(ring, 1, axis=0)
    after = np.roll(ring, -1, axis=0) - ring
    cross = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
    dot = before[:, 0] * after[:, 0] + before[:, 1] * after[:, 1]
    return ring[(cross != 0) | (dot < 0)]


def trace_outer_contour(component: np.ndarray) -> Polygon:
    """Pixel-edge outer contour of a 4-connected boolean region, as its corner vertices (clockwise on screen).

    The ring starts at the top-left corner of the region's first (row-major) pixel and goes right; only
    corners where it turns are kept. Diagonal neighbours stay apart (4-connectivity): the ring passes
    between them, so it encloses the region plus every hole that the 8-connected outside cannot reach.
    OpenCV traces it (see `_outline`); a region of several parts gives the largest part's contour.
    """
    crop, x0, y0 = tight_crop(np.asarray(component, dtype=bool))
    if crop.size == 0:
        return np.zeros((0, 2))
    ring, x, y = _part_ring(crop)
    return (_corners(ring.astype(np.int64)) + np.array([x0 + x, y0 + y])).astype(np.float64)


def _douglas_peucker(points: np.ndarray, tolerance: float) -> list[int]:
    """Douglas–Peucker on an open polyline in numpy (exact; the repair path): kept indices, ends included."""
    keep = [0, len(points) - 1]
    stack = [(0, len(points) - 1)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        a, b = points[i], points[j]
        seg = b - a
        rel = points[i + 1 : j] - a
        length = float(np.hypot(seg[0], seg[1]))
        if length == 0.0:
            dist = np.hypot(rel[:, 0], rel[:, 1])
        else:
            dist = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / length
        k = int(np.argmax(dist))
        if dist[k] > tolerance:
            keep.append(i + 1 + k)
            stack.extend([(i, i + 1 + k), (i + 1 + k, j)])
    return sorted(set(keep))


def _exact_pieces(line: np.ndarray, cuts: list[int], tolerance: float) -> np.ndarray:
    """Kept indices of one line by the exact numpy Douglas–Peucker, piece by piece."""
    kept = [a + np.asarray(_douglas_peucker(line[a : b + 1], tolerance)[:-1]) for a, b in itertools.pairwise(cuts)]
    return np.concatenate([*kept, [len(line) - 1]]).astype(np.int64)


def _simplify_polylines(lines: list[np.ndarray], bounds: list[list[int]], tolerances: list[float]) -> list[np.ndarray]:
    """Douglas–Peucker of open polylines, each cut at its `bounds` (sorted, 0 to len - 1, always kept).

    Returns the kept indices of each line. cv2.approxPolyDP does the work, piece by piece; its points are
    mapped back to indices (one sort for all lines) and checked: each point must lie within its line's
    tolerance of the line through the kept chord over it, as Douglas–Peucker promises (OpenCV's final
    "almost straight" clean-up can exceed that by up to ~0.7 tolerance). A chord that fails is split again
    by the exact numpy version; a line whose points do not map back in order (a repeated vertex, float32
    rounding) is done by it altogether. Integer points are moved by whole numbers only, so a line's result
    never depends on the other lines.
    """
    cv2 = _cv2()
    points = np.concatenate(lines).astype(np.float64)
    as32 = points.astype(np.float32)
    sizes = [len(line) for line in lines]
    starts = np.cumsum([0, *sizes])
    approx, forced_at, forced, line_ends = [], [], [], []
    filled = 0
    for cuts, tolerance, start, size in zip(bounds, tolerances, starts[:-1].tolist(), sizes, strict=True):
        pts = as32[start : start + size]
        for a, b in itertools.pairwise(cuts):
            piece = cv2.approxPolyDP(pts[a : b + 1], tolerance, False)[:-1]
            forced_at.append(filled)
            forced.append(start + a)
            approx.append(piece.reshape(-1, 2))
            filled += len(piece)
        approx.append(pts[-1:])
        forced_at.append(filled)
        forced.append(start + size - 1)
        filled += 1
        line_ends.append(filled)
    wanted_xy = np.concatenate(approx).astype(np.float64)
    line_of = np.repeat(np.arange(len(lines)), np.diff(line_ends, prepend=0))
    exact = bool(np.array_equal(as32, points))
    if exact and points.size and points.min() >= 0 and points.max() < 2**20 and np.all(points == np.floor(points)):
        # whole pixel corners: one integer key per (line, x, y)
        keys = (
            (np.repeat(np.arange(len(lines)), sizes) << 40)
            + (points[:, 1].astype(np.int64) << 20)
            + points[:, 0].astype(np.int64)
        )
        wanted = (line_of << 40) + (wanted_xy[:, 1].astype(np.int64) << 20) + wanted_xy[:, 0].astype(np.int64)
    else:
        keys = np.ascontiguousarray(as32).view(np.int64).ravel()
        wanted = np.ascontiguousarray(wanted_xy.astype(np.float32)).view(np.int64).ravel()
    order = np.argsort(keys, kind="stable")
    found = order[np.minimum(np.searchsorted(keys, wanted, sorter=order), keys.size - 1)]
    found[forced_at] = forced
    bad = keys[found] != wanted
    rising = np.diff(found) > 0
    bad[:-1] |= ~rising
    bad[1:] |= ~rising
    redo = set(range(len(lines))) if not exact else set(line_of[bad].tolist())
    if redo:
        found = np.concatenate(
            [
                start + _exact_pieces(line, cuts, t)
                if i in redo
                else found[(line_ends[i - 1] if i else 0) : line_ends[i]]
                for i, (line, cuts, t, start) in enumerate(
                    zip(lines, bounds, tolerances, starts[:-1].tolist(), strict=True)
                )
            ]
        )
    # The check: distance of every point to the line through its chord's ends.
    chord = np.searchsorted(found, np.arange(points.shape[0]), side="right") - 1
    np.minimum(chord, found.size - 2, out=chord)
    i, j = found[chord], found[chord + 1]
    xs, ys = points[:, 0], points[:, 1]
    ax, ay = xs[i], ys[i]
    dx, dy = xs[j] - ax, ys[j] - ay
    rx, ry = xs - ax, ys - ay
    length = np.hypot(dx, dy)
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.where(length > 0, np.abs(dx * ry - dy * rx) / length, np.hypot(rx, ry))
    tol = np.repeat(np.asarray(tolerances, dtype=np.float64), sizes)
    over = dist > tol
    if over.any():
        extra = [
            found[k] + np.asarray(_douglas_peucker(points[found[k] : found[k + 1] + 1], float(tol[found[k]])))
            for k in np.unique(chord[over]).tolist()
        ]
        found = np.unique(np.concatenate([found, *extra]))
    cut = np.searchsorted(found, starts)
    return [found[cut[k] : cut[k + 1]] - starts[k] for k in range(len(lines))]


def _simplify_rings(rings: list[np.ndarray], tolerances: list[float]) -> list[np.ndarray]:
    """`simplify_ring` for many rings at once (one approxPolyDP call per anchored piece, one check)."""
    out: list[np.ndarray] = list(rings)
    todo = [i for i, ring in enumerate(rings) if len(ring) > 4]
    if not todo:
        return out
    lines, bounds, firsts = [], [], []
    for i in todo:
        ring = rings[i]
        anchors = sorted({*np.argmin(ring, axis=0).tolist(), *np.argmax(ring, axis=0).tolist()})
        first = anchors[0]  # one vertex on each side of the ring's box; the line goes round from the first
        lines.append(np.concatenate((ring[first:], ring[: first + 1])))
        bounds.append([a - first for a in anchors] + [len(ring)])
        firsts.append(first)
    kept_lists = _simplify_polylines(lines, bounds, [tolerances[i] for i in todo])
    for i, kept, first in zip(todo, kept_lists, firsts, strict=True):
        ring = rings[i]
        if len(kept) - 1 >= 3:  # a sliver may collapse to a line: keep it exact
            out[i] = ring[(kept[:-1] + first) % len(ring)]
    return out


def simplify_polyline(points: np.ndarray, tolerance: float) -> list[int]:
    """Douglas–Peucker on an open polyline; returns the kept indices (first and last always kept)."""
    if len(points) <= 2:
        return list(range(len(points)))
    return _simplify_polylines([np.asarray(points)], [[0, len(points) - 1]], [tolerance])[0].tolist()


def simplify_ring(ring: Polygon, tolerance: float) -> Polygon:
    """Douglas–Peucker on a closed ring that always keeps one vertex on each side of the ring's box."""
    return _simplify_rings([ring], [tolerance])[0]


def ring_length(ring: Polygon) -> float:
    """Perimeter of a closed ring."""
    steps = np.diff(np.vstack([ring, ring[:1]]), axis=0)
    return float(np.hypot(steps[:, 0], steps[:, 1]).sum())


def _tolerance(length: float) -> float:
    return min(MAX_TOLERANCE_PX, max(MIN_TOLERANCE_PX, TOLERANCE_PER_LENGTH * length))


def _crop_polygons(crops: list[MaskCrop], tolerance: float | None) -> list[Polygon]:
    """Simplified outer contour (image pixels) of the largest 4-connected part of each crop's mask."""
    polygons = [np.zeros((0, 2))] * len(crops)
    done = [k for k, (crop, _, _) in enumerate(crops) if crop.size]
    rings, shifts = [], []
    for k in done:
        crop, x0, y0 = crops[k]
        ring, x, y = _part_ring(crop)
        rings.append(ring)
        shifts.append((x0 + x, y0 + y))
    if tolerance is None:  # ring steps are axis-parallel: the perimeter is the sum of |dx| + |dy|
        tolerances = [_tolerance(float(np.abs(np.diff(r, axis=0, append=r[:1])).sum())) for r in rings]
    else:
        tolerances = [tolerance] * len(rings)
    for k, ring, shift in zip(done, _simplify_rings(rings, tolerances), shifts, strict=True):
        polygons[k] = ring + np.array(shift, dtype=np.float64)
    return polygons


def mask_polygon(mask: np.ndarray, tolerance: float | None = None) -> Polygon:
    """Simplified outer contour (pixel xy) of the largest 4-connected part of a mask; (0, 2) when empty.

    `tolerance` in pixels; by default it grows with the contour length (see MIN/MAX_TOLERANCE_PX).
    """
    return _crop_polygons([tight_crop(np.asarray(mask, dtype=bool))], tolerance)[0]


def rle_polygons(size: MaskSize, counts: list[str] | list[bytes], tolerance: float | None = None) -> list[Polygon]:
    """`mask_polygon` of compressed COCO RLE masks of one image (tight boxes decoded, one simplify pass)."""
    return _crop_polygons(rle_crops(size, counts), tolerance)
