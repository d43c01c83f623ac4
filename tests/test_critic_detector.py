"""Detector-agreement judge: matching and policy, with a scripted detector (no model)."""

from __future__ import annotations

import pytest
from helpers_judges import ScriptedDetector, judge_input

from synthloop.tools.critic.base import Judge, JudgeInput
from synthloop.tools.critic.detector import (
    Detection,
    DetectorAgreementJudge,
    DetectorError,
    match_detections,
)
from synthloop.tools.critic.repair import parse_fix
from synthloop.tools.types import Decision, Instance, ObjectSpec, TaskSpec

W = H = 128
SPEC = TaskSpec(objects=[ObjectSpec(name="cup", max_count=4), ObjectSpec(name="plate", max_count=4),
                         ObjectSpec(name="fork", min_count=0, max_count=4)], width=W, height=H)
CUP = (10.0, 10.0, 30.0, 30.0)
PLATE = (60.0, 60.0, 40.0, 30.0)


def _inst(category: str, bbox: tuple[float, float, float, float], area: int | None = None) -> Instance:
    return Instance(category=category, bbox=bbox, area=int(bbox[2] * bbox[3]) if area is None else area)


def _item(instances: list[Instance]) -> JudgeInput:
    return judge_input(SPEC, instances)


def _judge(detections: list[Detection], instances: list[Instance], **kwargs: object):
    judge = DetectorAgreementJudge(ScriptedDetector(detections), **kwargs)
    return judge.judge(_item(instances))


CLEAN = [_inst("cup", CUP), _inst("plate", PLATE)]
PERFECT = [Detection("cup", CUP, 0.9), Detection("plate", PLATE, 0.8)]


def test_exact_agreement_is_accepted_with_full_scores() -> None:
    verdict = _judge(PERFECT, CLEAN)
    assert verdict.decision == Decision.accept and verdict.reasons == [] and verdict.fix is None
    assert verdict.judge == "detector.agreement"
    assert verdict.scores["precision"] == verdict.scores["recall"] == verdict.scores["mean_iou"] == 1.0
    assert verdict.scores["n_missing"] == verdict.scores["n_extra"] == 0.0


def test_judge_follows_the_protocol_and_asks_for_the_spec_classes() -> None:
    detector = ScriptedDetector(PERFECT)
    judge = DetectorAgreementJudge(detector, id="detector.owl")
    assert isinstance(judge, Judge)
    assert judge.judge(_item(CLEAN)).judge == "detector.owl"
    assert detector.asked == [["cup", "plate", "fork"]]


def test_missing_object_asks_to_drop_its_annotation() -> None:
    verdict = _judge([PERFECT[0]], CLEAN)
    assert verdict.decision == Decision.edit
    assert verdict.reasons == ["instance 1 (plate): not detected (annotated at (60, 60, 40, 30))"]
    assert verdict.fix == "drop annotation 1"
    assert verdict.scores["recall"] == 0.5 and verdict.scores["precision"] == 1.0
    assert verdict.scores["n_missing"] == 1.0
    action = parse_fix(verdict.fix)
    assert action.kind == "drop_instances" and action.instances == (1,)


def test_two_missing_objects_merge_into_one_drop() -> None:
    instances = [*CLEAN, _inst("cup", (90.0, 5.0, 20.0, 20.0))]
    verdict = _judge([PERFECT[0]], instances)
    assert verdict.fix == "drop annotations 1, 2"
    assert parse_fix(verdict.fix).instances == (1, 2)


def test_extra_object_asks_to_add_a_box() -> None:
    verdict = _judge([*PERFECT, Detection("fork", (100.0, 5.0, 10.0, 40.0), 0.8)], CLEAN)
    assert verdict.decision == Decision.edit
    assert verdict.reasons == ["extra fork detected at (100, 5, 10, 40) (score 0.80), not annotated"]
    assert verdict.fix == "add box for fork at (100, 5, 10, 40)"
    assert verdict.scores["precision"] == pytest.approx(2 / 3) and verdict.scores["recall"] == 1.0


def test_unsure_and_low_score_detections_count_neither_way() -> None:
    unsure = Detection("fork", (100.0, 5.0, 10.0, 40.0), 0.4)  # between min_score 0.3 and extra_score 0.5
    weak = Detection("plate", PLATE, 0.1)  # below min_score: cannot confirm the plate
    assert _judge([*PERFECT, unsure], CLEAN).decision == Decision.accept
    verdict = _judge([PERFECT[0], weak], CLEAN)
    assert verdict.scores["n_missing"] == 1.0


def test_shifted_box_is_reported_with_its_iou() -> None:
    moved = Detection("cup", (25.0, 10.0, 30.0, 30.0), 0.9)  # IoU 15*30 / (1800 - 450) = 0.33
    verdict = _judge([moved, PERFECT[1]], CLEAN)
    assert verdict.decision == Decision.edit
    assert verdict.reasons == ["instance 0 (cup): box shifted, IoU 0.33 with the detection at (25, 10, 30, 30) "
                               "(score 0.90)"]
    assert verdict.fix == "set box of annotation 0 to (25, 10, 30, 30)"
    assert verdict.scores["mean_iou"] == pytest.approx((1 / 3 + 1.0) / 2)
    assert verdict.scores["recall"] == 0.5


def test_far_away_detection_is_missing_plus_extra_not_shifted() -> None:
    verdict = _judge([Detection("cup", (90.0, 5.0, 30.0, 30.0), 0.9), PERFECT[1]], CLEAN)
    assert verdict.scores["n_shifted"] == 0.0
    assert verdict.scores["n_missing"] == 1.0 and verdict.scores["n_extra"] == 1.0


def test_wrong_class_is_reported_and_relabelled() -> None:
    verdict = _judge([Detection("fork", CUP, 0.7), PERFECT[1]], CLEAN)
    assert verdict.decision == Decision.edit
    assert verdict.reasons == ["instance 0 (cup): detector sees fork there (IoU 1.00, score 0.70)"]
    assert verdict.fix == "relabel annotation 0 as fork"


def test_matching_is_one_to_one_and_prefers_the_best_iou() -> None:
    cups = [_inst("cup", (10.0, 10.0, 30.0, 30.0)), _inst("cup", (30.0, 10.0, 30.0, 30.0))]
    dets = [Detection("cup", (31.0, 10.0, 30.0, 30.0), 0.9), Detection("cup", (9.0, 10.0, 30.0, 30.0), 0.8)]
    result = match_detections(cups, dets, nms_iou=0.9)
    assert [(a, d.bbox[0]) for a, d, _ in result.matches] == [(0, 9.0), (1, 31.0)]
    assert result.defects == []


def test_duplicate_detections_of_one_object_are_suppressed_not_extra() -> None:
    dets = [*PERFECT, Detection("cup", (11.0, 11.0, 30.0, 30.0), 0.85)]
    assert _judge(dets, CLEAN).decision == Decision.accept


def test_hidden_and_unseeable_annotations_are_not_expected() -> None:
    hidden = _inst("fork", (100.0, 100.0, 10.0, 10.0), area=0)
    assert _judge(PERFECT, [*CLEAN, hidden]).decision == Decision.accept
    detector = ScriptedDetector([PERFECT[0]], vocabulary=frozenset({"cup", "fork"}))
    verdict = DetectorAgreementJudge(detector).judge(_item(CLEAN))
    assert verdict.decision == Decision.accept and verdict.scores["n_expected"] == 1.0
    assert detector.asked == [["cup", "fork"]]


def test_no_annotation_and_no_detection_is_accepted() -> None:
    verdict = _judge([], [])
    assert verdict.decision == Decision.accept and verdict.scores["recall"] == 1.0


def test_policy_reject_rejects_any_defect() -> None:
    verdict = _judge([PERFECT[0]], CLEAN, policy="reject")
    assert verdict.decision == Decision.reject and verdict.fix is None
    assert verdict.reasons == ["instance 1 (plate): not detected (annotated at (60, 60, 40, 30))"]


def test_too_many_disagreements_or_nothing_confirmed_is_rejected() -> None:
    extras = [Detection("fork", (100.0, y, 10.0, 10.0), 0.9) for y in (0.0, 20.0, 40.0)]
    verdict = _judge([*PERFECT, *extras], CLEAN, max_edits=2)
    assert verdict.decision == Decision.reject
    assert verdict.reasons[-1] == "3 disagreements (at most 2 are repaired by edits)"
    verdict = _judge([], CLEAN)
    assert verdict.decision == Decision.reject
    assert verdict.reasons[-1] == "none of the 2 annotated objects was confirmed by the detector"


@pytest.mark.parametrize("kwargs", [{"iou": 0.05, "min_overlap": 0.1}, {"min_score": 0.6, "extra_score": 0.5},
                                    {"policy": "maybe"}])
def test_inconsistent_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(DetectorError):
        DetectorAgreementJudge(ScriptedDetector([]), **kwargs)


def test_a_perfect_detector_catches_every_annotation_defect_by_construction() -> None:
    from synthloop.evals.defects import clean_items
    from synthloop.evals.detector_agreement import EXPECTED_KIND, OracleDetector, run

    items = clean_items(6, size=128, seed=3)
    rows, _ = run(OracleDetector(items), items=items, seed=3)
    assert rows["clean"].n == 6 and rows["clean"].caught == 0
    for defect in ("missing_box", "extra_box", "relabel"):
        row = rows[defect]
        assert row.n > 0 and row.caught == row.n and row.kinds[EXPECTED_KIND[defect]] == row.n, defect
    for defect in ("box_shift", "box_mask_shift"):
        assert rows[defect].caught == rows[defect].n > 0
