"""COCO checks shared by the tests: a COCO file read back by pycocotools, scored against itself."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def load_coco(path: Path) -> COCO:
    """`pycocotools.coco.COCO` of a file, without its progress prints."""
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def ground_truth_as_predictions_ap(gt: COCO, iou_type: str) -> float:
    """COCOeval AP@[.5:.95] of the ground truth scored as its own predictions (score 1.0 each).

    A consistent export scores exactly 1.0 for `iou_type` "bbox" and "segm". Masks are sent as RLE
    (`annToRLE`), so box-only instances whose segmentation is a box polygon are scored the same way.
    """
    predictions = []
    for ann in gt.dataset["annotations"]:
        prediction = {"image_id": ann["image_id"], "category_id": ann["category_id"], "score": 1.0}
        if iou_type == "bbox":
            prediction["bbox"] = ann["bbox"]
        else:
            prediction["segmentation"] = gt.annToRLE(ann)
        predictions.append(prediction)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(gt, gt.loadRes(predictions), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0])
