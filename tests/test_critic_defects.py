"""Defect injectors change what they claim; the defect benchmark runs and prints its table."""

from __future__ import annotations

import numpy as np
import pytest

from synthloop.evals.critic_defects import ENSEMBLE, format_defect_bench, run_defect_bench
from synthloop.evals.defects import DEFECTS, INJECTORS, RULE_VISIBLE, clean_items
from synthloop.tools.critic.duplicates import NEAR_DUPLICATE_MIN_SIMILARITY, perceptual_hash, similarity
from synthloop.tools.geometry import iou, xywh_to_xyxy
from synthloop.tools.masks import decode_rle


@pytest.fixture(scope="module")
def item():
    return next(i for i in clean_items(6, 256, seed=2) if sum(x.area > 0 for x in i.sample.annotation.instances) >= 2)


def _inject(name, item):
    injected = INJECTORS[name](item, np.random.default_rng(0))
    assert injected is not None
    return injected


@pytest.mark.parametrize("name", ["box_shift", "box_mask_shift", "mask_shift"])
def test_shifts_move_the_annotation_off_its_object(name, item) -> None:
    injected = _inject(name, item)
    before = item.sample.annotation.instances[injected.instance]
    after = injected.item.sample.annotation.instances[injected.instance]
    box_moved = iou(xywh_to_xyxy(before.bbox), xywh_to_xyxy(after.bbox)) < 0.5
    mask_moved = (decode_rle(before.segmentation) & decode_rle(after.segmentation)).sum() < 0.5 * before.area
    assert box_moved == (name != "mask_shift")
    assert mask_moved == (name != "box_shift")
    assert injected.item.image is item.image
    for i, inst in enumerate(item.sample.annotation.instances):
        if i != injected.instance:
            assert injected.item.sample.annotation.instances[i] == inst


def test_annotation_defects(item) -> None:
    n = len(item.sample.annotation.instances)
    degenerate = _inject("degenerate_box", item).item.sample.annotation.instances
    assert any(min(inst.bbox[2:]) < 2 for inst in degenerate)
    assert len(_inject("missing_box", item).item.sample.annotation.instances) == n - 1
    extra = _inject("extra_box", item)
    assert len(extra.item.sample.annotation.instances) == n + 1 and extra.instance == n
    relabelled = _inject("relabel", item)
    old = item.sample.annotation.instances[relabelled.instance].category
    assert relabelled.item.sample.annotation.instances[relabelled.instance].category != old


def test_image_defects(item) -> None:
    assert len(np.unique(_inject("blank", item).item.image)) == 1
    assert not _inject("black", item).item.image.any()
    copy = _inject("exact_duplicate", item).item
    assert (copy.image == item.image).all() and copy.sample.id != item.sample.id
    near = _inject("near_duplicate", item).item
    assert not (near.image == item.image).all() and near.sample.id != item.sample.id
    assert similarity(perceptual_hash(near.image), perceptual_hash(item.image)) >= NEAR_DUPLICATE_MIN_SIMILARITY


def test_benchmark_prints_a_table_and_rules_catch_visible_defects() -> None:
    bench = run_defect_bench(n=9, size=256, seed=1)
    table = format_defect_bench(bench)
    for name in DEFECTS:
        assert name in table
    assert "clean (FR)" in table and "pooled catch rate" in table
    assert set(bench.n) == {*DEFECTS, "clean"}
    for name in ("blank", "black", "exact_duplicate", "mask_shift", "degenerate_box"):
        assert bench.rate(name, ENSEMBLE) > 0.8, name
    assert bench.rate("blank", "rules.image_quality") == 1.0
    assert bench.visible_catch_rate() > 0.8
    assert bench.rate("clean", ENSEMBLE) <= 0.2
    assert set(bench.to_dict()["rates"]) == {*DEFECTS, "clean"} and all(d in DEFECTS for d in RULE_VISIBLE)


def test_the_headline_pools_every_defect_and_names_missing_extra_and_relabelled_boxes() -> None:
    from synthloop.evals.critic_defects import DETECTOR_DEFECTS

    bench = run_defect_bench(n=6, size=128, seed=4)
    table = format_defect_bench(bench)
    pooled = sum(bench.caught[d][ENSEMBLE] for d in DEFECTS) / sum(bench.n[d] for d in DEFECTS)
    assert f"pooled catch rate over all {len(DEFECTS)} defects (ensemble): {pooled:.1%}" in table
    named = ", ".join(f"{d} {bench.rate(d, ENSEMBLE):.1%}" for d in DETECTOR_DEFECTS)
    assert f"missing / extra / relabelled boxes: {named}" in table
    result = bench.to_dict()
    assert result["catch_rate"] == pytest.approx(pooled)
    assert result["detector_defects_catch_rate"] == pytest.approx(bench.pooled_catch_rate(DETECTOR_DEFECTS))
    assert result["catch_rate"] < result["visible_catch_rate"], "rules miss the detector's defects"


class _SeesNothing:
    id, vocabulary = "nothing", None

    def detect(self, image: np.ndarray, class_names: list[str]) -> list:
        return []


def test_the_recognisability_judge_takes_part_in_the_benchmark() -> None:
    from synthloop.tools.critic.recognisability import RecognisabilityJudge

    bench = run_defect_bench(n=3, size=128, seed=4, defects=("relabel",),
                             recognisability=RecognisabilityJudge(_SeesNothing()))
    assert bench.judges[-1] == "detector.recognisability"
    assert bench.rate("relabel", "detector.recognisability") == 0.0, "a detector that sees nothing flags nothing"
    assert "recognisability" in format_defect_bench(bench)


def test_threshold_calibration_keeps_the_false_reject_budget() -> None:
    from synthloop.evals.critic_defects import _rates, choose_thresholds

    rng = np.random.default_rng(0)
    clean = np.column_stack([rng.uniform(-0.2, 0.2, 200), rng.uniform(0.0, 0.4, 200)])
    relabel = np.column_stack([rng.uniform(0.1, 0.9, 100), rng.uniform(0.0, 0.4, 100)])
    missing = np.column_stack([rng.uniform(-0.2, 0.2, 100), rng.uniform(0.2, 0.9, 100)])
    stats = {"clean": clean, "relabel": relabel, "missing_box": missing}
    for budget in (0.0, 0.05, 0.2):
        margin, score = choose_thresholds(stats, budget)
        rates = _rates(stats, margin, score)
        assert rates["clean"] <= budget
        for other_margin in np.linspace(-0.2, 1.0, 13):  # no pair within budget catches more
            for other_score in np.linspace(0.0, 1.0, 11):
                alternative = _rates(stats, other_margin, other_score)
                if alternative["clean"] <= budget:
                    assert (alternative["relabel"] + alternative["missing_box"]
                            <= rates["relabel"] + rates["missing_box"] + 1e-9)
    strict, loose = choose_thresholds(stats, 0.0), choose_thresholds(stats, 0.2)
    assert strict[0] >= loose[0] and strict[1] >= loose[1]


def test_critique_rows_are_scored_against_what_was_injected() -> None:
    from synthloop.evals.critic_defects import score_critique

    truth = {"a.png": "missing_box", "b.png": "relabel", "c.png": "", "d.png": "", "e.png": "relabel"}

    def row(name: str, decision: str, detector: str = "accept") -> dict:
        return {"file_name": name, "decision": decision, "judges": {"detector.recognisability": detector}}

    check = score_critique([row("a.png", "reject", "reject"), row("b.png", "reject"), row("c.png", "accept"),
                            row("d.png", "reject", "reject"), row("e.png", "accept")], truth)
    assert check.injected == {"missing_box": 1, "relabel": 2}
    assert check.caught == {"missing_box": 1, "relabel": 1} and check.caught_by_detector == {"missing_box": 1,
                                                                                              "relabel": 0}
    assert (check.n_clean, check.false_rejects, check.false_rejects_by_detector) == (2, 1, 1)


@pytest.mark.parametrize("defect", ["box_shift", "missing_box", "relabel", "mask_shift"])
def test_every_instance_defects_spoil_every_visible_instance(defect, item) -> None:
    from synthloop.evals.defects import corrupt_every_instance

    injected = corrupt_every_instance(defect, item, np.random.default_rng(1))
    assert injected is not None and injected.item.image is item.image
    instances, after = item.sample.annotation.instances, injected.item.sample.annotation.instances
    visible = [i for i, inst in enumerate(instances) if inst.area > 0]
    if defect == "missing_box":
        assert len(after) == len(instances) - len(visible) and all(i.area == 0 for i in after)
        return
    assert len(after) == len(instances)
    for i in visible:
        old, new = instances[i], after[i]
        if defect == "relabel":
            assert new.category != old.category and new.bbox == old.bbox
        elif defect == "box_shift":
            assert iou(xywh_to_xyxy(old.bbox), xywh_to_xyxy(new.bbox)) < 0.5 and new.segmentation == old.segmentation
        else:
            assert new.bbox == old.bbox and new.segmentation != old.segmentation
