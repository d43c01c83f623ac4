"""`synthloop critique` end to end: a dataset from `synthloop run`, and a hand-made COCO file with polygons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from synthloop.agent.cli import app, main
from synthloop.tools.critic.audit import AuditError, audit_coco, coco_instance

SPEC = """objects:
  - {name: cup, min_count: 1, max_count: 2}
  - {name: plate, min_count: 1, max_count: 1}
n_images: 6
width: 128
height: 128
tasks: [detection, instance_segmentation]
splits: {train: 1.0, val: 0.0}
seed: 4
"""


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), standalone_mode=False, catch_exceptions=True)
    return (result.exit_code if result.exception is None else -1), result.output


def test_critique_a_synthloop_run(tmp_path: Path) -> None:
    """An audit of a clean compositor run accepts every image. The boundary judge is calibrated on crisp
    compositor edges (no clean image rejected on the defect benchmark); on copy_paste's soft, low-contrast
    cut-out edges it falsely rejects about 45% of clean 512² images (60 measured), so this test pins the
    compositor, and the loop leaves that judge off for exact labels."""
    spec, config = tmp_path / "spec.yaml", tmp_path / "config.yaml"
    spec.write_text(SPEC)
    config.write_text("renderer: compositor\n")
    out = tmp_path / "run"
    _cli("run", str(spec), "--out", str(out), "--config", str(config))
    coco = out / "annotations" / "instances_train.json"
    assert coco.is_file()
    report = tmp_path / "audit.jsonl"
    code, output = _cli("critique", str(coco), "--images", str(out / "images" / "train"), "--out", str(report))
    assert code == 0, output
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    images = json.loads(coco.read_text())["images"]
    assert [r["image_id"] for r in rows] == [i["id"] for i in images]
    for row in rows:
        assert {"image_id", "decision", "reasons", "scores", "judges"} <= row.keys()
        assert row["decision"] == "accept", row["reasons"]
        assert "rules.boundary" in row["judges"] and "rules.duplicate" in row["judges"]


def _hand_made(tmp_path: Path) -> tuple[Path, Path]:
    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    base = (rng.random((96, 96, 3)) * 30 + 60).astype(np.uint8)
    a = base.copy()
    a[20:60, 30:70] = (230, 40, 40)
    Image.fromarray(a).save(images / "a.png")
    Image.fromarray(a).save(images / "a_copy.png")  # exact duplicate of a.png
    Image.fromarray(np.zeros((96, 96, 3), np.uint8)).save(images / "black.png")
    square = [30, 20, 69.9, 20, 69.9, 59.9, 30, 59.9]  # polygon on the red square
    moved = [v + 25 if i % 2 == 0 else v for i, v in enumerate(square)]  # same polygon 25 px to the right
    moved = [min(v, 95) for v in moved]
    coco = {
        "images": [{"id": 10, "file_name": "a.png", "width": 96, "height": 96},
                   {"id": 11, "file_name": "a_copy.png", "width": 96, "height": 96},
                   {"id": 12, "file_name": "black.png", "width": 96, "height": 96},
                   {"id": 13, "file_name": "missing.png", "width": 96, "height": 96},
                   {"id": 14, "file_name": "a.png", "width": 96, "height": 96}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 1, "bbox": [30, 20, 40, 40], "area": 1600, "iscrowd": 0,
             "segmentation": [square]},
            {"id": 2, "image_id": 10, "category_id": 1, "bbox": [0, 0, 96, 96], "area": 9216, "iscrowd": 1,
             "segmentation": {"size": [96, 96], "counts": [0, 9216]}},
            {"id": 3, "image_id": 14, "category_id": 1, "bbox": [55, 20, 40, 40], "area": 1600, "iscrowd": 0,
             "segmentation": [moved]},
            {"id": 4, "image_id": 14, "category_id": 1, "bbox": [1, 1, -3, 4], "area": 0, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "Red Square"}],
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    return path, images


def test_critique_a_hand_made_coco_file(tmp_path: Path) -> None:
    path, images = _hand_made(tmp_path)
    rows = {r["image_id"]: r for r in audit_coco(path, images)}
    assert len(rows) == 5
    assert rows[10]["decision"] == "accept", rows[10]["reasons"]
    assert rows[10]["scores"]["audit.annotations/n_instances"] == 1.0  # the crowd region is not an object
    assert rows[11]["decision"] == "reject" and any("exact duplicate" in r for r in rows[11]["reasons"])
    assert rows[12]["decision"] == "reject" and any("black" in r for r in rows[12]["reasons"])
    assert rows[13]["decision"] == "reject" and "not found" in rows[13]["reasons"][0]
    reasons = " | ".join(rows[14]["reasons"])
    assert rows[14]["decision"] == "reject"
    assert "annotation 4" in reasons and "mask off its object" in reasons


def test_polygon_becomes_rle_with_the_polygon_area() -> None:
    ann = {"category_id": 1, "bbox": [10, 10, 20, 10], "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]}
    inst = coco_instance(ann, {1: "box"}, 40, 40)
    assert inst is not None and inst.segmentation is not None and inst.segmentation.size == (40, 40)
    assert 180 <= inst.area <= 231


def test_unusable_inputs_give_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(AuditError, match="not valid JSON"):
        audit_coco(bad, tmp_path)
    bad.write_text(json.dumps({"annotations": []}))
    with pytest.raises(AuditError, match="no 'images' list"):
        audit_coco(bad, tmp_path)
    monkeypatch.setattr("sys.argv", ["synthloop", "critique", str(bad), "--images", str(tmp_path),
                                     "--out", str(tmp_path / "o.jsonl")])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "no 'images' list" in err[-1]
    assert not (tmp_path / "o.jsonl").exists()
