"""Hugging Face `datasets` export: an imagefolder layout with metadata and a dataset card.

On-disk layout (under the output directory DIR):

    DIR/hf/README.md                  YAML header: one config, a data_files entry per split (split names as in
                                      the spec: train / val / test); a description with the class names
    DIR/hf/{split}/{id}.png           hard link to DIR/images/{split}/{id}.png (a copy where links fail)
    DIR/hf/{split}/metadata.jsonl     one row per image, sorted by id
    DIR/hf/{split}/semantic/{id}.png  when semantic_segmentation is in spec.tasks: the image's class map (as
                                      `semantic/{split}/{id}.png`: pixel = COCO category id, 0 background,
                                      255 ignore), loaded as the `semantic` image column

A metadata row: file_name, image_id (the COCO image id), sample_id, width, height, caption ("" when none),
objects = {id (COCO annotation id), category (class index, as YOLO), category_name, bbox (xywh px, COCO),
area (mask area), rle (COCO RLE counts string, size = (height, width); "" when the instance has no mask)};
with semantic segmentation also semantic_file_name ("semantic/{id}.png", which `datasets` turns into the
`semantic` column).

Load it with `datasets.load_dataset(str(DIR / "hf"))` (README config: splits keep their names; pass
`features=hf_features(spec)` to get `category` as a ClassLabel) or
`datasets.load_dataset("imagefolder", data_dir=str(DIR / "hf"))` (the `val` folder becomes the `validation`
split). Splits without samples are left out: `datasets` rejects empty
data_files patterns. Files a previous export wrote that this one did not are removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from synthloop.tools.export.base import BaseExporter
from synthloop.tools.export.coco_records import FORMAT_VERSION, category_ids
from synthloop.tools.export.semantic import sample_semantic_map
from synthloop.tools.export.streaming import DuplicateKeyError, SortedSpool, write_lines
from synthloop.tools.io import atomic_link_or_copy, atomic_write_png, atomic_write_text
from synthloop.tools.types import Sample, Task, TaskSpec

SEMANTIC_DIR = "semantic"


def metadata_row(
    sample: Sample, image_id: int, first_ann_id: int, class_ids: dict[str, int], *, semantic: bool = False
) -> dict[str, Any]:
    """The metadata.jsonl row of one sample; annotation ids count on from `first_ann_id` as in COCO.

    With `semantic`, the row names the sample's class map (`semantic_file_name`).
    """
    instances = [i for i in (sample.annotation.instances if sample.annotation else []) if i.area > 0]
    for inst in instances:
        if inst.category not in class_ids:
            raise ValueError(f"sample {sample.id}: class '{inst.category}' is not in the spec")
    caption = sample.annotation.caption if sample.annotation and sample.annotation.caption else ""
    row: dict[str, Any] = {"file_name": Path(sample.image_path).name}
    if semantic:
        row["semantic_file_name"] = f"{SEMANTIC_DIR}/{Path(sample.image_path).stem}.png"
    return row | {
        "image_id": image_id,
        "sample_id": sample.id,
        "width": sample.width,
        "height": sample.height,
        "caption": caption,
        "objects": {
            "id": list(range(first_ann_id, first_ann_id + len(instances))),
            "category": [class_ids[i.category] for i in instances],
            "category_name": [i.category for i in instances],
            "bbox": [[float(v) for v in i.bbox] for i in instances],
            "area": [int(i.area) for i in instances],
            "rle": [i.segmentation.counts if i.segmentation else "" for i in instances],
        },
    }


def readme_text(spec: TaskSpec, splits: list[str]) -> str:
    """README.md: a YAML header `datasets` reads (one config, a data_files entry per split) and a description.

    Features are left to inference: imagefolder ignores a card's `dataset_info.features` when it builds
    features from metadata.jsonl. `hf_features(spec)` gives the typed features for `load_dataset(features=)`.
    """
    header = {
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": [f"{s}/*.png", f"{s}/metadata.jsonl"]} for s in splits],
            }
        ],
    }
    title = spec.request.strip().splitlines()[0][:100] if spec.request.strip() else "synthloop dataset"
    body = (
        f"# {title}\n\n"
        f"Synthetic dataset made by synthloop (export format version {FORMAT_VERSION}).\n\n"
        f"Classes (index: name): {', '.join(f'{i}: {n}' for i, n in enumerate(spec.class_names))}.\n\n"
        "Each row: `image`, `image_id` (COCO id), `sample_id`, `width`, `height`, `caption`, `objects` with "
        "`id`, `category` (class index), `category_name`, `bbox` (COCO xywh, pixels), `area` (mask area) and "
        "`rle` (COCO RLE counts, size (height, width); empty without a mask).\n"
    )
    if Task.semantic_segmentation in spec.tasks:
        body += (
            "\n`semantic`: the class map of the image (one channel, pixel = COCO category id = class index + 1, "
            "0 background, 255 ignore).\n"
        )
    return "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n\n" + body


def hf_features(spec: TaskSpec) -> Any:
    """`datasets.Features` of the export with `objects.category` as a ClassLabel (imports `datasets`)."""
    from datasets import ClassLabel, Features, Image, List, Value

    semantic = {"semantic": Image()} if Task.semantic_segmentation in spec.tasks else {}
    return Features(
        {
            "image": Image(),
            **semantic,
            "image_id": Value("int64"),
            "sample_id": Value("string"),
            "width": Value("int64"),
            "height": Value("int64"),
            "caption": Value("string"),
            "objects": {
                "id": List(Value("int64")),
                "category": List(ClassLabel(names=spec.class_names)),
                "category_name": List(Value("string")),
                "bbox": List(List(Value("float64"))),
                "area": List(Value("int64")),
                "rle": List(Value("string")),
            },
        }
    )


class HFExporter(BaseExporter):
    """Writes the `hf/` tree (see the module docstring): each sample's image link and class map when it
    arrives; its metadata row, which needs the sample's COCO ids, spooled until close."""

    id = "hf"

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Start a new export into `out_dir`."""
        super().setup(out_dir, spec)
        self._class_ids = {name: i for i, name in enumerate(spec.class_names)}
        self._semantic = Task.semantic_segmentation in spec.tasks
        self._coco_ids = category_ids(spec)
        self._rows = {name: SortedSpool(self.out_dir) for name in spec.splits.names()}

    def export_sample(self, sample: Sample) -> None:
        """Link the image, write its class map, spool its metadata row (numbered at close)."""
        self.check_sample(sample)
        row = metadata_row(sample, 0, 0, self._class_ids, semantic=self._semantic)
        try:
            self._rows[sample.split].add(sample.id, json.dumps(row, ensure_ascii=False))
        except DuplicateKeyError:
            raise ValueError(f"sample {sample.id} exported twice") from None
        split_dir = self.out_dir / "hf" / sample.split
        atomic_link_or_copy(self.out_dir / sample.image_path, self.wrote(split_dir / row["file_name"]))
        if self._semantic:
            label_map = sample_semantic_map(sample, self._coco_ids)
            atomic_write_png(self.wrote(split_dir / row["semantic_file_name"]), label_map)

    def close(self) -> None:
        """Write metadata.jsonl per split (rows numbered as the COCO file) and README.md; drop stale files."""
        hf_dir = self.out_dir / "hf"
        for split, rows in self._rows.items():
            if len(rows):
                write_lines(self.wrote(hf_dir / split / "metadata.jsonl"), _numbered_rows(rows))
            rows.close()
            for folder in (hf_dir / split, hf_dir / split / SEMANTIC_DIR):
                self.remove_stale(folder)
        non_empty = [split for split in self.spec.splits.names() if len(self._rows[split])]
        atomic_write_text(hf_dir / "README.md", readme_text(self.spec, non_empty))
        self.finish()


def _numbered_rows(rows: SortedSpool) -> Iterator[str]:
    """The spooled rows in sample-id order with their COCO image id and annotation ids filled in."""
    next_ann = 1
    for image_id, (_, text) in enumerate(rows.items(), start=1):
        row = json.loads(text)
        row["image_id"] = image_id
        n_objects = len(row["objects"]["id"])
        row["objects"]["id"] = list(range(next_ann, next_ann + n_objects))
        next_ann += n_objects
        yield json.dumps(row, ensure_ascii=False)
