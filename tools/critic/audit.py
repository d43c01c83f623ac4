"""Audit any COCO instances file with the embedded judges (`synthloop critique`).

Steps:
1. read and check the COCO file (images, annotations, categories); a file that cannot be used raises
   `AuditError` (a ValueError; the CLI turns it into one error line);
2. per image, convert its annotations into an `Annotation`: boxes as given, polygons and uncompressed RLE
   turned into compressed RLE with pycocotools, compressed RLE kept, no segmentation → box only (the
   boundary judge then checks the box border); crowd regions (`iscrowd: 1`) are not objects and are left out;
   an annotation that cannot be converted becomes a reason of the `audit.annotations` check;
3. read the image (RGB), run the judges; every image goes into one duplicate index, so a later copy of an
   earlier image is flagged;
4. one row per image, in the file's image order: `image_id`, `file_name`, `decision`, `reasons` (each
   prefixed with its judge id), `scores` (`judge_id/score`), `judges` (judge id → decision).
With `recognisability=True` the recognisability judge (`tools/critic/recognisability.py`; YOLOv3-tiny unless a
detector is given) runs after the rules, looking for the file's categories: relabelled boxes (another class wins
inside a box) and missing boxes (a confident detection on no box), thresholds from the defect benchmark.
With `consistency=True` a first pass describes every box and the label consistency judge
(`tools/critic/consistency.py`) flags boxes whose look-alikes in other images carry another label; those
look-alikes also overrule the recognisability judge where they speak (see its `support`).
A missing or unreadable image file is reported on its row (decision reject, judge `audit.image`), so one bad
file does not stop an audit of thousands. A `file_name` that leads outside the image folder (`../../etc/hostname`,
an absolute path, a symlink out of it) is never opened: its row is rejected with that reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.tools.backend import BackendBlock
from synthloop.tools.coco_file import read_coco_file
from synthloop.tools.critic.base import Judge, JudgeInput, combine_any_reject
from synthloop.tools.critic.consistency import ConsistencyIndex, LabelConsistencyJudge
from synthloop.tools.critic.detector import Detector
from synthloop.tools.critic.duplicates import DuplicateIndex, perceptual_hash, pixel_sha256
from synthloop.tools.critic.embedded import embedded_judges
from synthloop.tools.io import atomic_write_jsonl
from synthloop.tools.types import (
    MAX_SIDE,
    MIN_SIDE,
    RLE,
    Annotation,
    Decision,
    Instance,
    Layout,
    ObjectSpec,
    Sample,
    TaskSpec,
    Verdict,
)

Progress = Callable[[int, int], None]


class AuditError(ValueError):
    """The COCO file or image folder cannot be audited; the message names the problem."""


def load_coco(path: Path) -> dict[str, Any]:
    """Read a COCO instances file and check the fields the audit needs."""
    data = read_coco_file(path, AuditError, lists=("images",))
    for key in ("annotations", "categories"):
        if not isinstance(data.get(key, []), list):
            raise AuditError(f"{path}: '{key}' must be a list")
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise AuditError(f"{path}: images[{i}] needs 'id' and 'file_name'")
    ids = [image["id"] for image in data["images"]]
    if len(set(map(str, ids))) != len(ids):
        raise AuditError(f"{path}: image ids are not unique")
    return data


def category_name(name: Any) -> str:
    """A category name in the ClassName form (lower case, [a-z0-9 -], ≤ 48 characters)."""
    text = re.sub(r"[^a-z0-9 \-]+", "-", str(name).strip().lower()).strip(" -")[:48]
    return text or "object"


def _segmentation_rle(segmentation: Any, height: int, width: int) -> RLE | None:
    """Compressed RLE of a COCO segmentation (polygons, uncompressed or compressed RLE); None if absent."""
    from pycocotools import mask as mask_utils

    if segmentation is None or segmentation == [] or segmentation == {}:
        return None
    if isinstance(segmentation, list):
        polygons = [p for p in segmentation if isinstance(p, list)]
        if len(polygons) != len(segmentation) or any(len(p) < 6 or len(p) % 2 for p in polygons):
            raise ValueError("polygons need an even number (≥ 6) of coordinates")
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        if list(segmentation["size"]) != [height, width]:
            raise ValueError(f"RLE size {segmentation['size']} is not the image's [{height}, {width}]")
        counts = segmentation["counts"]
        rle = (mask_utils.frPyObjects(segmentation, height, width) if isinstance(counts, list)
               else {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts})
    else:
        raise ValueError("segmentation is neither polygons nor RLE")
    counts = rle["counts"]
    return RLE(size=(height, width), counts=counts.decode("ascii") if isinstance(counts, bytes) else counts)


def coco_instance(ann: dict[str, Any], categories: dict[Any, str], height: int, width: int) -> Instance | None:
    """One COCO annotation as an Instance (None for a crowd region); ValueError when it is unusable."""
    if ann.get("iscrowd", 0):
        return None
    if ann.get("category_id") not in categories:
        raise ValueError(f"unknown category_id {ann.get('category_id')}")
    bbox = ann.get("bbox")
    if not isinstance(bbox, list | tuple) or len(bbox) != 4:
        raise ValueError(f"bbox {bbox} is not [x, y, w, h]")
    segmentation = _segmentation_rle(ann.get("segmentation"), height, width)
    if segmentation is not None:
        from synthloop.tools.masks import rle_area

        area = rle_area(segmentation)
    else:
        area = round(float(ann.get("area") or bbox[2] * bbox[3]))
    return Instance(category=categories[ann["category_id"]], bbox=tuple(float(v) for v in bbox), area=max(area, 0),
                    segmentation=segmentation, source="coco")


def confined(root: Path, path: Path) -> bool:
    """Whether `path` stays inside `root` once `..` and symlinks are resolved."""
    try:
        return path.resolve().is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte in the name
        return False


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _placeholder_spec(width: int, height: int) -> TaskSpec:
    """Judges take a spec; an audit has none (the count check is off), so this one only carries the size."""
    clamp = lambda v: min(max(int(v), MIN_SIDE), MAX_SIDE)  # noqa: E731
    return TaskSpec(objects=[ObjectSpec(name="object", min_count=0, max_count=1)], n_images=1,
                    width=clamp(width), height=clamp(height))


def _sample_id(image_id: Any, position: int) -> str:
    text = re.sub(r"[^A-Za-z0-9_\-]+", "_", str(image_id))
    return f"{position:07d}_{text}"[:120]


def _row(image: dict[str, Any], verdicts: list[Verdict]) -> dict[str, Any]:
    return {
        "image_id": image["id"],
        "file_name": image["file_name"],
        "decision": combine_any_reject(verdicts).value if verdicts else Decision.accept.value,
        "reasons": [f"{v.judge}: {r}" for v in verdicts for r in v.reasons],
        "scores": {f"{v.judge}/{k}": round(float(s), 6) for v in verdicts for k, s in v.scores.items()},
        "judges": {v.judge: v.decision.value for v in verdicts},
    }


def audit_coco(coco_path: Path, images_dir: Path, *, judges: list[Judge] | None = None,
               duplicates: DuplicateIndex | None = None, progress: Progress | None = None,
               pixel_checks: bool = True, recognisability: bool = False,
               detector: Detector | BackendBlock | dict[str, Any] | str | None = None, zoom: bool = True,
               consistency: bool = False, extra_judges: Sequence[Judge] = ()) -> list[dict[str, Any]]:
    """Judge every image of a COCO file; return one row per image (see the module docstring).

    `judges` replace the embedded rule judges; `extra_judges` come after them. With `recognisability`, the
    recognisability judge (`detector`: a detector or detector block, default YOLOv3-tiny) looks for the file's
    categories, on the whole image and, with `zoom`, on enlarged tiles and box windows; its thresholds are the
    defect benchmark's calibration for that view mode. With `consistency`, a first pass describes every box and
    the label consistency judge flags boxes whose look-alikes in other images carry another label."""
    coco = load_coco(Path(coco_path))
    if not Path(images_dir).is_dir():
        raise AuditError(f"image folder not found: {images_dir}")
    index = duplicates if duplicates is not None else DuplicateIndex()
    judges = judges if judges is not None else embedded_judges(index, pixel_checks=pixel_checks,
                                                               content_checks=False)
    categories = {c.get("id"): category_name(c.get("name", "object")) for c in coco.get("categories", [])
                  if isinstance(c, dict)}
    judges = [*judges, *extra_judges]
    by_image: dict[str, list[dict[str, Any]]] = {}
    for ann in coco.get("annotations", []):
        if isinstance(ann, dict):
            by_image.setdefault(str(ann.get("image_id")), []).append(ann)
    looks = consistency_index(coco["images"], by_image, categories, Path(images_dir)) if consistency else None
    if recognisability:
        judges.append(recognisability_judge(detector, list(dict.fromkeys(categories.values())), zoom=zoom,
                                            support=looks.support if looks is not None else None))
    if looks is not None:
        judges.append(LabelConsistencyJudge(looks))

    rows = []
    total = len(coco["images"])
    for position, image in enumerate(coco["images"]):
        rows.append(_audit_image(image, position, by_image.get(str(image["id"]), []), categories,
                                 Path(images_dir), judges, index))
        if progress is not None:
            progress(position + 1, total)
    return rows


def consistency_index(images: Sequence[dict[str, Any]], by_image: dict[str, list[dict[str, Any]]],
                      categories: dict[Any, str], images_dir: Path) -> ConsistencyIndex:
    """Every usable box of the file described for the label consistency judge (images that cannot be read and
    annotations that cannot be converted are left out here; the audit reports them)."""
    index = ConsistencyIndex()
    for image in images:
        path = images_dir / str(image["file_name"])
        if not confined(images_dir, path):
            continue
        try:
            pixels = _read_image(path)
        except (OSError, ValueError):
            continue
        height, width = pixels.shape[:2]
        index.add_image(str(image["file_name"]), pixels,
                        convert_annotations(by_image.get(str(image["id"]), []), categories, height, width)[0])
    return index


def convert_annotations(anns: Sequence[dict[str, Any]], categories: dict[Any, str], height: int, width: int
                        ) -> tuple[list[Instance], list[str]]:
    """One image's annotations as Instances (`coco_instance`; crowd regions left out), and a problem line for each
    annotation that cannot be converted."""
    instances, problems = [], []
    for ann in anns:
        try:
            instance = coco_instance(ann, categories, height, width)
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            problems.append(f"annotation {ann.get('id')}: {str(exc).splitlines()[0]}")
            continue
        if instance is not None:
            instances.append(instance)
    return instances, problems


def recognisability_judge(detector: Detector | BackendBlock | dict[str, Any] | str | None,
                          classes: list[str], *, zoom: bool = True, support: Any = None) -> Judge:
    """The recognisability judge over `detector` (None: YOLOv3-tiny) for `classes`, zoomed views or not, its
    flags overruled by `support` (the label consistency index's) where that speaks; AuditError when the detector
    cannot be loaded."""
    from synthloop.tools.critic.detector import DetectorError
    from synthloop.tools.critic.recognisability import RecognisabilityJudge

    try:
        return RecognisabilityJudge(detector, classes=classes, zoom=zoom, support=support)
    except DetectorError as exc:
        raise AuditError(f"detector: {exc}") from exc


def _audit_image(image: dict[str, Any], position: int, anns: list[dict[str, Any]], categories: dict[Any, str],
                 images_dir: Path, judges: list[Judge], index: DuplicateIndex) -> dict[str, Any]:
    path = images_dir / str(image["file_name"])
    if not confined(images_dir, path):
        return _row(image, [Verdict(judge="audit.image", decision=Decision.reject,
                                    reasons=[f"file_name {str(image['file_name'])[:200]!r} leads outside the image "
                                             f"folder {images_dir}; not opened"])])
    try:
        pixels = _read_image(path)
    except (OSError, ValueError) as exc:
        problem = "not found" if isinstance(exc, FileNotFoundError) else f"unreadable ({exc})"
        return _row(image, [Verdict(judge="audit.image", decision=Decision.reject,
                                    reasons=[f"image file {path} {problem}"])])
    height, width = pixels.shape[:2]
    checks: list[str] = []
    if (image.get("width"), image.get("height")) not in ((width, height), (None, None)):
        checks.append(f"COCO size {image.get('width')}×{image.get('height')} ≠ image file {width}×{height}")
    instances, problems = convert_annotations(anns, categories, height, width)
    checks += problems
    sample_id = _sample_id(image["id"], position)
    sample = Sample(
        id=sample_id, index=position, attempt=0, seed=0, split="audit", image_path=str(image["file_name"]),
        width=width, height=height, annotation=Annotation(instances=instances),
        layout=Layout(width=min(max(width, MIN_SIDE), MAX_SIDE), height=min(max(height, MIN_SIDE), MAX_SIDE),
                      objects=[], seed=0, source="coco"),
        image_sha256=pixel_sha256(pixels), phash=perceptual_hash(pixels),
    )
    item = JudgeInput(sample=sample, image=pixels, spec=_placeholder_spec(width, height))
    verdicts = [Verdict(judge="audit.annotations", decision=Decision.reject if checks else Decision.accept,
                        reasons=checks, scores={"n_instances": float(len(instances))})]
    verdicts += [judge.judge(item) for judge in judges]
    index.add(sample.id, sample.image_sha256 or "", sample.phash or "")
    return _row(image, verdicts)


def write_audit(rows: list[dict[str, Any]], out: Path, *, force: bool = True) -> None:
    """Write the rows as JSONL, atomically; an existing `out` is replaced only with `force`."""
    if out.exists() and not force:
        raise AuditError(f"{out} already exists; pass --force to overwrite it")
    atomic_write_jsonl(out, rows)
