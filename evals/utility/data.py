"""The datasets the utility eval trains and tests on: synthloop runs, injected bad samples, critic filtering.

- `make_run`: one synthloop run (`start_run`, the whole loop: layout, render, exact labels, critic, export) of a
  spec with a renderer / layout / best-of-n choice; the export's COCO files are the dataset.
- `corrupt_export`: a copy of an export's COCO files in which a share of the images (seeded) is badly
  annotated: `evals/defects.py` `corrupt_every_instance`, cycling through box_shift, missing_box and relabel
  (BOX_DEFECTS: what a box detector learns from; a moved mask leaves its box alone, so mask_shift is only used
  when asked for); the images are the export's own. With `first`, exactly that share of the first `first`
  images is bad (the training arm) and the same share of the rest (the critic's replacements). Returns what was
  done to which image.
- `critic_filter`: `audit_coco` (what `synthloop critique` runs, label consistency included) over those files
  with the given judges; only the images the critic accepts are kept (an edit counts as not kept).
COCO annotations go to `Instance`s through the audit's own converter and back, so a defect is injected exactly as
the benchmark injects it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.evals.utility.assets import UtilityError
from synthloop.tools.io import atomic_write_json, atomic_write_jsonl
from synthloop.tools.types import ObjectSpec, Splits, Task, TaskSpec

BOX_DEFECTS = ("box_shift", "missing_box", "relabel")


def utility_spec(classes: Sequence[str], n_images: int, size: int, seed: int, difficulty: str = "medium",
                 max_per_class: int = 2) -> TaskSpec:
    """The spec every arm is made from: the classes, up to `max_per_class` objects of each, masks, one split."""
    return TaskSpec(objects=[ObjectSpec(name=c, min_count=0, max_count=max_per_class) for c in classes],
                    n_images=n_images, width=size, height=size, seed=seed, difficulty=difficulty,
                    tasks=[Task.detection, Task.instance_segmentation], splits=Splits(train=1.0, val=0.0))


def make_run(out_dir: Path, spec: TaskSpec, renderer: dict[str, Any], *, layout: dict[str, Any] | None = None,
             best_of_n: int = 1, workers: int = 2, default_detector: bool = True) -> Path:
    """Run the synthloop loop for `spec` into `out_dir` (a new folder); the export folder.

    `default_detector=False` runs the loop's measured pairwise judge (best-of-n) without YOLOv3-tiny, as if it
    were not installed (`SYNTHLOOP_YOLO_DIR` empty for the run)."""
    import os
    from contextlib import contextmanager

    from synthloop.agent.config import RunConfig
    from synthloop.agent.runner import start_run
    from synthloop.tools.critic.recognisability import YOLO_ENV

    @contextmanager
    def without_default_detector() -> Any:
        saved = os.environ.get(YOLO_ENV)
        os.environ[YOLO_ENV] = ""
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop(YOLO_ENV, None)
            else:
                os.environ[YOLO_ENV] = saved

    config = RunConfig(renderer=renderer, layout=layout or "procedural", best_of_n=best_of_n, workers=workers)
    if default_detector:
        summary = start_run(Path(out_dir), config, spec=spec, auto_approve=True)
    else:
        with without_default_detector():
            summary = start_run(Path(out_dir), config, spec=spec, auto_approve=True)
    if not summary.kept:
        raise UtilityError(f"the run in {out_dir} kept no image")
    return Path(out_dir)


@dataclass(frozen=True)
class Corruption:
    """One badly annotated image: its id in the COCO file, the defect, and what was changed."""

    file: str
    image_id: Any
    defect: str
    note: str


def _items(coco: dict[str, Any], images_dir: Path) -> list[tuple[dict[str, Any], Any]]:
    """(image record, JudgeInput) per image, annotations converted as the audit converts them."""
    from PIL import Image

    from synthloop.tools.critic.audit import category_name, coco_instance
    from synthloop.tools.critic.base import JudgeInput
    from synthloop.tools.types import Annotation, Layout, Sample

    categories = {c["id"]: category_name(c["name"]) for c in coco["categories"]}
    spec_classes = list(dict.fromkeys(categories.values()))
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    items = []
    for position, image in enumerate(coco["images"]):
        height, width = int(image["height"]), int(image["width"])
        instances = [i for a in by_image.get(image["id"], []) if (i := coco_instance(a, categories, height, width))]
        with Image.open(images_dir / image["file_name"]) as opened:
            pixels = np.asarray(opened.convert("RGB"))
        sample = Sample(id=f"{position:06d}", index=position, attempt=0, seed=0, split="train",
                        image_path=str(image["file_name"]), width=width, height=height,
                        layout=Layout(width=width, height=height, objects=[], seed=0),
                        annotation=Annotation(instances=instances))
        spec = TaskSpec(objects=[ObjectSpec(name=c, min_count=0, max_count=1) for c in spec_classes], n_images=1,
                        width=width, height=height)
        items.append((image, JudgeInput(sample=sample, image=pixels, spec=spec)))
    return items


def _annotations(image_id: Any, instances: Sequence[Any], category_ids: dict[str, int], first_id: int
                 ) -> list[dict[str, Any]]:
    rows = []
    for offset, inst in enumerate(instances):
        row = {"id": first_id + offset, "image_id": image_id, "category_id": category_ids[inst.category],
               "bbox": [float(v) for v in inst.bbox], "area": int(inst.area), "iscrowd": 0}
        if inst.segmentation is not None:
            row["segmentation"] = {"size": list(inst.segmentation.size), "counts": inst.segmentation.counts}
        rows.append(row)
    return rows


def corrupt_export(parts: Sequence[tuple[Path, Path]], out_dir: Path, *, share: float, seed: int,
                   first: int | None = None, defects: Sequence[str] = BOX_DEFECTS
                   ) -> tuple[list[tuple[Path, Path]], list[Corruption]]:
    """Badly annotate `share` of the images with `defects` in turn (see the module docstring); the new (COCO
    file, images) parts and the corruptions, also written to `out_dir/corruptions.json`."""
    from synthloop.evals.defects import EVERY_INSTANCE_DEFECTS, corrupt_every_instance
    from synthloop.tools.critic.audit import category_name

    if not 0.0 <= share <= 1.0:
        raise UtilityError(f"the share of bad samples must be between 0 and 1, got {share}")
    unknown = [d for d in defects if d not in EVERY_INSTANCE_DEFECTS]
    if not defects or unknown:
        raise UtilityError(f"defects must be some of {', '.join(EVERY_INSTANCE_DEFECTS)}, got {list(defects)}")
    loaded = [(file, images, json.loads(Path(file).read_text(encoding="utf-8"))) for file, images in parts]
    everything = [(k, i) for k, (_, _, coco) in enumerate(loaded) for i in range(len(coco["images"]))]
    rng = np.random.default_rng([seed, 0xBAD])
    cut = len(everything) if first is None else min(first, len(everything))
    chosen = set()
    for group in (everything[:cut], everything[cut:]):
        chosen |= {group[int(j)] for j in rng.permutation(len(group))[:round(share * len(group))]}
    new_parts, corruptions, turn = [], [], 0
    for k, (coco_file, images, coco) in enumerate(loaded):
        category_ids = {category_name(c["name"]): c["id"] for c in coco["categories"]}
        annotations = []
        for i, (image, item) in enumerate(_items(coco, Path(images))):
            instances = list(item.sample.annotation.instances)
            if (k, i) in chosen:
                defect = defects[turn % len(defects)]
                injected = corrupt_every_instance(defect, item, np.random.default_rng([seed, k, i]))
                if injected is not None:
                    turn += 1
                    instances = list(injected.item.sample.annotation.instances)
                    corruptions.append(Corruption(Path(coco_file).name, image["id"], defect, injected.note))
            annotations += _annotations(image["id"], instances, category_ids, len(annotations) + 1)
        target = Path(out_dir) / "annotations" / Path(coco_file).name
        atomic_write_json(target, {**coco, "annotations": annotations})
        new_parts.append((target, Path(images)))
    atomic_write_json(Path(out_dir) / "corruptions.json", [vars(c) for c in corruptions], indent=1)
    return new_parts, corruptions


@dataclass(frozen=True)
class FilterResult:
    """The filtered parts, and which images the critic kept and rejected (by COCO file and image id)."""

    parts: list[tuple[Path, Path]]
    rejected: dict[str, list[Any]]
    kept: dict[str, list[Any]]


def critic_filter(parts: Sequence[tuple[Path, Path]], out_dir: Path, extra_judges: Sequence[Any] = (), *,
                  consistency: bool = True) -> FilterResult:
    """Audit each COCO file (`audit_coco`, as `synthloop critique` does) with the embedded judges the loop runs
    on exact labels (boundary evidence off: pasted objects' masks are exact, their edges need not be strong),
    `extra_judges` and, with `consistency`, the label consistency judge over the file; keep only the accepted
    images."""
    from synthloop.tools.critic.audit import audit_coco
    from synthloop.tools.critic.duplicates import DuplicateIndex
    from synthloop.tools.critic.embedded import embedded_judges

    new_parts, rejected, kept = [], {}, {}
    for coco_file, images in parts:
        index = DuplicateIndex()
        judges = embedded_judges(index, boundary_evidence=False, content_checks=False)
        rows = audit_coco(Path(coco_file), Path(images), judges=judges, duplicates=index,
                          extra_judges=list(extra_judges), consistency=consistency)
        accepted = {row["image_id"] for row in rows if row["decision"] == "accept"}
        coco = json.loads(Path(coco_file).read_text(encoding="utf-8"))
        name = Path(coco_file).name
        kept[name] = [image["id"] for image in coco["images"] if image["id"] in accepted]
        rejected[name] = [image["id"] for image in coco["images"] if image["id"] not in accepted]
        target = Path(out_dir) / "annotations" / name
        atomic_write_json(target, {**coco, "images": [i for i in coco["images"] if i["id"] in accepted],
                                   "annotations": [a for a in coco["annotations"] if a["image_id"] in accepted]})
        atomic_write_jsonl(Path(out_dir) / f"critique_{Path(coco_file).stem}.jsonl", rows)
        new_parts.append((target, Path(images)))
    return FilterResult(parts=new_parts, rejected=rejected, kept=kept)


def first_images(parts: Sequence[tuple[Path, Path]], n: int, out_dir: Path) -> list[tuple[Path, Path]]:
    """The first `n` images of `parts` (in file order, then image order) as new COCO files in `out_dir`."""
    new_parts, left = [], n
    for coco_file, images in parts:
        coco = json.loads(Path(coco_file).read_text(encoding="utf-8"))
        chosen = coco["images"][:max(left, 0)]
        left -= len(chosen)
        ids = {image["id"] for image in chosen}
        target = Path(out_dir) / "annotations" / Path(coco_file).name
        atomic_write_json(target, {**coco, "images": chosen,
                                   "annotations": [a for a in coco["annotations"] if a["image_id"] in ids]})
        new_parts.append((target, Path(images)))
    return new_parts
