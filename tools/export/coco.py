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

The task outputs (captions, refs, scene graphs) use the same ids (`coco_records.SplitNumbering`). The
`images` and `annotations` arrays are streamed to temporary files and joined into each file at close
(`split_file`), so memory does not grow with the dataset.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from synthloop.tools.export.coco_records import (
    FORMAT_VERSION,
    ImageIds,
    SplitNumbering,
    annotation_records,
    box_polygon,
    category_ids,
    coco_path,
    exported_instances,
    image_file_name,
    image_record,
    instance_record,
    split_ids,
)
from synthloop.tools.export.split_file import QueuedSample, SplitFileExporter
from synthloop.tools.export.streaming import JsonArray
from synthloop.tools.types import Sample, TaskSpec

__all__ = [
    "FORMAT_VERSION", "CocoExporter", "ImageIds", "box_polygon", "build_coco", "category_ids", "coco_path",
    "exported_instances", "image_file_name", "image_record", "instance_record", "split_ids",
]


def coco_document(spec: TaskSpec, images: list[dict[str, Any]] | JsonArray,
                  annotations: list[dict[str, Any]] | JsonArray) -> dict[str, Any]:
    """The instances file's value around its `images` and `annotations` arrays."""
    return {
        "info": {"description": spec.request or "synthloop dataset", "version": FORMAT_VERSION},
        "licenses": [{"id": 1, "name": "unspecified", "url": ""}],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": cid, "name": name, "supercategory": "object"} for name, cid in category_ids(spec).items()
        ],
    }


def _caption(sample: Sample) -> str | None:
    return sample.annotation.caption if sample.annotation is not None else None


def _image_entry(image: dict[str, Any], image_id: int, caption: str | None) -> dict[str, Any]:
    """The `images` entry from the sample's entry without an id."""
    entry = {"id": image_id, **image}
    if caption is not None:
        entry["caption"] = caption
    return entry


def build_coco(spec: TaskSpec, samples: Iterable[Sample]) -> dict[str, Any]:
    """The COCO dict for the samples of one split (sorted here by sample id), built in memory."""
    class_ids = category_ids(spec)
    numbering = SplitNumbering()
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for sample in sorted(samples, key=lambda s: s.id):
        records = list(annotation_records(sample, class_ids))
        ids = numbering.next([k for k, _ in records])
        image = image_record(sample, ids.image_id)
        images.append(_image_entry({k: v for k, v in image.items() if k != "id"}, ids.image_id, _caption(sample)))
        annotations += [{"id": ids.ann_ids[k], "image_id": ids.image_id, **record} for k, record in records]
    return coco_document(spec, images, annotations)


class CocoExporter(SplitFileExporter):
    """Writes `annotations/instances_{split}.json` for every split of the spec (see the module docstring)."""

    id = "coco"
    file_pattern = "annotations/instances_{split}.json"
    arrays: ClassVar[tuple[str, ...]] = ("images", "annotations")

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Start a new export into `out_dir`."""
        super().setup(out_dir, spec)
        self._class_ids = category_ids(spec)

    def payload(self, sample: Sample) -> list[Any]:
        """The sample's caption and its annotations without ids."""
        return [_caption(sample), [record for _, record in annotation_records(sample, self._class_ids)]]

    def elements(
        self, split: str, entry: QueuedSample, ids: ImageIds, counters: Counter[str]
    ) -> Iterator[tuple[str, Any]]:
        """The sample's `images` entry, then its annotations."""
        caption, records = entry.payload
        yield "images", _image_entry(entry.image, ids.image_id, caption)
        for k, record in zip(entry.exported, records, strict=True):
            yield "annotations", {"id": ids.ann_ids[k], "image_id": ids.image_id, **record}

    def document(self, split: str, arrays: dict[str, JsonArray]) -> dict[str, Any]:
        """The instances file around the streamed arrays."""
        return coco_document(self.spec, arrays["images"], arrays["annotations"])
