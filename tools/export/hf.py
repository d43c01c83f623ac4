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

from pathlib import Path
from typing import Any

import yaml

from synthloop.tools.export.coco import FORMAT_VERSION, category_ids
from synthloop.tools.export.semantic import sample_semantic_map
from synthloop.tools.io import atomic_link_or_copy, atomic_write_jsonl, atomic_write_png, atomic_write_text
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


class HFExporter:
    """Writes the `hf/` tree (see the module docstring)."""

    id = "hf"

    def __init__(self) -> None:
        self._out_dir: Path | None = None
        self._spec: TaskSpec | None = None
        self._by_split: dict[str, list[Sample]] = {}

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Start a new export into `out_dir`."""
        self._out_dir = Path(out_dir)
        self._spec = spec
        self._by_split = {name: [] for name in spec.splits.names()}

    def export_sample(self, sample: Sample) -> None:
        """Queue one kept sample; images are linked and metadata written on close."""
        if self._spec is None:
            raise RuntimeError("HFExporter.export_sample called before setup")
        if sample.split not in self._by_split:
            raise ValueError(f"sample {sample.id}: split '{sample.split}' is not in {list(self._by_split)}")
        self._by_split[sample.split].append(sample)

    def close(self) -> None:
        """Link images, write metadata.jsonl per split and README.md; drop stale files."""
        if self._out_dir is None or self._spec is None:
            raise RuntimeError("HFExporter.close called before setup")
        hf_dir = self._out_dir / "hf"
        class_ids = {name: i for i, name in enumerate(self._spec.class_names)}
        semantic = Task.semantic_segmentation in self._spec.tasks
        coco_ids = category_ids(self._spec)
        written: set[Path] = set()
        for split, samples in self._by_split.items():
            rows = []
            ann_id = 1
            for image_id, sample in enumerate(sorted(samples, key=lambda s: s.id), start=1):
                row = metadata_row(sample, image_id, ann_id, class_ids, semantic=semantic)
                ann_id += len(row["objects"]["id"])
                target = hf_dir / split / row["file_name"]
                atomic_link_or_copy(self._out_dir / sample.image_path, target)
                written.add(target)
                if semantic:
                    label_map = hf_dir / split / row["semantic_file_name"]
                    atomic_write_png(label_map, sample_semantic_map(sample, coco_ids))
                    written.add(label_map)
                rows.append(row)
            if rows:
                atomic_write_jsonl(hf_dir / split / "metadata.jsonl", rows)
                written.add(hf_dir / split / "metadata.jsonl")
            for folder in (hf_dir / split, hf_dir / split / SEMANTIC_DIR):
                if folder.is_dir():
                    for path in folder.iterdir():
                        if path.is_file() and path not in written:
                            path.unlink()
        non_empty = [s for s, samples in self._by_split.items() if samples]
        atomic_write_text(hf_dir / "README.md", readme_text(self._spec, non_empty))
