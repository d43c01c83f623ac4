"""The label consistency judge: a box whose look-alikes in other images carry another label is flagged, beyond
what the labels' shares give by chance; an image cannot vouch for itself; too few look-alikes say nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from synthloop.tools.critic.audit import audit_coco
from synthloop.tools.critic.base import JudgeInput
from synthloop.tools.critic.consistency import (
    ConsistencyIndex,
    LabelConsistencyJudge,
    binomial_tail,
    crop_descriptor,
)
from synthloop.tools.types import Annotation, Instance, Layout, ObjectSpec, Sample, TaskSpec

SIZE = 96
LOOKS = {"tomato": ("ellipse", (220, 40, 30)), "cucumber": ("rectangle", (40, 160, 60))}


def _scene(seed: int, objects: list[tuple[str, str]]) -> tuple[np.ndarray, list[Instance]]:
    """A grey image with one drawn object per (looks, label) pair: the pixels follow `looks`, the box `label`."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (SIZE, SIZE), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    instances = []
    for k, (looks, label) in enumerate(objects):
        shape, colour = LOOKS[looks]
        w, h = (int(v) for v in rng.integers(16, 24, size=2))
        if looks == "cucumber":
            w, h = w + 12, max(h - 8, 8)
        x, y = 4 + 46 * (k % 2) + int(rng.integers(0, 4)), 4 + 46 * (k // 2) + int(rng.integers(0, 4))
        getattr(draw, shape)([x, y, x + w - 1, y + h - 1], fill=colour)
        instances.append(Instance(category=label, bbox=(x, y, w, h), area=w * h))
    return np.asarray(image), instances


def _item(image: np.ndarray, instances: list[Instance], key: str) -> JudgeInput:
    sample = Sample(id=key.replace(".", "_"), index=0, attempt=0, seed=0, split="train", image_path=key,
                    width=SIZE, height=SIZE, layout=Layout(width=SIZE, height=SIZE, objects=[], seed=0),
                    annotation=Annotation(instances=instances))
    spec = TaskSpec(objects=[ObjectSpec(name=c, min_count=0, max_count=2) for c in LOOKS], n_images=1, width=SIZE,
                    height=SIZE)
    return JudgeInput(sample=sample, image=image, spec=spec)


def _dataset(n: int, objects: list[tuple[str, str]]) -> dict[str, tuple[np.ndarray, list[Instance]]]:
    return {f"{i:03d}.png": _scene(i, objects) for i in range(n)}


def _index(scenes: dict[str, tuple[np.ndarray, list[Instance]]]) -> ConsistencyIndex:
    index = ConsistencyIndex()
    for key, (image, instances) in scenes.items():
        index.add_image(key, image, instances)
    return index


def test_a_relabelled_box_is_flagged_with_the_label_its_look_alikes_carry() -> None:
    scenes = _dataset(12, [("tomato", "tomato"), ("cucumber", "cucumber")])
    scenes["bad.png"] = _scene(99, [("tomato", "cucumber"), ("cucumber", "cucumber")])
    judge = LabelConsistencyJudge(_index(scenes))
    bad = judge.judge(_item(*scenes["bad.png"], "bad.png"))
    assert bad.decision == "reject" and len(bad.reasons) == 1
    assert "instance 0 (cucumber)" in bad.reasons[0] and "labelled tomato (10/10)" in bad.reasons[0]
    for key in ("000.png", "005.png"):
        clean = judge.judge(_item(*scenes[key], key))
        assert clean.decision == "accept" and clean.scores["min_label_agreement"] >= 0.9


def test_an_image_cannot_vouch_for_its_own_labels() -> None:
    scenes = _dataset(12, [("tomato", "tomato"), ("cucumber", "cucumber")])
    everything_swapped = [("tomato", "cucumber"), ("tomato", "cucumber"), ("cucumber", "tomato"),
                          ("cucumber", "tomato")]
    scenes["swapped.png"] = _scene(50, everything_swapped)
    verdict = LabelConsistencyJudge(_index(scenes)).judge(_item(*scenes["swapped.png"], "swapped.png"))
    assert verdict.decision == "reject" and len(verdict.reasons) == 4


def test_a_minority_label_among_look_alikes_is_not_flagged_by_chance() -> None:
    """Nine tenths of the boxes are tomatoes and one tenth cherries that look the same: a cherry's look-alikes are
    all tomatoes, as the shares alone would make them (P = 0.9¹⁰ ≈ 0.35), so it is not flagged."""
    scenes = _dataset(18, [("tomato", "tomato")] * 4)
    image, instances = scenes["000.png"]
    scenes["000.png"] = (image, [instances[0].model_copy(update={"category": "cherry"}), *instances[1:]])
    judge = LabelConsistencyJudge(_index(scenes), min_class_agreement=0.0)  # the chance test alone
    verdict = judge.judge(_item(*scenes["000.png"], "000.png"))
    assert verdict.decision == "accept" and verdict.scores["min_label_agreement"] == 0.0
    assert binomial_tail(10, 10, 0.9) > judge.alpha > binomial_tail(10, 10, 0.5)


def test_a_class_the_descriptor_does_not_tell_apart_is_not_judged() -> None:
    """Cherries drawn exactly like tomatoes (all in one image, so none vouches for another): every cherry's
    look-alikes are tomatoes, beyond chance, but no cherry anywhere has cherry look-alikes, so the dataset gives no
    basis to call a cherry box relabelled."""
    scenes = _dataset(20, [("tomato", "tomato"), ("cucumber", "cucumber")])
    scenes["cherries.png"] = _scene(77, [("tomato", "cherry")] * 4)
    index = _index(scenes)
    agreement = index.class_agreement(10)
    assert agreement["cherry"] == 0.0 and min(agreement["tomato"], agreement["cucumber"]) >= 0.5
    item = _item(*scenes["cherries.png"], "cherries.png")
    assert LabelConsistencyJudge(index, min_class_agreement=0.0).judge(item).decision == "reject"
    assert LabelConsistencyJudge(index).judge(item).decision == "accept"


def test_too_few_look_alikes_say_nothing() -> None:
    scenes = _dataset(3, [("tomato", "tomato"), ("cucumber", "tomato")])  # 4 boxes in other images, k = 10
    verdict = LabelConsistencyJudge(_index(scenes)).judge(_item(*scenes["000.png"], "000.png"))
    assert verdict.decision == "accept" and verdict.scores == {}


def test_descriptors_are_unit_length_and_skip_slivers() -> None:
    image, instances = _scene(1, [("tomato", "tomato")])
    descriptor = crop_descriptor(image, instances[0].bbox)
    assert descriptor is not None and abs(float(np.linalg.norm(descriptor)) - 1.0) < 1e-5
    assert crop_descriptor(image, (10, 10, 2, 30)) is None
    assert crop_descriptor(image, (200, 200, 20, 20)) is None


def _write_coco(tmp_path: Path, scenes: dict[str, tuple[np.ndarray, list[Instance]]]) -> Path:
    ids = {"tomato": 1, "cucumber": 2}
    images, annotations = [], []
    (tmp_path / "images").mkdir()
    for n, (key, (pixels, instances)) in enumerate(scenes.items(), start=1):
        Image.fromarray(pixels).save(tmp_path / "images" / key)
        images.append({"id": n, "file_name": key, "width": SIZE, "height": SIZE})
        annotations += [{"id": len(annotations) + 1, "image_id": n, "category_id": ids[i.category],
                         "bbox": list(i.bbox), "area": i.area, "iscrowd": 0} for i in instances]
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": v, "name": k} for k, v in ids.items()]}))
    return coco


def test_critique_finds_a_relabelled_box_in_a_coco_file_and_can_leave_it_out(tmp_path: Path) -> None:
    scenes = _dataset(12, [("tomato", "tomato"), ("cucumber", "cucumber")])
    scenes["bad.png"] = _scene(99, [("tomato", "cucumber"), ("cucumber", "cucumber")])
    coco = _write_coco(tmp_path, scenes)
    rows = audit_coco(coco, tmp_path / "images", pixel_checks=False, consistency=True)
    flagged = [r["file_name"] for r in rows if r["judges"].get("dataset.label_consistency") == "reject"]
    assert flagged == ["bad.png"]
    without = audit_coco(coco, tmp_path / "images", pixel_checks=False)
    assert all("dataset.label_consistency" not in r["judges"] for r in without)


def test_in_an_audit_the_look_alikes_overrule_a_detector_that_takes_tomatoes_for_cucumbers(tmp_path: Path) -> None:
    from helpers_judges import ScriptedDetector

    from synthloop.tools.critic.detector import Detection

    scenes = _dataset(12, [("tomato", "tomato"), ("cucumber", "cucumber")])
    coco = _write_coco(tmp_path, scenes)
    mistaken = ScriptedDetector([Detection("cucumber", (4.0, 4.0, 22.0, 22.0), 0.9)])  # over every first object

    def flagged(consistency: bool) -> int:
        rows = audit_coco(coco, tmp_path / "images", pixel_checks=False, recognisability=True, detector=mistaken,
                          zoom=False, consistency=consistency)
        return sum(r["judges"]["detector.recognisability"] == "reject" for r in rows)

    assert flagged(consistency=False) >= 10, "the detector alone calls the tomatoes cucumbers"
    assert flagged(consistency=True) == 0, "their look-alikes in other images are labelled tomato"
