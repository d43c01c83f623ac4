"""YOLO (ultralytics) export, detection boxes or segmentation polygons.

On-disk layout (under the output directory DIR):

    DIR/yolo/data.yaml                 path (absolute DIR/yolo), one image dir per split, names {id: name}, nc
    DIR/yolo/images/{split}/{id}.png   hard link to DIR/images/{split}/{id}.png (a copy where links fail)
    DIR/yolo/labels/{split}/{id}.txt   one line per instance; an empty file for an image without objects

Class ids are the index in `spec.class_names`. Label lines:
- detection: `cls cx cy w h`, normalised to [0, 1], 6 decimals;
- when `Task.instance_segmentation` is in spec.tasks: `cls x1 y1 x2 y2 ...` normalised, the outer contour of
  the largest 4-connected part of the instance mask (pixel-edge contour simplified by Douglas–Peucker at
  0.5–1 px, keeping the contour's extreme points so its box is exactly that part's box). An instance without a
  mask is written as its box polygon. Holes and smaller parts are dropped: YOLO-seg has one ring per object.

Instances with area 0 are skipped (as in the COCO export). Files written by an earlier export that this one
did not write (samples no longer kept) are removed from `yolo/images` and `yolo/labels`, so the YOLO tree
always matches the COCO files. `path` is absolute because ultralytics and YOLOv5 resolve a relative one
against their own dataset folder; after moving the dataset, edit it (or delete it: ultralytics then uses the
folder of data.yaml).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from synthloop.tools.io import atomic_link_or_copy, atomic_write_text
from synthloop.tools.masks import decode_rle
from synthloop.tools.types import Instance, Sample, Task, TaskSpec

# Douglas–Peucker tolerance: 0.5 % of the contour's length, kept within [0.5, 1] px. At 0.5 px the polygon
# rasterises back to the exact mask; 1 px keeps large shapes at IoU > 0.99 with a tenth of the vertices.
MIN_TOLERANCE_PX, MAX_TOLERANCE_PX, TOLERANCE_PER_LENGTH = 0.5, 1.0, 0.005

Polygon = np.ndarray  # (N, 2) float64 pixel xy, corner coordinates


# --------------------------------------------------------------------------------------------- polygons


def mask_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of a boolean mask: (rows, starts, ends) with `ends` exclusive, in row-major order."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)
    rows, starts = np.nonzero(step == 1)
    _, ends = np.nonzero(step == -1)
    return rows, starts, ends


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected part of a boolean mask (the topmost one on a tie); empty in, empty out.

    Labels runs rather than pixels, vectorised: runs of adjacent rows that overlap are linked, then labels
    spread by min-propagation with pointer jumping until they settle (a few passes, each pure numpy).
    """
    rows, starts, ends = mask_runs(mask)
    n = len(rows)
    out = np.zeros(mask.shape, dtype=bool)
    if n == 0:
        return out
    if _single_run_chain(rows, starts, ends):
        out[:] = mask
        return out
    # Runs of one row are sorted and disjoint, so the runs of row r - 1 that overlap run b form the index
    # range [lo, hi): keys put (row, column) on one sorted axis.
    stride = mask.shape[1] + 1
    start_keys, end_keys = rows * stride + starts, rows * stride + ends
    lo = np.searchsorted(end_keys, (rows - 1) * stride + starts, side="right")
    hi = np.searchsorted(start_keys, (rows - 1) * stride + ends, side="left")
    counts = np.maximum(hi - lo, 0)
    below = np.repeat(np.arange(n), counts)
    above = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo, counts)
    labels = np.arange(n)
    while True:
        previous = labels.copy()
        low = np.minimum(labels[above], labels[below])
        np.minimum.at(labels, labels[above], low)
        np.minimum.at(labels, labels[below], low)
        while True:  # pointer jumping: every run points at its current root
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
        if np.array_equal(labels, previous):
            break
    sizes = np.bincount(labels, weights=ends - starts, minlength=n)
    best = int(np.argmax(sizes))  # the first maximum: the label of the topmost run among equal sizes
    for i in np.flatnonzero(labels == best):
        out[rows[i], starts[i] : ends[i]] = True
    return out


def _single_run_chain(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> bool:
    """True when every row from the first to the last holds one run and each run overlaps the next one.

    The common case (a convex, unoccluded object) is then one component without any union–find.
    """
    if len(rows) != rows[-1] - rows[0] + 1 or np.any(np.diff(rows) != 1):
        return False
    return bool(np.all((starts[1:] < ends[:-1]) & (starts[:-1] < ends[1:])))


# Directions in image coordinates (x right, y down), clockwise order: right, down, left, up.
_DIRS = ((1, 0), (0, 1), (-1, 0), (0, -1))


def trace_outer_contour(component: np.ndarray) -> Polygon:
    """Pixel-edge outer contour of a 4-connected boolean region, as its corner vertices (clockwise on screen).

    Crack following: walk the pixel edges with the region on the right-hand side, starting on the top edge of
    the top-left pixel. At each corner look at the two pixels ahead: front-right outside → turn right; both
    inside → turn left; else straight. Turning right when only the front-left pixel is inside keeps
    diagonal neighbours apart (4-connectivity), so the ring never touches itself.
    """
    ys, xs = np.nonzero(component)
    if ys.size == 0:
        return np.zeros((0, 2))
    grid = np.zeros((component.shape[0] + 2, component.shape[1] + 2), dtype=bool)
    grid[1:-1, 1:-1] = component

    def inside(px: int, py: int) -> bool:
        return bool(grid[py + 1, px + 1])

    start = (int(xs[0]), int(ys[0]))  # np.nonzero is row-major: the first hit is the top-left pixel
    x, y, d = start[0], start[1], 0
    corners: list[tuple[int, int]] = [start]
    while True:
        dx, dy = _DIRS[d]
        x, y = x + dx, y + dy
        if (x, y) == start and d == 3:
            break
        # Pixels ahead of corner (x, y) when moving in direction d: front-left and front-right.
        if d == 0:
            fl, fr = inside(x, y - 1), inside(x, y)
        elif d == 1:
            fl, fr = inside(x, y), inside(x - 1, y)
        elif d == 2:
            fl, fr = inside(x - 1, y), inside(x - 1, y - 1)
        else:
            fl, fr = inside(x - 1, y - 1), inside(x, y - 1)
        if not fr:
            d = (d + 1) % 4
        elif fl:
            d = (d - 1) % 4
        else:
            continue
        corners.append((x, y))
    return np.asarray(corners, dtype=np.float64)


def _simplify_open(points: np.ndarray, tolerance: float) -> list[int]:
    """Douglas–Peucker on an open polyline; returns the kept indices (first and last always kept)."""
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


def simplify_ring(ring: Polygon, tolerance: float) -> Polygon:
    """Douglas–Peucker on a closed ring that always keeps one vertex on each side of the ring's box."""
    if len(ring) <= 4:
        return ring
    anchors = sorted(
        {
            int(np.argmin(ring[:, 0])),
            int(np.argmax(ring[:, 0])),
            int(np.argmin(ring[:, 1])),
            int(np.argmax(ring[:, 1])),
        }
    )
    kept: list[int] = []
    for a, b in zip(anchors, [*anchors[1:], anchors[0] + len(ring)], strict=True):
        idx = np.arange(a, b + 1) % len(ring)
        kept.extend(int(idx[k]) for k in _simplify_open(ring[idx], tolerance)[:-1])
    return ring[kept] if len(kept) >= 3 else ring  # a sliver may collapse to a line: keep it exact


def ring_length(ring: Polygon) -> float:
    """Perimeter of a closed ring."""
    steps = np.diff(np.vstack([ring, ring[:1]]), axis=0)
    return float(np.hypot(steps[:, 0], steps[:, 1]).sum())


def mask_polygon(mask: np.ndarray, tolerance: float | None = None) -> Polygon:
    """Simplified outer contour (pixel xy) of the largest 4-connected part of a mask; (0, 2) when empty.

    `tolerance` in pixels; by default it grows with the contour length (see MIN/MAX_TOLERANCE_PX).
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.zeros((0, 2))
    cols = np.flatnonzero(mask.any(axis=0))
    y0, x0 = int(rows[0]), int(cols[0])
    crop = mask[y0 : rows[-1] + 1, x0 : cols[-1] + 1]
    ring = trace_outer_contour(largest_component(crop))
    if tolerance is None:
        tolerance = min(MAX_TOLERANCE_PX, max(MIN_TOLERANCE_PX, TOLERANCE_PER_LENGTH * ring_length(ring)))
    return simplify_ring(ring, tolerance) + np.array([x0, y0], dtype=np.float64)


# --------------------------------------------------------------------------------------------- labels


def _fmt(values: list[float]) -> str:
    return " ".join(f"{min(max(v, 0.0), 1.0):.6f}" for v in values)


def detection_line(class_id: int, instance: Instance, width: int, height: int) -> str:
    """`cls cx cy w h` normalised, 6 decimals."""
    x, y, w, h = instance.bbox
    return f"{class_id} " + _fmt([(x + w / 2) / width, (y + h / 2) / height, w / width, h / height])


def segmentation_line(class_id: int, instance: Instance, width: int, height: int) -> str:
    """`cls x1 y1 x2 y2 ...` normalised: the instance's mask polygon, or its box without a mask."""
    if instance.segmentation is not None:
        ring = mask_polygon(decode_rle(instance.segmentation))
    else:
        x, y, w, h = instance.bbox
        ring = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)
    normalised = (ring / np.array([width, height], dtype=np.float64)).ravel().tolist()
    return f"{class_id} " + _fmt(normalised)


def label_text(sample: Sample, class_ids: dict[str, int], segmentation: bool) -> str:
    """The label file content of one sample ('' when it has no instances)."""
    line = segmentation_line if segmentation else detection_line
    instances = sample.annotation.instances if sample.annotation is not None else []
    lines = []
    for instance in instances:
        if instance.area == 0:
            continue
        if instance.category not in class_ids:
            raise ValueError(f"sample {sample.id}: class '{instance.category}' is not in the spec")
        lines.append(line(class_ids[instance.category], instance, sample.width, sample.height))
    return "".join(f"{text}\n" for text in lines)


def data_yaml(yolo_dir: Path, spec: TaskSpec) -> str:
    """Text of data.yaml."""
    data: dict[str, object] = {"path": str(yolo_dir.resolve())}
    for split in spec.splits.names():
        data[split] = f"images/{split}"
    data["names"] = dict(enumerate(spec.class_names))
    data["nc"] = len(spec.class_names)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


class YoloExporter:
    """Writes the `yolo/` tree (see the module docstring)."""

    id = "yolo"

    def __init__(self) -> None:
        self._out_dir: Path | None = None
        self._spec: TaskSpec | None = None
        self._class_ids: dict[str, int] = {}
        self._segmentation = False
        self._written: set[Path] = set()

    @property
    def yolo_dir(self) -> Path:
        """`DIR/yolo`."""
        if self._out_dir is None:
            raise RuntimeError("YoloExporter used before setup")
        return self._out_dir / "yolo"

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Start a new export into `out_dir`."""
        self._out_dir = Path(out_dir)
        self._spec = spec
        self._class_ids = {name: i for i, name in enumerate(spec.class_names)}
        self._segmentation = Task.instance_segmentation in spec.tasks
        self._written = set()

    def export_sample(self, sample: Sample) -> None:
        """Link the image and write its label file."""
        if self._out_dir is None or self._spec is None:
            raise RuntimeError("YoloExporter.export_sample called before setup")
        if sample.split not in self._spec.splits.names():
            raise ValueError(f"sample {sample.id}: split '{sample.split}' is not in the spec")
        name = Path(sample.image_path).name
        image = self.yolo_dir / "images" / sample.split / name
        label = self.yolo_dir / "labels" / sample.split / f"{Path(name).stem}.txt"
        atomic_link_or_copy(self._out_dir / sample.image_path, image)
        atomic_write_text(label, label_text(sample, self._class_ids, self._segmentation))
        self._written.update((image, label))

    def close(self) -> None:
        """Write data.yaml and remove files left by an earlier export that this one did not write."""
        if self._spec is None:
            raise RuntimeError("YoloExporter.close called before setup")
        for kind in ("images", "labels"):
            for split in self._spec.splits.names():
                folder = self.yolo_dir / kind / split
                folder.mkdir(parents=True, exist_ok=True)
                for path in folder.iterdir():
                    if path.is_file() and path not in self._written:
                        path.unlink()
        atomic_write_text(self.yolo_dir / "data.yaml", data_yaml(self.yolo_dir, self._spec))
