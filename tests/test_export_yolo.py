"""YOLO export, read back by a loader written here (not the exporter's code) and compared with COCO."""

from __future__ import annotations

import itertools
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
from synthloop.tools.masks import encode_rle, rle_crops
from synthloop.tools.polygons import (
    largest_component,
    largest_component_boxes,
    mask_polygon,
    ring_length,
    rle_polygons,
    simplify_polyline,
    simplify_ring,
    trace_outer_contour,
)


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
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not labels[ny, nx]:
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


def _blobs(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Unions of rotated ellipses with some pixels knocked out: smooth edges, parts, pinch points, holes."""
    ys, xs = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry, angle = rng.uniform(1, width / 2 + 1), rng.uniform(1, height / 2 + 1), rng.uniform(0, np.pi)
        u = (xs - cx) * np.cos(angle) + (ys - cy) * np.sin(angle)
        v = -(xs - cx) * np.sin(angle) + (ys - cy) * np.cos(angle)
        mask |= (u / rx) ** 2 + (v / ry) ** 2 <= 1
    return mask & ~(rng.random((height, width)) < rng.choice([0.0, 0.02, 0.2]))


def _random_masks(rng: np.random.Generator, height: int, width: int, n: int) -> list[np.ndarray]:
    masks = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.5:
            masks.append(_blobs(rng, height, width))
        elif kind < 0.85:
            masks.append(rng.random((height, width)) < rng.uniform(0.1, 0.9))
        elif kind < 0.9:
            masks.append(np.zeros((height, width), dtype=bool))
        elif kind < 0.95:
            masks.append(np.ones((height, width), dtype=bool))
        else:  # one pixel, or a run that wraps from one column into the next
            mask = np.zeros((height, width), dtype=bool)
            mask.T.flat[int(rng.integers(0, height * width)) :][: int(rng.integers(1, 2 * height + 2))] = True
            masks.append(mask)
    return masks


def _segment_distance(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Distance of each point to the closed polygon's boundary."""
    a, b = polygon, np.roll(polygon, -1, axis=0)
    ab, ap = b - a, points[:, None, :] - a[None]
    t = np.clip((ap * ab[None]).sum(-1) / np.maximum((ab**2).sum(-1), 1e-12)[None], 0.0, 1.0)
    nearest = a[None] + t[..., None] * ab[None]
    return np.sqrt(((points[:, None] - nearest) ** 2).sum(-1)).min(axis=1)


def test_rle_decoder_matches_pycocotools() -> None:
    rng = np.random.default_rng(11)
    for _ in range(150):
        height, width = (int(v) for v in rng.integers(1, 70, 2))
        masks = _random_masks(rng, height, width, int(rng.integers(1, 7)))
        rles = [encode_rle(m) for m in masks]
        crops = rle_crops((height, width), [r.counts for r in rles])
        assert len(crops) == len(masks)
        for mask, rle, (crop, x0, y0) in zip(masks, rles, crops, strict=True):
            reference = mask_utils.decode({"size": [height, width], "counts": rle.counts.encode()}) > 0
            assert np.array_equal(reference, mask)
            assert crop.flags.c_contiguous and crop.dtype == bool
            if not mask.any():
                assert crop.shape == (0, 0)
                continue
            ys, xs = np.nonzero(mask)
            assert (x0, y0) == (xs.min(), ys.min())
            assert crop.shape == (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)  # the tight box
            assert np.array_equal(crop, mask[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]])
            ((single, sx, sy),) = rle_crops((height, width), [rle.counts.encode()])  # bytes work too
            assert np.array_equal(single, crop) and (sx, sy) == (x0, y0)


def test_polygons_keep_the_box_and_stay_within_tolerance() -> None:
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(60):
        height, width = (int(v) for v in rng.integers(2, 100, 2))
        masks = _random_masks(rng, height, width, int(rng.integers(1, 6)))
        counts = [encode_rle(m).counts for m in masks]
        batch = rle_polygons((height, width), counts)
        boxes = largest_component_boxes((height, width), counts)
        for mask, polygon, box in zip(masks, batch, boxes, strict=True):
            parts = _components_4(mask) if mask.sum() < 400 else None
            component = largest_component(mask)
            if parts is not None and parts:
                assert np.array_equal(component, max(parts, key=lambda p: int(p.sum())))
            single = mask_polygon(mask)
            assert np.array_equal(polygon, single)  # the same polygon alone or among others
            if not component.any():
                assert polygon.shape == (0, 2) and box == (0.0, 0.0, 0.0, 0.0)
                continue
            ys, xs = np.nonzero(component)
            assert box == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
            assert polygon[:, 0].min() == xs.min() and polygon[:, 0].max() == xs.max() + 1
            assert polygon[:, 1].min() == ys.min() and polygon[:, 1].max() == ys.max() + 1
            assert not np.any(np.all(polygon == np.roll(polygon, 1, axis=0), axis=1))  # no repeated vertex
            ring = trace_outer_contour(component)
            if mask.size <= 900:
                assert np.array_equal(rasterise(ring, *mask.shape), _fill_outside_8(component))
            tolerance = min(1.0, max(0.5, 0.005 * ring_length(ring)))
            assert _segment_distance(ring, polygon).max() <= tolerance + 1e-9
            checked += 1
    assert checked > 100


def test_simplify_guarantees_the_tolerance_where_opencv_alone_does_not() -> None:
    """approxPolyDP's final clean-up may move the outline up to ~1.3 tolerance away; the check repairs it."""
    rng = np.random.default_rng(2)
    for _ in range(150):
        mask = _blobs(rng, int(rng.integers(10, 90)), int(rng.integers(10, 90)))
        ring = trace_outer_contour(largest_component(mask))
        if len(ring) == 0:
            continue
        tolerance = float(rng.uniform(0.5, 1.5))
        simplified = simplify_ring(ring, tolerance)
        assert _segment_distance(ring, simplified).max() <= tolerance + 1e-9
        line = ring[: max(3, len(ring) // 2)]
        kept = simplify_polyline(line, tolerance)
        assert kept[0] == 0 and kept[-1] == len(line) - 1 and kept == sorted(set(kept))
        for i, j in itertools.pairwise(kept):  # Douglas–Peucker's promise: near the chord's line
            (ax, ay), (bx, by) = line[i], line[j]
            between = line[i + 1 : j]
            cross = np.abs((bx - ax) * (between[:, 1] - ay) - (by - ay) * (between[:, 0] - ax))
            assert np.all(cross <= tolerance * np.hypot(bx - ax, by - ay) + 1e-9)


def test_reexport_drops_stale_files(tmp_path: Path) -> None:
    spec = make_spec(tasks=("detection",))
    samples = make_samples(tmp_path)
    export_all(tmp_path, spec, samples, card=False)
    assert (tmp_path / "yolo" / "labels" / "train" / "s005.txt").exists()
    export_all(tmp_path, spec, [s for s in samples if s.id != "s005"], card=False)
    assert not (tmp_path / "yolo" / "labels" / "train" / "s005.txt").exists()
    assert not (tmp_path / "yolo" / "images" / "train" / "s005.png").exists()
    assert not (tmp_path / "hf" / "train" / "s005.png").exists()
