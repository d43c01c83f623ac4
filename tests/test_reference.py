"""Reference data: loading and checking a COCO file, layout priors, the `reference` layout sampler, and the
report that measures how much closer anchored layouts come to the reference than procedural ones.

The reference fixture is skewed on purpose: cups always small and near the bottom-left corner, two to four per
image; cars large, wide and central, in 70% of the images. Procedural layouts know nothing of that.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthloop.tools.backend import BackendError
from synthloop.tools.layout.base import LayoutSampler
from synthloop.tools.layout.procedural import PROFILES, occluded_fraction
from synthloop.tools.layout.reference import ReferenceLayoutSampler
from synthloop.tools.layout.reference_report import (
    BOX_METRICS,
    count_variation,
    layout_prior_report,
    layout_report_markdown,
    total_variation,
    wasserstein1,
    write_layout_report,
)
from synthloop.tools.layout.registry import LAYOUTS
from synthloop.tools.reference import ReferenceDataError, fit_priors, load_reference
from synthloop.tools.types import Difficulty, ObjectSpec, Task, TaskSpec

W, H = 640, 480
CUP_SIZE, CUP_ASPECT, CUP_CENTRE = (0.04, 0.07), (0.8, 1.2), ((0.05, 0.25), (0.75, 0.95))
CAR_SIZE, CAR_ASPECT, CAR_CENTRE = (0.30, 0.36), (2.2, 2.8), ((0.45, 0.55), (0.35, 0.50))


def skewed_coco(n_images: int = 60, seed: int = 0) -> dict:
    """COCO dict of the skewed reference (sizes are sqrt(area) / sqrt(image area), aspects width / height)."""
    rng = np.random.default_rng(seed)
    coco: dict = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "cups"}, {"id": 2, "name": "Car"},
                                                                  {"id": 3, "name": "person"}]}
    for i in range(n_images):
        coco["images"].append({"id": i + 1, "file_name": f"ref_{i:03d}.png", "width": W, "height": H})
        objects = [(1, CUP_SIZE, CUP_ASPECT, CUP_CENTRE) for _ in range(rng.integers(2, 5))]
        if rng.random() < 0.7:
            objects.append((2, CAR_SIZE, CAR_ASPECT, CAR_CENTRE))
        for category, size, aspect, (cx, cy) in objects:
            s, a = rng.uniform(*size) * np.sqrt(W * H), rng.uniform(*aspect)
            w, h = s * np.sqrt(a), s / np.sqrt(a)
            x = min(max(rng.uniform(*cx) * W - w / 2, 0), W - w)
            y = min(max(rng.uniform(*cy) * H - h / 2, 0), H - h)
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": i + 1, "iscrowd": 0,
                                        "category_id": category, "bbox": [x, y, w, h], "area": w * h})
    # A crowd region is not an object: it must not count.
    coco["annotations"].append({"id": 9999, "image_id": 1, "category_id": 3, "bbox": [0, 0, 600, 400], "iscrowd": 1})
    return coco


def write_reference(root: Path, coco: dict | None = None) -> tuple[Path, Path]:
    coco = coco if coco is not None else skewed_coco()
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    for entry in coco["images"]:
        Image.new("RGB", (4, 4)).save(images / entry["file_name"])  # only existence and sizes in JSON are used
    path = root / "instances.json"
    path.write_text(json.dumps(coco))
    return path, images


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_reference(tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="module")
def sampler(reference: tuple[Path, Path]) -> ReferenceLayoutSampler:
    return ReferenceLayoutSampler(str(reference[0]), str(reference[1]))


SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=1, max_count=5),
                         ObjectSpec(name="car", min_count=0, max_count=2),
                         ObjectSpec(name="fork", min_count=1, max_count=2)], width=512, height=384)


# ------------------------------------------------------------------------------------------- loading


def _broken(coco: dict, change: str) -> dict:
    if change == "missing image":
        coco["images"].append({"id": 500, "file_name": "gone.png", "width": W, "height": H})
    elif change == "outside":
        coco["annotations"][3]["bbox"] = [600.0, 10.0, 80.0, 20.0]
    elif change == "empty box":
        coco["annotations"][3]["bbox"] = [10.0, 10.0, 0.0, 20.0]
    elif change == "unknown category":
        coco["annotations"][3]["category_id"] = 77
    elif change == "unknown image":
        coco["annotations"][3]["image_id"] = 777
    elif change == "no annotations":
        coco["annotations"] = [a for a in coco["annotations"] if a.get("iscrowd")]
    elif change == "no images":
        coco["images"], coco["annotations"] = [], []
    return coco


@pytest.mark.parametrize(("change", "message"), [
    ("missing image", r"image file 'gone\.png' is not in .*images"),
    ("outside", r"annotations\[3\] \(id 4\): box \[600\.0, 10\.0, 80\.0, 20\.0\] lies outside its image "
                r"'ref_000\.png' \(640×480\)"),
    ("empty box", r"annotations\[3\] \(id 4\): empty box"),
    ("unknown category", r"annotations\[3\] \(id 4\) has category_id 77"),
    ("unknown image", r"annotations\[3\] \(id 4\) refers to image id 777"),
    ("no annotations", r"no annotations \(nothing to fit layout priors on\)"),
    ("no images", r"no images"),
])
def test_unusable_reference_is_one_line_naming_the_file_and_the_first_problem(tmp_path: Path, change: str,
                                                                               message: str) -> None:
    coco = _broken(skewed_coco(n_images=4), change)
    path, images = write_reference(tmp_path, coco)
    if change == "missing image":
        (images / "gone.png").unlink()
    with pytest.raises(ReferenceDataError, match=message) as caught:
        load_reference(path, images)
    text = str(caught.value)
    assert isinstance(caught.value, ValueError) and "\n" not in text and str(path) in text


def test_missing_images_are_counted_after_the_first(tmp_path: Path) -> None:
    path, images = write_reference(tmp_path, skewed_coco(n_images=5))
    for name in ("ref_001.png", "ref_003.png", "ref_004.png"):
        (images / name).unlink()
    with pytest.raises(ReferenceDataError, match=r"'ref_001\.png' is not in .* \(and 2 more of 5\)"):
        load_reference(path, images)


def test_unreadable_files_and_folders(tmp_path: Path) -> None:
    path, images = write_reference(tmp_path, skewed_coco(n_images=3))
    with pytest.raises(ReferenceDataError, match="reference COCO file not found"):
        load_reference(tmp_path / "nope.json", images)
    with pytest.raises(ReferenceDataError, match="reference images folder not found"):
        load_reference(path, tmp_path / "no-folder")
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    with pytest.raises(ReferenceDataError, match=r"bad\.json is not valid JSON: .* at line 1"):
        load_reference(bad, images)
    bad.write_text('{"images": []}')
    with pytest.raises(ReferenceDataError, match=r"is not a COCO instances file"):
        load_reference(bad, images)


def test_image_sizes_come_from_the_file_when_the_json_has_none(tmp_path: Path) -> None:
    coco = skewed_coco(n_images=2)
    for entry in coco["images"]:
        del entry["width"], entry["height"]
    path, images = write_reference(tmp_path, coco)
    for entry in coco["images"]:
        Image.new("RGB", (W, H)).save(images / entry["file_name"])
    data = load_reference(path, images)
    assert {(im.width, im.height) for im in data.images} == {(W, H)}


# ------------------------------------------------------------------------------------------- priors


def test_priors_count_classes_and_boxes_as_annotated(reference: tuple[Path, Path]) -> None:
    coco = json.loads(reference[0].read_text())
    data = load_reference(*reference)
    priors = fit_priors(data)
    assert priors.classes == ("cup", "car")  # normal form; 'person' only appears as a crowd region
    objects = [a for a in coco["annotations"] if not a["iscrowd"]]
    per_image = Counter((a["image_id"], a["category_id"]) for a in objects)
    expected = np.array([[per_image[(i + 1, 1)], per_image[(i + 1, 2)]] for i in range(len(coco["images"]))])
    assert np.array_equal(priors.counts, expected)
    frequency = priors.class_frequency()
    assert frequency["cup"] == pytest.approx(expected[:, 0].sum() / expected.sum())
    with_cup = expected[:, 0] > 0
    assert priors.co_occurrence()[0, 1] == pytest.approx(np.mean(expected[with_cup, 1] > 0))
    size = np.exp(priors.boxes["cup"][:, 0])
    aspect = np.exp(priors.boxes["car"][:, 1])
    assert CUP_SIZE[0] - 1e-6 <= size.min() and size.max() <= CUP_SIZE[1] + 1e-6
    assert CAR_ASPECT[0] - 1e-6 <= aspect.min() and aspect.max() <= CAR_ASPECT[1] + 1e-6
    cx, cy = priors.boxes["cup"][:, 2], priors.boxes["cup"][:, 3]
    assert cx.max() < 0.3 and cy.min() > 0.7


# ------------------------------------------------------------------------------------------- sampler


def test_reference_sampler_keeps_the_layout_contract(sampler: ReferenceLayoutSampler) -> None:
    spec = SPEC.model_copy(update={"tasks": [Task.detection, Task.scene_graph], "difficulty": Difficulty.hard})
    assert isinstance(sampler, LayoutSampler) and sampler.id == "reference"
    layouts = [sampler.sample(spec, seed) for seed in range(6)]
    assert [sampler.sample(spec, seed) for seed in range(6)] == layouts  # same spec + seed → same layout
    assert len({lay.model_dump_json() for lay in layouts}) == len(layouts)  # seeds matter
    assert any(lay.relations for lay in layouts)
    for lay in layouts:
        assert (lay.width, lay.height) == (spec.width, spec.height) and lay.objects
        assert all(r.subject < len(lay.objects) and r.object < len(lay.objects) for r in lay.relations)
        assert [o.depth for o in lay.objects] == list(range(len(lay.objects)))


def test_counts_and_overlap_limits_of_the_spec_hold(sampler: ReferenceLayoutSampler) -> None:
    for difficulty in Difficulty:
        spec = SPEC.model_copy(update={"difficulty": difficulty})
        limit = PROFILES[difficulty].max_occlusion
        for seed in range(40):
            layout = sampler.sample(spec, seed)
            counts = Counter(o.category for o in layout.objects)
            for obj in spec.objects:
                assert obj.min_count <= counts[obj.name] <= obj.max_count
            boxes = [o.box for o in layout.objects]  # back to front
            for k, back in enumerate(boxes):
                assert occluded_fraction(back, boxes[k + 1:]) <= limit + 1e-9
    assert sampler.sample(SPEC, 7) == sampler.sample(SPEC, 7) and sampler.sample(SPEC, 7) != sampler.sample(SPEC, 8)


def test_classes_the_reference_lacks_fall_back_and_are_reported(sampler: ReferenceLayoutSampler) -> None:
    assert sampler.class_map(SPEC) == {"cup": "cup", "car": "car", "fork": None}
    assert sampler.unmatched_classes(SPEC) == ["fork"]
    forks = [o for s in range(30) for o in sampler.sample(SPEC, s).objects if o.category == "fork"]
    centres_x = [(o.box[0] + o.box[2]) / 2 for o in forks]
    assert len(forks) >= 30 and max(centres_x) > 0.6 and min(centres_x) < 0.4  # spread like procedural


def test_difficulty_moves_scale_and_clutter_within_the_reference(sampler: ReferenceLayoutSampler) -> None:
    spec = SPEC.model_copy(update={"objects": SPEC.objects[:2]})  # cup and car, both anchored

    def measure(difficulty: Difficulty) -> tuple[float, float]:
        layouts = [sampler.sample(spec.model_copy(update={"difficulty": difficulty}), s) for s in range(120)]
        areas = [(o.box[2] - o.box[0]) * (o.box[3] - o.box[1]) for lay in layouts for o in lay.objects
                 if o.category == "cup"]
        return float(np.median(areas)), float(np.mean([len(lay.objects) for lay in layouts]))

    (easy_area, easy_n), (medium_area, medium_n), (hard_area, hard_n) = (measure(d) for d in Difficulty)
    assert easy_area > medium_area > hard_area
    assert easy_n < medium_n < hard_n


def test_registry_builds_it_and_reports_bad_references_in_one_line(reference: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    assert "reference" in LAYOUTS.names()
    built = LAYOUTS.build({"backend": "reference", "coco": str(reference[0]), "images": str(reference[1])})
    assert isinstance(built, ReferenceLayoutSampler) and built.sample(SPEC, 0).source == "reference"
    with pytest.raises(BackendError, match=r"layout 'reference': reference COCO file not found: .*nope\.json"):
        LAYOUTS.build({"backend": "reference", "coco": str(tmp_path / "nope.json"), "images": str(reference[1])})
    with pytest.raises(BackendError, match="option 'coco'"):
        LAYOUTS.check({"backend": "reference", "images": str(reference[1])})


# ------------------------------------------------------------------------------------------- report


def test_wasserstein_and_total_variation() -> None:
    a = np.array([0.1, 0.4, 0.2, 0.9])
    assert wasserstein1(a, a + 0.3) == pytest.approx(0.3)
    assert wasserstein1(a, a[::-1]) == pytest.approx(0.0)
    assert wasserstein1([0.0, 1.0], [0.0]) == pytest.approx(0.5)
    assert wasserstein1([2.0], [5.0]) == pytest.approx(3.0) == wasserstein1([5.0], [2.0])
    assert total_variation([1, 1, 0], [2, 2, 0]) == 0.0 and total_variation([1, 0], [0, 3]) == 1.0
    assert count_variation([1, 1, 2, 2], [1, 2, 3, 3]) == pytest.approx(0.5)


def test_anchored_layouts_match_the_reference_better_than_procedural(sampler: ReferenceLayoutSampler,
                                                                    tmp_path: Path) -> None:
    report = layout_prior_report(SPEC, sampler, n=150, seed=0)
    assert report.matched == {"cup": "cup", "car": "car"} and report.unmatched == ["fork"]
    for name in report.matched:
        for metric in (*BOX_METRICS, "count_tv"):
            before, after = report.before["classes"][name][metric], report.after["classes"][name][metric]
            assert after < before, (name, metric, before, after)
        # Positions and sizes: at least three times closer (the skew is strong; procedural spreads uniformly).
        for metric in ("size", "centre_x", "centre_y"):
            assert report.after["classes"][name][metric] * 3 < report.before["classes"][name][metric]
    assert report.after["objects_per_image_tv"] < report.before["objects_per_image_tv"]

    json_path, plot_path = write_layout_report(tmp_path, report, SPEC)
    written = json.loads(json_path.read_text())
    assert written["before"] == report.before and written["unmatched"] == ["fork"]
    with Image.open(plot_path) as plot:
        assert plot.width >= 3 * 150 and plot.height >= 2 * 100  # three panels per class, two classes
    markdown = layout_report_markdown(report)
    assert "| cup |" in markdown and "| car |" in markdown and "fork" in markdown and plot_path.name in markdown
