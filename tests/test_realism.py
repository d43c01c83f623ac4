"""Realism eval: class-name mapping, matching, recall with bootstrap intervals, realism.json, card, CLI.

The detector here is a fake that "recognises" solid colour rectangles (one colour per class), so every expected
number follows from how the fixture painted its images. One test runs the real YOLOv3-tiny when
scripts/setup.sh has installed it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from export_testdata import make_samples, make_spec
from PIL import Image

from synthloop.evals.realism import (
    ImageHits,
    RealismError,
    bootstrap_recalls,
    default_detector_dir,
    evaluate_realism,
    format_realism,
    load_realism_detector,
    match_boxes,
    score_image,
    write_realism,
)
from synthloop.tools.class_names import COCO_CLASSES, coco_class_for, normal_class_name
from synthloop.tools.critic.detector import Detection
from synthloop.tools.export.card import REALISM_HEADING, refresh_realism_section, write_card

DARKNET_NAMES = ["person", "motorbike", "aeroplane", "sofa", "pottedplant", "diningtable", "tvmonitor", "cup",
                 "frisbee"]


# ------------------------------------------------------------------------------------------- class names


@pytest.mark.parametrize(("name", "coco"), [
    ("mug", "cup"), ("Mugs", "cup"), ("cups", "cup"), ("motorbike", "motorcycle"), ("sofa", "couch"),
    ("tv", "tv"), ("television", "tv"), ("tvmonitor", "tv"), ("aeroplane", "airplane"), ("cellphone", "cell phone"),
    ("cell_phones", "cell phone"), ("knives", "knife"), ("wine glasses", "wine glass"), ("skis", "skis"),
    ("scissors", "scissors"), ("buses", "bus"), ("people", "person"), ("Teddy-Bears", "teddy bear"),
    ("doughnuts", "donut"), ("fridge", "refrigerator"), ("ties", "tie"), ("mice", "mouse"),
])
def test_class_names_map_to_coco(name: str, coco: str) -> None:
    assert coco_class_for(name) == coco


@pytest.mark.parametrize("name", ["plate", "glasses", "glass", "forklift", "bat", "table", "box", "crack", ""])
def test_names_without_a_safe_coco_class_stay_unmapped(name: str) -> None:
    assert coco_class_for(name) is None


def test_every_coco_and_darknet_name_maps_to_itself_or_its_official_name() -> None:
    assert all(coco_class_for(name) == name for name in COCO_CLASSES)
    darknet = {"motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch", "pottedplant": "potted plant",
               "diningtable": "dining table", "tvmonitor": "tv"}
    assert {name: coco_class_for(name) for name in darknet} == darknet
    assert normal_class_name("Wine_Glasses") == "wine glass" and normal_class_name(" hot-dogs ") == "hot dog"


# ------------------------------------------------------------------------------------------- matching


def test_matching_is_one_to_one_highest_iou_first_and_inclusive_at_the_threshold() -> None:
    truths = [(0.0, 0.0, 10.0, 10.0), (1.0, 0.0, 10.0, 10.0)]
    # One detection covers both truths; the closer (higher IoU) truth takes it, the other stays unmatched.
    assert match_boxes(truths, [(1.0, 0.0, 10.0, 10.0)], 0.5) == [None, 0]
    # IoU exactly 0.5: a 10×10 box against a 10×20 box containing it.
    assert match_boxes([(0.0, 0.0, 10.0, 10.0)], [(0.0, 0.0, 10.0, 20.0)], 0.5) == [0]
    assert match_boxes([(0.0, 0.0, 10.0, 10.0)], [(0.0, 0.0, 10.0, 21.0)], 0.5) == [None]
    assert match_boxes([], [(0.0, 0.0, 1.0, 1.0)], 0.5) == [] and match_boxes(truths, [], 0.5) == [None, None]


def test_score_image_separates_class_aware_from_class_agnostic_hits() -> None:
    truths = [("cup", (0.0, 0.0, 10.0, 10.0)), ("cup", (20.0, 0.0, 10.0, 10.0)), ("cup", (40.0, 0.0, 10.0, 10.0)),
              ("tv", (0.0, 20.0, 30.0, 20.0))]
    detections = [
        Detection("cup", (0.5, 0.0, 10.0, 10.0), 0.9),  # right class, right place
        Detection("bowl", (20.0, 0.0, 10.0, 10.0), 0.8),  # right place, wrong class
        Detection("cup", (40.0, 0.0, 10.0, 10.0), 0.1),  # below min_score: ignored
        Detection("tv", (15.0, 20.0, 30.0, 20.0), 0.9),  # right class, IoU 1/3: a miss
    ]
    hits = score_image(truths, detections, iou_threshold=0.5, min_score=0.25)
    assert hits.truths == {"cup": 3, "tv": 1}
    assert hits.aware == {"cup": 1, "tv": 0}
    assert hits.agnostic == {"cup": 2, "tv": 0}
    assert hits.seen_as == {"cup": {"cup": 1, "bowl": 1}}
    lenient = score_image(truths, detections, iou_threshold=0.5, min_score=0.05)
    assert lenient.aware["cup"] == 2 and lenient.agnostic["cup"] == 3


def test_score_image_also_counts_hits_by_coco_size_bin_of_the_box() -> None:
    truths = [("cup", (0.0, 0.0, 20.0, 20.0)), ("cup", (100.0, 0.0, 50.0, 50.0)), ("cup", (200.0, 0.0, 120.0, 90.0)),
              ("tv", (0.0, 200.0, 100.0, 100.0))]
    detections = [Detection("cup", (0.0, 0.0, 20.0, 20.0), 0.9),  # the small cup
                  Detection("bowl", (100.0, 0.0, 50.0, 50.0), 0.9),  # the medium cup, as another class
                  Detection("tv", (0.0, 200.0, 100.0, 100.0), 0.9)]  # the large tv; the large cup is missed
    sizes = score_image(truths, detections).by_size
    assert sizes.truths == {"small": 1, "medium": 1, "large": 2}
    assert sizes.aware == {"small": 1, "large": 1} and sizes.agnostic == {"small": 1, "medium": 1, "large": 1}


# ------------------------------------------------------------------------------------------- bootstrap


def _images(per_image: list[tuple[int, int]]) -> list[ImageHits]:
    """ImageHits for class 'cup' from (objects, hits) pairs; class-agnostic = class-aware here."""
    return [ImageHits({"cup": n}, {"cup": h}, {"cup": h}) for n, h in per_image]


def test_recall_is_hits_over_objects_pooled_over_images() -> None:
    images = [ImageHits({"cup": 3, "tv": 1}, {"cup": 1, "tv": 1}, {"cup": 2, "tv": 1}),
              ImageHits({"cup": 1}, {"cup": 0}, {"cup": 1})]
    result = bootstrap_recalls(images, ["cup", "tv"], rounds=200, seed=1)
    aware, agnostic = result["class_aware"], result["class_agnostic"]
    assert (aware["cup"].hits, aware["cup"].total, aware["cup"].recall) == (1, 4, 0.25)
    assert (agnostic["cup"].hits, agnostic["cup"].recall) == (3, 0.75)
    assert (aware["all"].hits, aware["all"].total, aware["all"].recall) == (2, 5, 0.4)
    assert aware["tv"].recall == 1.0 and aware["tv"].interval == (1.0, 1.0)  # constant over resamples


def test_bootstrap_interval_agrees_with_the_binomial_normal_approximation() -> None:
    # 400 images with one object each, 120 found: the 95% interval is about 0.3 ± 1.96·sqrt(0.3·0.7/400).
    images = _images([(1, 1)] * 120 + [(1, 0)] * 280)
    recall = bootstrap_recalls(images, ["cup"], rounds=2000, seed=0)["class_aware"]["cup"]
    half_width = 1.96 * np.sqrt(0.3 * 0.7 / 400)
    assert recall.recall == pytest.approx(0.3)
    assert recall.interval[0] == pytest.approx(0.3 - half_width, abs=0.01)
    assert recall.interval[1] == pytest.approx(0.3 + half_width, abs=0.01)


def test_bootstrap_is_seeded_and_resamples_whole_images() -> None:
    # Two images: all 10 objects of one found, none of the other. Resampling images (not objects) gives the
    # recalls 0, 0.5 and 1 only, so the interval spans [0, 1]; resampling objects would give a narrow one.
    images = _images([(10, 10), (10, 0)])
    first = bootstrap_recalls(images, ["cup"], rounds=500, seed=3)["class_aware"]["cup"]
    assert first.interval == (0.0, 1.0)
    assert bootstrap_recalls(images, ["cup"], rounds=500, seed=3)["class_aware"]["cup"] == first
    no_rounds = bootstrap_recalls(images, ["cup"], rounds=0)["class_aware"]["cup"]
    assert no_rounds.recall == 0.5 and no_rounds.interval is None
    empty = bootstrap_recalls(_images([(0, 0)]), ["cup"], rounds=10)["class_aware"]["cup"]
    assert empty.recall is None and empty.interval is None


def test_bootstrap_rounds_that_miss_a_rare_class_drop_out() -> None:
    # One object in one image of 50: some single-round bootstraps never draw it; that must not break anything.
    images = [ImageHits({"cup": 1}, {"cup": 1}, {"cup": 1}), *(ImageHits({}, {}, {}) for _ in range(49))]
    for seed in range(10):
        recall = bootstrap_recalls(images, ["cup"], rounds=1, seed=seed)["class_aware"]["cup"]
        assert recall.recall == 1.0 and recall.interval in (None, (1.0, 1.0))
    assert bootstrap_recalls(images, [], rounds=5)["class_aware"]["all"].recall is None


# ------------------------------------------------------------------------------------------- dataset


class ColourDetector:
    """Finds solid rectangles of known colours; each colour is one Darknet class name with a fixed score."""

    id = "fake:colours"

    def __init__(self, colours: dict[tuple[int, int, int], tuple[str, float]]) -> None:
        self.colours = colours
        self.vocabulary = frozenset(DARKNET_NAMES)
        self.asked: list[list[str]] = []

    def detect(self, image: np.ndarray, class_names: list[str]) -> list[Detection]:
        self.asked.append(list(class_names))
        found = []
        for colour, (name, score) in self.colours.items():
            if name not in class_names:
                continue
            mask = np.all(image == np.array(colour, dtype=np.uint8), axis=2).astype(np.uint8)
            n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
            for x, y, w, h, _area in stats[1:n]:
                found.append(Detection(name, (float(x), float(y), float(w), float(h)), score))
        return found


RED, GREEN, BLUE, DARK, GREY, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (90, 0, 0), (128, 128, 128), (255,) * 3
COLOURS = {RED: ("cup", 0.9), GREEN: ("frisbee", 0.8), BLUE: ("tvmonitor", 0.7), DARK: ("cup", 0.1)}
# (class, paint colour, painted xywh, annotated xywh) per image; the split decides the folder.
SCENES = {
    "train": [
        [("mug", RED, (2, 2, 12, 12), (2, 2, 12, 12)),  # found as cup
         ("mug", GREEN, (20, 2, 12, 12), (20, 2, 12, 12)),  # found, but as frisbee
         ("television", BLUE, (2, 30, 30, 20), (2, 30, 30, 20)),  # found as tvmonitor → tv
         ("plate", WHITE, (40, 30, 20, 20), (40, 30, 20, 20))],  # no COCO class: not scored
    ],
    "val": [
        [("mug", DARK, (2, 2, 12, 12), (2, 2, 12, 12)),  # found with score 0.1 only: a miss
         ("mug", GREY, (20, 2, 12, 12), (20, 2, 12, 12)),  # nothing found
         ("television", BLUE, (2, 30, 30, 20), (22, 30, 30, 20))],  # box off by 20 px (IoU 0.2): a miss
    ],
}


def write_dataset(root: Path, scenes: dict[str, list[list[tuple]]] = SCENES) -> Path:
    """An exported-dataset folder: images/{split}/*.png and annotations/instances_{split}.json."""
    used = {o[0] for images in scenes.values() for objects in images for o in objects}
    categories = {name: k for k, name in enumerate(["mug", "plate", "television"], start=1) if name in used}
    for split, images in scenes.items():
        (root / "images" / split).mkdir(parents=True)
        coco = {"images": [], "annotations": [],
                "categories": [{"id": i, "name": n} for n, i in categories.items()]}
        for k, objects in enumerate(images):
            pixels = np.zeros((64, 64, 3), dtype=np.uint8)
            for name, colour, (x, y, w, h), bbox in objects:
                pixels[y:y + h, x:x + w] = colour
                coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": k + 1,
                                            "category_id": categories[name], "bbox": list(bbox),
                                            "area": bbox[2] * bbox[3], "iscrowd": 0})
            Image.fromarray(pixels).save(root / "images" / split / f"{k:06d}.png")
            coco["images"].append({"id": k + 1, "file_name": f"{k:06d}.png", "width": 64, "height": 64})
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    return root


def test_evaluate_realism_scores_every_split_and_writes_realism_json(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "data")
    detector = ColourDetector(COLOURS)
    report = evaluate_realism(dataset, detector, rounds=100, seed=0)
    assert detector.asked and all(sorted(a) == sorted(DARKNET_NAMES) for a in detector.asked)  # all classes
    assert report.splits == ["train", "val"] and report.n_images == 2
    assert report.mapping == {"mug": "cup", "television": "tv"} and report.unmapped == ["plate"]
    aware, agnostic = report.recall["class_aware"], report.recall["class_agnostic"]
    assert (aware["cup"].hits, aware["cup"].total, agnostic["cup"].hits) == (1, 4, 2)
    assert (aware["tv"].hits, aware["tv"].total, agnostic["tv"].hits) == (1, 2, 1)
    assert (aware["all"].hits, aware["all"].total) == (2, 6)
    assert report.seen_as == {"cup": {"cup": 1, "frisbee": 1}, "tv": {"tv": 1}}

    path = write_realism(dataset, report)
    data = json.loads(path.read_text())
    assert path == dataset / "realism.json"
    assert data["recall"]["class_aware"]["cup"] == {"hits": 1, "total": 4, "recall": 0.25,
                                                    "interval": list(aware["cup"].interval)}
    assert data["unmapped"] == ["plate"] and data["detector"] == "fake:colours"
    text = format_realism(report)
    assert "mug" in text and "television" in text and "not scored (no COCO class): plate" in text
    assert "cup found as: cup 1, frisbee 1" in text
    by_size = report.recall_by_size["class_aware"]
    assert sum(by_size[b].total for b in ("small", "medium", "large")) == 6 == by_size["all"].total
    assert sum(by_size[b].hits for b in ("small", "medium", "large")) == 2
    assert "class-aware recall by box area (small < 32², medium < 96², large): small 6 objects 0.333" in text


def test_open_vocabulary_detector_is_asked_for_the_mapped_coco_names(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "data")
    detector = ColourDetector({RED: ("cup", 0.9), BLUE: ("tv", 0.9)})
    detector.vocabulary = None
    report = evaluate_realism(dataset, detector, rounds=0)
    assert all(sorted(a) == ["cup", "tv"] for a in detector.asked)
    assert report.recall["class_aware"]["tv"].hits == 1 and report.recall["class_aware"]["cup"].hits == 1


def test_a_dataset_without_coco_classes_scores_nothing_and_says_so(tmp_path: Path) -> None:
    scenes = {"train": [[("plate", RED, (2, 2, 12, 12), (2, 2, 12, 12))]]}
    dataset = write_dataset(tmp_path / "data", scenes)
    report = evaluate_realism(dataset, ColourDetector(COLOURS), rounds=20)
    assert report.mapping == {} and report.unmapped == ["plate"]
    assert report.recall["class_aware"]["all"].recall is None
    assert "not scored (no COCO class): plate" in format_realism(report)
    write_realism(tmp_path, report)
    write_card(tmp_path, make_spec(), [], [], None)
    assert "| all |  | 0 | - | - |" in (tmp_path / "card.md").read_text()


def test_a_missing_image_or_detector_is_one_clear_error(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "data")
    (dataset / "images" / "val" / "000000.png").unlink()
    with pytest.raises(RealismError, match=r"cannot read image .*val/000000\.png"):
        evaluate_realism(dataset, ColourDetector(COLOURS), rounds=0)
    with pytest.raises(RealismError, match="no annotations/instances_"):
        evaluate_realism(tmp_path, ColourDetector(COLOURS))
    with pytest.raises(RealismError, match=r"scripts/setup\.sh.*--detector DIR"):
        load_realism_detector(tmp_path / "nowhere")


def test_card_shows_the_realism_section_when_realism_json_exists(tmp_path: Path) -> None:
    spec = make_spec()
    samples = make_samples(tmp_path)
    write_card(tmp_path, spec, samples, [], None)
    assert REALISM_HEADING not in (tmp_path / "card.md").read_text()
    assert refresh_realism_section(tmp_path) is None  # nothing to show yet

    report = evaluate_realism(write_dataset(tmp_path / "data"), ColourDetector(COLOURS), rounds=50)
    write_realism(tmp_path, report)
    refresh_realism_section(tmp_path)
    refresh_realism_section(tmp_path)  # idempotent: replaced, not appended twice
    card = (tmp_path / "card.md").read_text()
    assert card.count(REALISM_HEADING) == 1
    assert card.index(REALISM_HEADING) < card.index("## Samples")
    aware = report.recall["class_aware"]["cup"]
    assert f"| mug | cup | 4 | 0.250 [{aware.interval[0]:.2f}, {aware.interval[1]:.2f}] |" in card
    assert "Not scored (no COCO class): plate." in card
    assert "Class-aware recall by box area" in card and "small (6 objects) 0.333" in card

    write_card(tmp_path, spec, samples, [], None)  # a re-export keeps the section
    assert (tmp_path / "card.md").read_text().count(REALISM_HEADING) == 1


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "synthloop.agent.cli", "eval", "realism", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "data")
    for args, needle in [((str(dataset), "--detector", str(tmp_path / "none")), "--detector DIR"),
                         ((str(tmp_path / "missing"),), "is not a directory"),
                         ((str(dataset), "--min-score", "2"), "--min-score")]:
        result = _cli(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and needle in lines[0], result.stderr
    assert not (dataset / "realism.json").exists()


# ------------------------------------------------------------------------------------------- real weights

REAL = default_detector_dir()


@pytest.mark.skipif(not (REAL / "yolov3-tiny.weights").is_file(),
                    reason=f"YOLOv3-tiny not installed in {REAL} (bash scripts/setup.sh fetches it)")
def test_real_yolov3_tiny_runs_through_the_cli(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "data")
    result = _cli(str(dataset), "--bootstrap", "50")
    assert result.returncode == 0, result.stderr
    data = json.loads((dataset / "realism.json").read_text())
    assert data["detector"] == "yolov3_darknet:yolov3-tiny" and data["n_images"] == 2
    assert data["mapping"] == {"mug": "cup", "television": "tv"}  # Darknet's "tvmonitor" read as COCO's "tv"
    for kind in ("class_aware", "class_agnostic"):
        assert data["recall"][kind]["all"]["total"] == 6
        assert 0.0 <= data["recall"][kind]["all"]["recall"] <= 1.0
    assert data["recall"]["class_agnostic"]["all"]["hits"] >= data["recall"]["class_aware"]["all"]["hits"]
    assert "detector yolov3_darknet:yolov3-tiny" in result.stdout
