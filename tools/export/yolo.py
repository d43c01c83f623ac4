"""YOLO (ultralytics) export, detection boxes or segmentation polygons.

On-disk layout (under the output directory DIR):

    DIR/yolo/data.yaml                 path (absolute DIR/yolo), one image dir per split, names {id: name}, nc
    DIR/yolo/images/{split}/{id}.png   hard link to DIR/images/{split}/{id}.png (a copy where links fail)
    DIR/yolo/labels/{split}/{id}.txt   one line per instance; an empty file for an image without objects

Class ids are the index in `spec.class_names`. Label lines:
- detection: `cls cx cy w h`, normalised to [0, 1], 6 decimals;
- when `Task.instance_segmentation` is in spec.tasks: `cls x1 y1 x2 y2 ...` normalised, the outer contour of
  the largest 4-connected part of the instance mask (`tools.polygons.rle_polygons`: pixel-edge contour
  simplified by Douglas–Peucker at 0.5–1 px, keeping the contour's extreme points so its box is exactly that
  part's box). An instance without a mask is written as its box polygon. Holes and smaller parts are dropped:
  YOLO-seg has one ring per object. The masks of a sample are traced together.

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

from synthloop.tools.export.base import BaseExporter
from synthloop.tools.io import atomic_link_or_copy, atomic_write_text
from synthloop.tools.polygons import Polygon, rle_polygons
from synthloop.tools.types import Instance, Sample, Task, TaskSpec


def _fmt(values: list[float] | np.ndarray) -> str:
    clipped = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0).ravel().tolist()
    return " ".join(["%.6f"] * len(clipped)) % tuple(clipped)


def detection_line(class_id: int, instance: Instance, width: int, height: int) -> str:
    """`cls cx cy w h` normalised, 6 decimals."""
    x, y, w, h = instance.bbox
    return f"{class_id} " + _fmt([(x + w / 2) / width, (y + h / 2) / height, w / width, h / height])


def _polygon_line(class_id: int, ring: Polygon, width: int, height: int) -> str:
    return f"{class_id} " + _fmt(ring / np.array([width, height], dtype=np.float64))


def _box_ring(instance: Instance) -> Polygon:
    x, y, w, h = instance.bbox
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)


def segmentation_line(class_id: int, instance: Instance, width: int, height: int) -> str:
    """`cls x1 y1 x2 y2 ...` normalised: the instance's mask polygon, or its box without a mask."""
    if instance.segmentation is not None:
        (ring,) = rle_polygons(instance.segmentation.size, [instance.segmentation.counts])
    else:
        ring = _box_ring(instance)
    return _polygon_line(class_id, ring, width, height)


def label_text(sample: Sample, class_ids: dict[str, int], segmentation: bool) -> str:
    """The label file content of one sample ('' when it has no instances).

    Segmentation polygons of a sample are traced together (`rle_polygons`: one decode, one OpenCV pass).
    """
    instances = sample.annotation.instances if sample.annotation is not None else []
    kept = [inst for inst in instances if inst.area != 0]
    for instance in kept:
        if instance.category not in class_ids:
            raise ValueError(f"sample {sample.id}: class '{instance.category}' is not in the spec")
    if not segmentation:
        lines = [detection_line(class_ids[i.category], i, sample.width, sample.height) for i in kept]
        return "".join(f"{text}\n" for text in lines)
    rings: list[Polygon | None] = [None if i.segmentation is not None else _box_ring(i) for i in kept]
    by_size: dict[tuple[int, int], list[int]] = {}
    for k, instance in enumerate(kept):
        if instance.segmentation is not None:
            by_size.setdefault(tuple(instance.segmentation.size), []).append(k)
    for size, members in by_size.items():
        counts = [kept[k].segmentation.counts for k in members]  # type: ignore[union-attr]
        for k, ring in zip(members, rle_polygons(size, counts), strict=True):
            rings[k] = ring
    lines = [
        _polygon_line(class_ids[i.category], ring, sample.width, sample.height)
        for i, ring in zip(kept, rings, strict=True)
        if ring is not None
    ]
    return "".join(f"{text}\n" for text in lines)


def data_yaml(yolo_dir: Path, spec: TaskSpec) -> str:
    """Text of data.yaml."""
    data: dict[str, object] = {"path": str(yolo_dir.resolve())}
    for split in spec.splits.names():
        data[split] = f"images/{split}"
    data["names"] = dict(enumerate(spec.class_names))
    data["nc"] = len(spec.class_names)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


class YoloExporter(BaseExporter):
    """Writes the `yolo/` tree (see the module docstring): each sample's image link and label file when it
    arrives, data.yaml and the removal of stale files at close."""

    id = "yolo"

    @property
    def yolo_dir(self) -> Path:
        """`DIR/yolo`."""
        return self.out_dir / "yolo"

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Start a new export into `out_dir`."""
        super().setup(out_dir, spec)
        self._class_ids = {name: i for i, name in enumerate(spec.class_names)}
        self._segmentation = Task.instance_segmentation in spec.tasks

    def export_sample(self, sample: Sample) -> None:
        """Link the image and write its label file."""
        self.check_sample(sample)
        name = Path(sample.image_path).name
        image = self.yolo_dir / "images" / sample.split / name
        label = self.yolo_dir / "labels" / sample.split / f"{Path(name).stem}.txt"
        text = label_text(sample, self._class_ids, self._segmentation)
        atomic_link_or_copy(self.out_dir / sample.image_path, self.wrote(image))
        atomic_write_text(self.wrote(label), text)

    def close(self) -> None:
        """Write data.yaml and remove files left by an earlier export that this one did not write."""
        for kind in ("images", "labels"):
            for split in self.spec.splits.names():
                folder = self.yolo_dir / kind / split
                folder.mkdir(parents=True, exist_ok=True)
                self.remove_stale(folder)
        atomic_write_text(self.yolo_dir / "data.yaml", data_yaml(self.yolo_dir, self.spec))
        self.finish()
