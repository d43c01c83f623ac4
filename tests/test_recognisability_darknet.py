"""The recognisability judge through the real Darknet path: a tiny random YOLO (cfg + weights + names written
here in Darknet's own format, loaded by OpenCV like YOLOv3-tiny) in `synthloop critique --detector` and as the
measured pairwise judge's default detector (SYNTHLOOP_YOLO_DIR)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers_cli import synthloop
from PIL import Image

from synthloop.tools.critic.recognisability import RecognisabilityJudge, default_detector_dir

pytest.importorskip("cv2")

CFG = """[net]
batch=1
subdivisions=1
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=24
activation=linear

[yolo]
mask = 0,1,2
anchors = 10,14, 23,27, 37,58
classes=3
num=3
jitter=.3
ignore_thresh = .7
truth_thresh = 1
random=1
"""


def tiny_darknet(folder: Path, seed: int = 0) -> Path:
    """A 2-layer YOLO for bird / car / apple with random weights, in Darknet's cfg / weights / names format."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.cfg").write_text(CFG)
    (folder / "tiny.names").write_text("bird\ncar\napple\n")
    rng = np.random.default_rng(seed)
    # conv 1 (batch norm): biases, scales, means, variances, weights; conv 2: biases, weights
    tensors = [np.zeros(8), np.ones(8), np.zeros(8), np.ones(8), rng.normal(0, 0.5, 8 * 3 * 3 * 3),
               rng.normal(0, 0.5, 24), rng.normal(0, 0.5, 24 * 8)]
    with open(folder / "tiny.weights", "wb") as file:
        file.write(struct.pack("<iiiq", 0, 2, 5, 0))  # version 0.2.5, images seen
        for tensor in tensors:
            file.write(np.asarray(tensor, np.float32).tobytes())
    return folder


def boxes_only_coco(root: Path) -> tuple[Path, Path]:
    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(images / name)
    coco = {"images": [{"id": i + 1, "file_name": n, "width": 96, "height": 96} for i, n in
                       enumerate(("a.png", "b.png", "c.png"))],
            "categories": [{"id": 1, "name": "bird"}, {"id": 2, "name": "car"}, {"id": 3, "name": "plate"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [50, 50, 30, 40], "area": 1200,
                             "iscrowd": 0},
                            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [10, 10, 40, 30], "area": 1200,
                             "iscrowd": 0},
                            {"id": 3, "image_id": 3, "category_id": 3, "bbox": [20, 20, 30, 30], "area": 900,
                             "iscrowd": 0}]}
    path = root / "coco.json"
    path.write_text(json.dumps(coco))
    return path, images


def test_critique_runs_the_recognisability_judge_over_a_darknet_folder(tmp_path: Path) -> None:
    model = tiny_darknet(tmp_path / "yolo")
    coco, images = boxes_only_coco(tmp_path / "data")
    out = tmp_path / "rows.jsonl"
    result = synthloop("critique", str(coco), "--images", str(images), "--out", str(out), "--detector", str(model))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert "detector.recognisability" in row["judges"]
        assert row["scores"]["detector.recognisability/n_judged"] == (0.0 if row["file_name"] == "c.png" else 1.0), \
            "plate is not a class the detector knows"
    again = tmp_path / "again.jsonl"
    synthloop("critique", str(coco), "--images", str(images), "--out", str(again), "--detector", str(model))
    assert again.read_text() == out.read_text(), "same files, same detector → same rows"


def test_critique_with_a_missing_detector_is_one_error_line(tmp_path: Path) -> None:
    coco, images = boxes_only_coco(tmp_path / "data")
    result = synthloop("critique", str(coco), "--images", str(images), "--out", str(tmp_path / "rows.jsonl"),
                       "--detector", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "--detector" in result.stderr and not (tmp_path / "rows.jsonl").exists()
    empty = synthloop("critique", str(coco), "--images", str(images), "--out", str(tmp_path / "rows.jsonl"),
                      "--detector", "default", env={"SYNTHLOOP_YOLO_DIR": ""})
    assert empty.returncode == 2 and "no default detector" in empty.stderr


def test_the_default_detector_folder_follows_the_environment(tmp_path: Path, monkeypatch) -> None:
    model = tiny_darknet(tmp_path / "yolo")
    monkeypatch.setenv("SYNTHLOOP_YOLO_DIR", str(model))
    assert default_detector_dir() == model
    judge = RecognisabilityJudge()
    assert judge.detector.vocabulary == frozenset({"bird", "car", "apple"})
    monkeypatch.setenv("SYNTHLOOP_YOLO_DIR", "")
    assert default_detector_dir() is None


def test_arena_ranks_with_the_measured_judge_over_the_default_detector(tmp_path: Path) -> None:
    model = tiny_darknet(tmp_path / "yolo")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"objects": [{"name": "bird", "min_count": 1, "max_count": 2},
                                                {"name": "car", "min_count": 0, "max_count": 1}],
                                    "width": 64, "height": 64, "seed": 5}))
    out = tmp_path / "arena"
    result = synthloop("arena", str(spec), "--renderer", "compositor", "--renderer", "copy_paste", "--n", "2",
                       "--out", str(out), "--bootstrap", "20", env={"SYNTHLOOP_YOLO_DIR": str(model)})
    assert result.returncode == 0, result.stderr
    saved = json.loads((out / "arena.json").read_text())
    assert saved["judge"] == "measured.pairwise" and saved["comparisons"] == 2
    assert "a weak detector's view of recognisability" in result.stdout
