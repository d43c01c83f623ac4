"""YOLO export, read back by a loader written here (not the exporter's code) and compared with COCO."""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import yaml
from export_testdata import make_samples, make_spec
from pycocotools import mask as mask_utils

from synthloop.tools.export.records import export_all
from synthloop.tools.export.yolo import largest_component, mask_polygon, trace_outer_contour


def read_yolo_labels(path: Path) -> list[tuple[int, list[float]]]:
    """An independent YOLO label reader: `cls v1 v2 ...` per line."""
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            cls, *values = line.split()
            rows.append((int(cls), [float(v) for v in values]))
    return rows


def rasterise(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Even-odd point-in-polygon test at pixel centres."""
    ys, xs = np.mgrid[0:height, 0:width]
    px, py = xs + 0.5, ys + 0.5
    inside = np.zeros((height, width), dtype=bool)
    for (x1, y1), (x2, y2) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        crosses = (y1 > py) != (y2 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = (x2 - x1) * (py - y1) / (y2 - y1) + x1
        inside ^= crosses & (px < x_at)
    return inside


def _coco(out: Path, split: str) -> dict:
    return json.loads((out / "annotations" / f"instances_{split}.json").read_text())


def _anns_by_file(coco: dict) -> dict[str, list[dict]]:
    by_id = {i["id"]: i["file_name"] for i in coco["images"]}
    out: dict[str, list[dict]] = {name: [] for name in by_id.values()}
    for ann in coco["annotations"]:
        out[by_id[ann["image_id"]]].append(ann)
    return out


def test_data_yaml_parses(tmp_path: Path) -> None:
    spec = make_spec(tasks=("detection",))
    export_all(tmp_path, spec, make_samples(tmp_path), card=False)
    data = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())
    assert data["names"] == {0: "square", 1: "disc", 2: "ring"} and data["nc"] == 3
    assert Path(data["path"]) == (tmp_path / "yolo").resolve()
    for split in ("train", "val", "test"):
        assert (Path(data["path"]) / data[split]).is_dir()


def test_detection_labels_match_coco_boxes(tmp_path: Path) -> None:
    spec = make_spec(tasks=("detection",))
    samples = make_samples(tmp_path)
    export_all(tmp_path, spec, samples, card=False)
    checked = 0
    for split in ("train", "val"):
        coco = _coco(tmp_path, split)
        sizes = {i["file_name"]: (i["width"], i["height"]) for i in coco["images"]}
        for name, anns in _anns_by_file(coco).items():
            stem = Path(name).stem
            image = tmp_path / "yolo" / "images" / split / name
            assert os.path.samefile(image, tmp_path / "images" / split / name)  # a hard link here
            rows = read_yolo_labels(tmp_path / "yolo" / "labels" / split / f"{stem}.txt")
            assert len(rows) == len(anns)
            w_img, h_img = sizes[name]
            for (cls, (cx, cy, w, h)), ann in zip(rows, anns, strict=True):
                assert cls == ann["category_id"] - 1
                box = [(cx - w / 2) * w_img, (cy - h / 2) * h_img, w * w_img, h * h_img]
                assert box == pytest.approx(ann["bbox"], abs=1e-3)
                checked += 1
    assert checked > 10
    assert (tmp_path / "yolo" / "labels" / "train" / "s000.txt").read_text() == ""  # empty image


def test_segmentation_polygons_follow_the_masks(tmp_path: Path) -> None:
    spec = make_spec(tasks=("detection", "instance_segmentation"))
    export_all(tmp_path, spec, make_samples(tmp_path), card=False)
    same_box = 0
    for split in ("train", "val"):
        coco = _coco(tmp_path, split)
        for name, anns in _anns_by_file(coco).items():
            rows = read_yolo_labels(tmp_path / "yolo" / "labels" / split / f"{Path(name).stem}.txt")
            assert len(rows) == len(anns)
            for (cls, values), ann in zip(rows, anns, strict=True):
                assert cls == ann["category_id"] - 1
                assert len(values) >= 6 and len(values) % 2 == 0
                polygon = np.array(values).reshape(-1, 2) * [96, 72]
                x0, y0 = polygon.min(axis=0)
                x1, y1 = polygon.max(axis=0)
                bx, by, bw, bh = ann["bbox"]
                assert bx - 1e-3 <= x0 and by - 1e-3 <= y0 and x1 <= bx + bw + 1e-3 and y1 <= by + bh + 1e-3
                if not isinstance(ann["segmentation"], dict):
                    continue
                if [x0, y0, x1 - x0, y1 - y0] == pytest.approx(ann["bbox"], abs=1e-3):
                    same_box += 1
                    seg = ann["segmentation"]
                    mask = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()}) > 0
                    filled = rasterise(polygon, 72, 96)
                    recall = (filled & mask).sum() / mask.sum()  # the outer contour covers the whole mask
                    assert recall > 0.95, (name, ann["id"], recall)
    assert same_box > 10


def _fill_outside_8(region: np.ndarray) -> np.ndarray:
    """Region plus its holes: everything the 8-connected outside cannot reach (reference for the tracer)."""
    h, w = region.shape
    grid = np.pad(region, 1)
    outside = np.zeros_like(grid)
    outside[0, 0] = True
    queue = deque([(0, 0)])
    while queue:
        y, x = queue.popleft()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ny, nx = y + dy, x + dx
                if 0 <= ny < h + 2 and 0 <= nx < w + 2 and not outside[ny, nx] and not grid[ny, nx]:
                    outside[ny, nx] = True
                    queue.append((ny, nx))
    return ~outside[1:-1, 1:-1]


def _components_4(mask: np.ndarray) -> list[np.ndarray]:
    labels = np.zeros(mask.shape, dtype=int)
    parts = []
    for y, x in zip(*np.nonzero(mask), strict=True):
        if labels[y, x]:
            continue
        labels[y, x] = len(parts) + 1
        part = np.zeros_like(mask)
        queue = deque([(y, x)])
        while queue:
            cy, cx = queue.popleft()
            part[cy, cx] = True
            for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                if (
                    0 <= ny < mask.shape[0]
                    and 0 <= nx < mask.shape[1]
                    and mask[ny, nx]
                    and not labels[ny, nx]
                ):
                    labels[ny, nx] = len(parts) + 1
                    queue.append((ny, nx))
        parts.append(part)
    return parts


def test_tracer_on_random_masks_matches_a_flood_fill_reference() -> None:
    rng = np.random.default_rng(3)
    for _ in range(60):
        mask = rng.random((int(rng.integers(3, 20)), int(rng.integers(3, 20)))) < rng.uniform(0.3, 0.8)
        parts = _components_4(mask)
        if not parts:
            continue
        biggest = max(parts, key=lambda p: int(p.sum()))  # max keeps the first (topmost) on ties
        component = largest_component(mask)
        assert np.array_equal(component, biggest)
        ring = trace_outer_contour(component)
        assert np.array_equal(rasterise(ring, *mask.shape), _fill_outside_8(component))
        simplified = mask_polygon(mask)
        ys, xs = np.nonzero(component)
        assert simplified[:, 0].min() == xs.min() and simplified[:, 0].max() == xs.max() + 1
        assert simplified[:, 1].min() == ys.min() and simplified[:, 1].max() == ys.max() + 1


def test_reexport_drops_stale_files(tmp_path: Path) -> None:
    spec = make_spec(tasks=("detection",))
    samples = make_samples(tmp_path)
    export_all(tmp_path, spec, samples, card=False)
    assert (tmp_path / "yolo" / "labels" / "train" / "s005.txt").exists()
    export_all(tmp_path, spec, [s for s in samples if s.id != "s005"], card=False)
    assert not (tmp_path / "yolo" / "labels" / "train" / "s005.txt").exists()
    assert not (tmp_path / "yolo" / "images" / "train" / "s005.png").exists()
    assert not (tmp_path / "hf" / "train" / "s005.png").exists()
