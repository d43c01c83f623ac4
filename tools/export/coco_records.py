"""The pieces of a COCO instances file that other exports share: category ids, which instances are exported,
the `images` and `annotations` entries of one sample, and the numbering of images and annotations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from synthloop.tools.types import Instance, Sample, TaskSpec

FORMAT_VERSION = "1.0"


def coco_path(out_dir: Path, split: str) -> Path:
    """Where the COCO file of `split` lives."""
    return out_dir / "annotations" / f"instances_{split}.json"


def image_file_name(sample: Sample) -> str:
    """The COCO `file_name` of a sample: its image path relative to `images/{split}/`."""
    path = PurePosixPath(sample.image_path)
    base = PurePosixPath("images") / sample.split
    try:
        return str(path.relative_to(base))
    except ValueError:
        raise ValueError(
            f"sample {sample.id}: image_path '{sample.image_path}' is not under '{base}/' (output contract)"
        ) from None


def box_polygon(bbox: tuple[float, float, float, float]) -> list[list[float]]:
    """A COCO polygon (one ring, clockwise from the top-left corner) tracing an xywh box."""
    x, y, w, h = bbox
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def category_ids(spec: TaskSpec) -> dict[str, int]:
    """COCO category id of each class name (index in `spec.class_names` + 1)."""
    return {name: i + 1 for i, name in enumerate(spec.class_names)}


def exported_instances(sample: Sample) -> list[tuple[int, Instance]]:
    """(index in `annotation.instances`, instance) of the instances the exports contain (area > 0)."""
    instances = sample.annotation.instances if sample.annotation is not None else []
    return [(k, inst) for k, inst in enumerate(instances) if inst.area != 0]


@dataclass(frozen=True)
class ImageIds:
    """COCO ids of one sample: its image id and the annotation id of each exported instance (by its index)."""

    image_id: int
    ann_ids: dict[int, int]


class SplitNumbering:
    """Numbers one split's samples as the COCO file does: images 1, 2, … in sample-id order, annotations
    1, 2, … in (image, instance) order. Give it the samples in id order."""

    def __init__(self) -> None:
        self._images = 0
        self._annotations = 0

    def next(self, exported: list[int]) -> ImageIds:
        """The ids of the next sample, given the indices of its exported instances."""
        self._images += 1
        ids = ImageIds(self._images, {k: self._annotations + 1 + n for n, k in enumerate(exported)})
        self._annotations += len(exported)
        return ids


def split_ids(exported: dict[str, list[int]]) -> dict[str, ImageIds]:
    """Image and annotation ids of one split's samples (sample id → indices of its exported instances)."""
    numbering = SplitNumbering()
    return {sample_id: numbering.next(exported[sample_id]) for sample_id in sorted(exported)}


def image_record(sample: Sample, image_id: int) -> dict[str, Any]:
    """The COCO `images` entry of a sample (without the caption the instances file adds)."""
    return {
        "id": image_id,
        "file_name": image_file_name(sample),
        "width": sample.width,
        "height": sample.height,
        "sample_id": sample.id,
    }


def instance_record(instance: Instance, ann_id: int, image_id: int, category_id: int) -> dict[str, Any]:
    """One COCO annotation dict for an instance (with its `certificate` when it has one)."""
    if instance.segmentation is not None:
        segmentation: Any = {"size": list(instance.segmentation.size), "counts": instance.segmentation.counts}
    else:
        segmentation = box_polygon(instance.bbox)
    record: dict[str, Any] = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": [float(v) for v in instance.bbox],
        "area": int(instance.area),
        "segmentation": segmentation,
        "iscrowd": 0,
    }
    if instance.certificate is not None:
        record["certificate"] = instance.certificate.model_dump(mode="json")
    return record


def annotation_records(sample: Sample, class_ids: dict[str, int]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(instance index, COCO annotation without `id` and `image_id`) of each exported instance; a class the
    spec does not have is refused."""
    for k, instance in exported_instances(sample):
        if instance.category not in class_ids:
            raise ValueError(f"sample {sample.id}: class '{instance.category}' is not in the spec")
        record = instance_record(instance, 0, 0, class_ids[instance.category])
        del record["id"], record["image_id"]
        yield k, record
