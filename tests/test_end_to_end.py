"""A real loop run (compositor, exact labels, rule critic) read back by third-party tools."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers_coco import ground_truth_as_predictions_ap, load_coco
from PIL import Image

from synthloop.agent.config import RunConfig
from synthloop.agent.runner import start_run
from synthloop.tools.export.validate import validate_dataset
from synthloop.tools.types import TaskSpec

SPEC = TaskSpec.model_validate({
    "objects": [{"name": "car", "min_count": 1, "max_count": 4}, {"name": "person", "min_count": 1, "max_count": 5},
                {"name": "traffic light", "min_count": 0, "max_count": 2, "attributes": ["red"]}],
    "n_images": 16, "width": 256, "height": 192, "difficulty": "hard", "seed": 9,
    "tasks": ["detection", "instance_segmentation"], "formats": ["coco", "yolo"],
})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("e2e") / "out"
    summary = start_run(out, RunConfig(batch_size=6), spec=SPEC, auto_approve=True)
    assert summary.kept == 16
    return out


def _coco_files(out: Path) -> list[Path]:
    return sorted((out / "annotations").glob("instances_*.json"))


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_ground_truth_as_predictions_scores_ap_one(dataset: Path, iou_type: str) -> None:
    scored = 0
    for path in _coco_files(dataset):
        gt = load_coco(path)
        if gt.dataset["annotations"]:
            assert ground_truth_as_predictions_ap(gt, iou_type) == pytest.approx(1.0), (path.name, iou_type)
            scored += 1
    assert scored, "no split of the run has annotations"


def test_every_image_exists_with_the_stated_size(dataset: Path) -> None:
    names = 0
    for path in _coco_files(dataset):
        split = path.stem.removeprefix("instances_")
        for image in json.loads(path.read_text())["images"]:
            with Image.open(dataset / "images" / split / image["file_name"]) as pil:
                assert pil.size == (image["width"], image["height"]) == (256, 192)
            names += 1
    assert names == 16


def test_yolo_labels_describe_the_coco_boxes(dataset: Path) -> None:
    """Read YOLO-seg polygons back independently: their extent must match the COCO boxes of the same image."""
    for path in _coco_files(dataset):
        split = path.stem.removeprefix("instances_")
        coco = json.loads(path.read_text())
        names = {c["id"]: c["name"] for c in coco["categories"]}
        class_ids = {name: i for i, name in enumerate(SPEC.class_names)}
        for image in coco["images"]:
            label = dataset / "yolo" / "labels" / split / (Path(image["file_name"]).stem + ".txt")
            rows = [list(map(float, line.split())) for line in label.read_text().splitlines()]
            anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
            assert len(rows) == len(anns)
            for row, ann in zip(rows, anns, strict=True):
                assert int(row[0]) == class_ids[names[ann["category_id"]]]
                xs, ys = np.array(row[1::2]) * 256, np.array(row[2::2]) * 192
                x, y, w, h = ann["bbox"]
                # The polygon traces the largest connected part; it lies inside the box and, for the usual
                # single-part mask, touches all four sides.
                assert xs.min() >= x - 0.5 and xs.max() <= x + w + 0.5
                assert ys.min() >= y - 0.5 and ys.max() <= y + h + 0.5


def test_validate_passes_and_manifest_matches(dataset: Path) -> None:
    assert validate_dataset(dataset) == []
    ids = [json.loads(line)["id"] for line in (dataset / "manifest.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 16
