"""COCO export: pycocotools reads it, GT-as-predictions scores AP 1.0, re-export is byte-identical."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from export_testdata import make_samples, make_spec
from helpers_coco import ground_truth_as_predictions_ap, load_coco

from synthloop.tools.export.coco import CocoExporter
from synthloop.tools.export.records import export_all


def _export(out: Path, n: int = 8) -> tuple:
    spec = make_spec(formats=("coco",))
    samples = make_samples(out, n)
    exporter = CocoExporter()
    exporter.setup(out, spec)
    for sample in reversed(samples):  # order of arrival must not matter
        exporter.export_sample(sample)
    exporter.close()
    return spec, samples


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("split", ["train", "val"])
def test_ground_truth_as_predictions_scores_ap_one(tmp_path: Path, iou_type: str, split: str) -> None:
    _export(tmp_path)
    gt = load_coco(tmp_path / "annotations" / f"instances_{split}.json")
    assert gt.dataset["annotations"], "the fixture must give this split objects"
    assert ground_truth_as_predictions_ap(gt, iou_type) == pytest.approx(1.0)


def test_file_contents_follow_the_contract(tmp_path: Path) -> None:
    spec, samples = _export(tmp_path)
    data = json.loads((tmp_path / "annotations" / "instances_train.json").read_text())
    assert data["info"]["description"] == spec.request
    assert "date_created" not in data["info"]
    assert data["licenses"]
    assert [(c["id"], c["name"]) for c in data["categories"]] == [(1, "square"), (2, "disc"), (3, "ring")]
    train = sorted((s for s in samples if s.split == "train"), key=lambda s: s.id)
    assert [(i["id"], i["file_name"], i["sample_id"]) for i in data["images"]] == [
        (k, f"{s.id}.png", s.id) for k, s in enumerate(train, start=1)
    ]
    assert all(i["width"] == 96 and i["height"] == 72 for i in data["images"])
    anns = data["annotations"]
    assert [a["id"] for a in anns] == list(range(1, len(anns) + 1))
    assert all(a["area"] > 0 and a["iscrowd"] == 0 for a in anns)
    # s001: the square hidden behind the bar (area 0) is skipped; the split disc keeps one RLE for both parts.
    s001 = next(i["id"] for i in data["images"] if i["sample_id"] == "s001")
    assert [a["category_id"] for a in anns if a["image_id"] == s001] == [2, 1]
    # s002's first object has no mask: its box becomes a polygon.
    s002 = next(i["id"] for i in data["images"] if i["sample_id"] == "s002")
    first = next(a for a in anns if a["image_id"] == s002)
    x, y, w, h = first["bbox"]
    assert first["segmentation"] == [[x, y, x + w, y, x + w, y + h, x, y + h]]
    rle = next(a for a in anns if isinstance(a["segmentation"], dict))["segmentation"]
    assert rle["size"] == [72, 96] and isinstance(rle["counts"], str)


def test_empty_split_gets_a_valid_file(tmp_path: Path) -> None:
    _export(tmp_path)
    gt = load_coco(tmp_path / "annotations" / "instances_test.json")
    assert gt.dataset["images"] == [] and gt.dataset["annotations"] == []
    assert len(gt.dataset["categories"]) == 3


def test_reexport_is_byte_identical(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    spec = make_spec()
    samples_a = make_samples(first)
    samples_b = make_samples(second)
    export_all(first, spec, samples_a, card=False)
    snapshot = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    export_all(first, spec, list(reversed(samples_a)), card=False)
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == snapshot
    export_all(second, spec, samples_b, card=False)
    for path, data in snapshot.items():
        rel = path.relative_to(first)
        if rel.as_posix() == "yolo/data.yaml":  # holds the absolute dataset path
            continue
        assert (second / rel).read_bytes() == data, rel


def test_bad_samples_are_refused(tmp_path: Path) -> None:
    spec = make_spec(formats=("coco",))
    sample = make_samples(tmp_path, 3)[2]
    exporter = CocoExporter()
    exporter.setup(tmp_path, spec)
    with pytest.raises(ValueError, match="not under"):
        exporter.export_sample(sample.model_copy(update={"image_path": "elsewhere/x.png"}))
    with pytest.raises(ValueError, match="split"):
        exporter.export_sample(sample.model_copy(update={"split": "holdout"}))
    exporter.export_sample(sample)
    with pytest.raises(ValueError, match="twice"):
        exporter.export_sample(sample)


def test_rle_area_matches_the_mask(tmp_path: Path) -> None:
    _export(tmp_path)
    gt = load_coco(tmp_path / "annotations" / "instances_train.json")
    for ann in gt.dataset["annotations"]:
        if isinstance(ann["segmentation"], dict):
            assert int(np.count_nonzero(gt.annToMask(ann))) == ann["area"]
