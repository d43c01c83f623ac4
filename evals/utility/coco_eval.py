"""Detection datasets read from COCO files, and mAP through pycocotools' COCOeval with bootstrap intervals.

`evaluate_predictions(gt, rows)` runs COCOeval once (bbox, all areas, 100 detections): `stats[0]` is the COCO
mAP@[.5:.95], `stats[1]` AP50. It keeps COCOeval's per-image matching (`evalImgs`) so that bootstrap rounds
only re-accumulate: `map_of_images(evaluation, image_indices)` re-implements COCOeval.accumulate +
summarize for any multiset of test images (a resample may repeat an image) and equals `stats[0]` / `stats[1]`
on the full set (checked in the tests). `bootstrap_rounds` draws the image resamples once, seeded, so every
model is scored on the same resamples and differences between models are paired.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.evals.utility.assets import UtilityError
from synthloop.evals.utility.detector import DetectionImage
from synthloop.tools.coco_file import read_coco_file


@dataclass(frozen=True)
class CocoSet:
    """A detection dataset: the images (labels 1..K in `classes` order) and its COCO ground truth (category id
    k+1 = classes[k], image ids as in `images`)."""

    classes: tuple[str, ...]
    images: list[DetectionImage]
    gt: dict[str, Any]


def export_parts(out_dir: Path) -> list[tuple[Path, Path]]:
    """(COCO file, image folder) of every split of a synthloop export (`DIR/annotations/instances_{split}.json`
    with images in `DIR/images/{split}/`)."""
    files = sorted((Path(out_dir) / "annotations").glob("instances_*.json"))
    if not files:
        raise UtilityError(f"{out_dir} holds no synthloop COCO export (annotations/instances_*.json)")
    return [(f, Path(out_dir) / "images" / f.stem.removeprefix("instances_")) for f in files]


def load_coco_set(parts: Sequence[tuple[Path, Path]], classes: Sequence[str]) -> CocoSet:
    """Read COCO files (with their image folders) into one set; categories are matched to `classes` by name,
    annotations of other categories and crowd regions are left out; image ids are renumbered 1..N."""
    from PIL import Image

    from synthloop.tools.class_names import normal_class_name

    wanted = {normal_class_name(c): k + 1 for k, c in enumerate(classes)}
    images: list[DetectionImage] = []
    gt_images, gt_annotations = [], []
    for coco_file, folder in parts:
        data = read_coco_file(Path(coco_file), UtilityError, lists=("images",))
        label_of = {c.get("id"): wanted.get(normal_class_name(str(c.get("name", ""))))
                    for c in data.get("categories", []) if isinstance(c, dict)}
        by_image: dict[Any, list[dict[str, Any]]] = {}
        for ann in data.get("annotations", []):
            if isinstance(ann, dict) and not ann.get("iscrowd", 0) and label_of.get(ann.get("category_id")):
                by_image.setdefault(ann.get("image_id"), []).append(ann)
        for image in data["images"]:
            path = Path(folder) / str(image["file_name"])
            try:
                with Image.open(path) as opened:
                    pixels = np.asarray(opened.convert("RGB"))
            except (OSError, ValueError) as exc:
                raise UtilityError(f"cannot read image {path}: {exc}") from exc
            image_id = len(images) + 1
            anns = [a for a in by_image.get(image.get("id"), []) if float(a["bbox"][2]) > 0 and float(a["bbox"][3]) > 0]
            boxes = np.array([[float(v) for v in a["bbox"]] for a in anns], np.float32).reshape(-1, 4)
            labels = np.array([label_of[a["category_id"]] for a in anns], np.int64)
            images.append(DetectionImage(image_id=image_id, pixels=pixels, boxes=boxes, labels=labels))
            height, width = pixels.shape[:2]
            gt_images.append({"id": image_id, "width": width, "height": height, "file_name": str(path)})
            for box, label in zip(boxes.tolist(), labels.tolist(), strict=True):
                gt_annotations.append({"id": len(gt_annotations) + 1, "image_id": image_id, "category_id": label,
                                       "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    gt = {"images": gt_images, "annotations": gt_annotations,
          "categories": [{"id": k + 1, "name": c} for k, c in enumerate(classes)]}
    return CocoSet(classes=tuple(classes), images=images, gt=gt)


@dataclass
class Evaluation:
    """COCOeval's result for one model on one test set, with what re-accumulation needs.

    `per_image[k][i]`: COCOeval's evalImgs entry of category k on image i (area all), or None.
    """

    stats_map: float
    stats_ap50: float
    per_image: list[list[dict[str, Any] | None]]
    n_images: int
    max_det: int


def evaluate_predictions(gt: dict[str, Any], rows: Sequence[dict[str, Any]]) -> Evaluation:
    """COCOeval (bbox) of prediction rows (`image_id`, `category_id` or contiguous `label`, xywh `bbox`,
    `score`) against the ground truth dict; pycocotools' printing is silenced."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    results = [{"image_id": r["image_id"], "category_id": int(r.get("category_id", r.get("label"))),
                "bbox": [float(v) for v in r["bbox"]], "score": float(r["score"])} for r in rows]
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {"info": {}, "licenses": [], **gt}
        truth.createIndex()
        detections = truth.loadRes(results) if results else COCO()
        if not results:
            detections.dataset = {"images": gt["images"], "annotations": [], "categories": gt["categories"]}
            detections.createIndex()
        evaluator = COCOeval(truth, detections, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    params = evaluator.params
    n_images, n_areas = len(params.imgIds), len(params.areaRng)
    per_image = [[evaluator.evalImgs[k * n_areas * n_images + i] for i in range(n_images)]
                 for k in range(len(params.catIds))]
    return Evaluation(stats_map=float(evaluator.stats[0]), stats_ap50=float(evaluator.stats[1]), per_image=per_image,
                      n_images=n_images, max_det=int(params.maxDets[-1]))


_REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


def _category_precision(entries: list[dict[str, Any]], max_det: int) -> np.ndarray | None:
    """COCOeval.accumulate's precision (T × R) for one category over `entries`; None when it has no ground
    truth there."""
    if not entries:
        return None
    scores = np.concatenate([e["dtScores"][:max_det] for e in entries])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([e["dtMatches"][:, :max_det] for e in entries], axis=1)[:, order]
    ignored = np.concatenate([e["dtIgnore"][:, :max_det] for e in entries], axis=1)[:, order]
    n_truth = int(np.count_nonzero(np.concatenate([e["gtIgnore"] for e in entries]) == 0))
    if n_truth == 0:
        return None
    tp = np.cumsum(np.logical_and(matched, np.logical_not(ignored)), axis=1).astype(float)
    fp = np.cumsum(np.logical_and(np.logical_not(matched), np.logical_not(ignored)), axis=1).astype(float)
    precision = np.zeros((tp.shape[0], _REC_THRS.size))
    for t in range(tp.shape[0]):
        recall = tp[t] / n_truth
        prec = tp[t] / (fp[t] + tp[t] + np.spacing(1))
        prec = np.maximum.accumulate(prec[::-1])[::-1] if prec.size else prec
        index = np.searchsorted(recall, _REC_THRS, side="left")
        inside = index < prec.size
        precision[t, inside] = prec[index[inside]]
    return precision


def map_of_images(evaluation: Evaluation, image_indices: Sequence[int] | np.ndarray) -> tuple[float, float]:
    """(mAP@[.5:.95], AP50) over a multiset of test image indices (0-based), as COCOeval would compute them on
    a test set made of those images; NaN when no category has ground truth there."""
    per_category = []
    for entries in evaluation.per_image:
        chosen = [entries[int(i)] for i in image_indices]
        precision = _category_precision([e for e in chosen if e is not None], evaluation.max_det)
        if precision is not None:
            per_category.append(precision)
    if not per_category:
        return float("nan"), float("nan")
    stacked = np.stack(per_category)  # K × T × R
    return float(stacked.mean()), float(stacked[:, 0, :].mean())


def bootstrap_rounds(n_images: int, rounds: int, seed: int) -> np.ndarray:
    """`rounds` × `n_images` resampled image indices (with replacement), seeded."""
    rng = np.random.default_rng([seed, 0xB007])
    return rng.integers(0, n_images, size=(rounds, n_images)) if n_images else np.zeros((rounds, 0), int)
