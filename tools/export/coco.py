"""COCO instances export.

On-disk layout (under the output directory DIR):

    DIR/annotations/instances_{split}.json   one file per split in spec.splits.names(), empty splits included

Each file is a standard COCO instances file that pycocotools loads:
- `info`: description (the request), version, no date (files are byte-identical across re-exports);
- `licenses`: one entry, "unspecified" (synthetic data; the run's licence is the user's call);
- `categories`: id = index + 1 in `spec.class_names`, supercategory "object";
- `images`: id 1..n in the order of sample id, `file_name` relative to `DIR/images/{split}/` (so `{id}.png`),
  width, height, plus `sample_id` (the manifest key) and `caption` when the sample has one;
- `annotations`: id 1..m in (image, instance) order, bbox xywh floats in pixels, area = mask area,
  segmentation = the instance's RLE ({size, counts} with string counts) or, when it has no mask, its box as a
  polygon; iscrowd 0; plus `certificate` = {sources: {source: evidence in [0, 1]}, agreement} only when the
  instance carries one (a run without certificates writes exactly the standard keys). Instances with area 0
  are skipped (nothing visible to annotate).

The task outputs (captions, refs, scene graphs) use the same ids: `split_ids` numbers images and annotations
exactly as this file does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from synthloop.tools.io import atomic_write_json
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


def split_ids(exported: dict[str, list[int]]) -> dict[str, ImageIds]:
    """Image and annotation ids of one split's samples, numbered as `build_coco` numbers them.

    `exported` maps each sample id to the indices of its exported instances (`exported_instances`).
    """
    ids: dict[str, ImageIds] = {}
    next_ann = 1
    for image_id, sample_id in enumerate(sorted(exported), start=1):
        indices = exported[sample_id]
        ids[sample_id] = ImageIds(image_id, {k: next_ann + n for n, k in enumerate(indices)})
        next_ann += len(indices)
    return ids


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


def build_coco(spec: TaskSpec, samples: list[Sample]) -> dict[str, Any]:
    """The COCO dict for the samples of one split (sorted here by sample id)."""
    class_ids = category_ids(spec)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, sample in enumerate(sorted(samples, key=lambda s: s.id), start=1):
        image = image_record(sample, image_id)
        if sample.annotation is not None and sample.annotation.caption is not None:
            image["caption"] = sample.annotation.caption
        images.append(image)
        for _, instance in exported_instances(sample):
            if instance.category not in class_ids:
                raise ValueError(f"sample {sample.id}: class '{instance.category}' is not in the spec")
            annotations.append(
                instance_record(instance, len(annotations) + 1, image_id, class_ids[instance.category])
            )
    return {
        "info": {"description": spec.request or "synthloop dataset", "version": FORMAT_VERSION},
        "licenses": [{"id": 1, "name": "unspecified", "url": ""}],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": cid, "name": name, "supercategory": "object"} for name, cid in class_ids.items()
        ],
    }


class CocoExporter:
    """Writes `annotations/instances_{split}.json` for every split of the spec (see the module docstring)."""

    id = "coco"

    def __init__(self) -> None:
        self._out_dir: Path | None = None
        self._spec: TaskSpec | None = None
        self._by_split: dict[str, list[Sample]] = {}
        self._seen: set[str] = set()

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Start a new export into `out_dir`."""
        self._out_dir = Path(out_dir)
        self._spec = spec
        self._by_split = {name: [] for name in spec.splits.names()}
        self._seen = set()

    def export_sample(self, sample: Sample) -> None:
        """Queue one kept sample; files are written on close."""
        if self._spec is None:
            raise RuntimeError("CocoExporter.export_sample called before setup")
        if sample.split not in self._by_split:
            raise ValueError(f"sample {sample.id}: split '{sample.split}' is not in {list(self._by_split)}")
        image_file_name(sample)  # fail early on a path outside the contract
        if sample.id in self._seen:
            raise ValueError(f"sample {sample.id} exported twice")
        self._seen.add(sample.id)
        self._by_split[sample.split].append(sample)

    def close(self) -> None:
        """Write one COCO file per split."""
        if self._out_dir is None or self._spec is None:
            raise RuntimeError("CocoExporter.close called before setup")
        for split, samples in self._by_split.items():
            atomic_write_json(coco_path(self._out_dir, split), build_coco(self._spec, samples))
