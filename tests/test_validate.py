"""validate_dataset: a valid export gives no defects; each corruption gives a defect naming the file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from export_testdata import make_samples, make_spec, rejected_rows
from PIL import Image

from synthloop.tools.export.records import export_all
from synthloop.tools.export.validate import validate_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    out = tmp_path / "ds"
    export_all(out, make_spec(), make_samples(out), rejected_rows=rejected_rows())
    return out


def _edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _first_ann(data: dict) -> dict:
    return data["annotations"][0]


def _missing_image(out: Path) -> None:
    (out / "images" / "train" / "s002.png").unlink()


def _wrong_size(out: Path) -> None:
    Image.fromarray(np.zeros((40, 50, 3), dtype=np.uint8)).save(out / "images" / "train" / "s002.png")


def _bbox_outside(out: Path) -> None:
    _edit_json(
        out / "annotations" / "instances_train.json", lambda d: _first_ann(d).update(bbox=[90, 5, 20, 10])
    )


def _degenerate_bbox(out: Path) -> None:
    _edit_json(
        out / "annotations" / "instances_train.json", lambda d: _first_ann(d).update(bbox=[5, 5, 0, 10])
    )


def _area_mismatch(out: Path) -> None:
    def edit(data: dict) -> None:
        ann = next(a for a in data["annotations"] if isinstance(a["segmentation"], dict))
        ann["area"] += 5

    _edit_json(out / "annotations" / "instances_train.json", edit)


def _yolo_drift(out: Path) -> None:
    label = out / "yolo" / "labels" / "val" / "s003.txt"
    cls, *values = label.read_text().splitlines()[0].split()
    values = [f"{min(1.0, float(v) + 0.02):.6f}" for v in values]
    label.write_text("\n".join([" ".join([cls, *values]), *label.read_text().splitlines()[1:]]) + "\n")


def _manifest_short(out: Path) -> None:
    path = out / "manifest.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))


def _unreadable_json(out: Path) -> None:
    (out / "annotations" / "instances_val.json").write_text('{"images": [')


def _duplicate_ann_ids(out: Path) -> None:
    _edit_json(out / "annotations" / "instances_train.json", lambda d: d["annotations"][1].update(id=1))


def _unknown_category(out: Path) -> None:
    _edit_json(out / "annotations" / "instances_train.json", lambda d: _first_ann(d).update(category_id=9))


def _orphan_image(out: Path) -> None:
    Image.fromarray(np.zeros((72, 96, 3), dtype=np.uint8)).save(out / "images" / "val" / "stray.png")


def _bad_spec(out: Path) -> None:
    (out / "spec.json").write_text('{"objects": []}')


def _unreadable_png(out: Path) -> None:
    (out / "images" / "val" / "s007.png").write_bytes(b"not a png")


def _missing_label(out: Path) -> None:
    (out / "yolo" / "labels" / "train" / "s004.txt").unlink()


def _yolo_class_out_of_range(out: Path) -> None:
    label = out / "yolo" / "labels" / "val" / "s003.txt"
    lines = label.read_text().splitlines()
    lines[0] = "7 " + lines[0].split(" ", 1)[1]
    label.write_text("\n".join(lines) + "\n")


def _hf_rows_missing(out: Path) -> None:
    path = out / "hf" / "train" / "metadata.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))


CORRUPTIONS: list[tuple[Callable[[Path], None], str, str]] = [
    (_missing_image, "images/train/s002.png", "missing"),
    (_wrong_size, "images/train/s002.png", "is 50x40"),
    (_bbox_outside, "annotations/instances_train.json", "outside"),
    (_degenerate_bbox, "annotations/instances_train.json", "degenerate"),
    (_area_mismatch, "annotations/instances_train.json", "mask area"),
    (_yolo_drift, "yolo/labels/val/s003.txt", "differs from COCO"),
    (_manifest_short, "manifest.jsonl", "7 lines but the COCO files hold 8 images"),
    (_unreadable_json, "annotations/instances_val.json", "unreadable JSON"),
    (_duplicate_ann_ids, "annotations/instances_train.json", "duplicate annotation ids"),
    (_unknown_category, "annotations/instances_train.json", "unknown category"),
    (_orphan_image, "images/val/stray.png", "orphan"),
    (_bad_spec, "spec.json", "not a valid TaskSpec"),
    (_unreadable_png, "images/val/s007.png", "cannot be opened"),
    (_missing_label, "yolo/labels/train/s004.txt", "missing"),
    (_yolo_class_out_of_range, "yolo/labels/val/s003.txt", "class id 7"),
    (_hf_rows_missing, "hf/train/metadata.jsonl", "rows but COCO has"),
]


def test_valid_dataset_has_no_defects(dataset: Path) -> None:
    assert validate_dataset(dataset) == []


def test_detection_only_dataset_is_valid(tmp_path: Path) -> None:
    export_all(tmp_path, make_spec(tasks=("detection",)), make_samples(tmp_path))
    assert validate_dataset(tmp_path) == []


@pytest.mark.parametrize(("corrupt", "file", "what"), CORRUPTIONS, ids=[c[0].__name__ for c in CORRUPTIONS])
def test_each_corruption_is_reported(
    dataset: Path, corrupt: Callable[[Path], None], file: str, what: str
) -> None:
    corrupt(dataset)
    defects = validate_dataset(dataset)
    assert any(d.startswith(file) and what in d for d in defects), defects


def test_missing_directory(tmp_path: Path) -> None:
    assert validate_dataset(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: not a directory"]
