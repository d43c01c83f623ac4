"""Recognisability judge and the measured pairwise judge, with scripted detectors (no model weights)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from contracts import JudgeContract
from helpers_judges import ScriptedDetector, judge_input

from synthloop.tools.critic.base import Judge, JudgeInput
from synthloop.tools.critic.detector import Detection, DetectorError
from synthloop.tools.critic.detectors.registry import DETECTORS
from synthloop.tools.critic.duplicates import DuplicateIndex, perceptual_hash
from synthloop.tools.critic.measured_pairwise import MeasuredPairwiseJudge
from synthloop.tools.critic.recognisability import RecognisabilityJudge, measure, target_names
from synthloop.tools.critic.registry import JUDGES
from synthloop.tools.critic.rules import GeometryJudge
from synthloop.tools.types import Certificate, Decision, Instance, ObjectSpec, TaskSpec

W = H = 128
SPEC = TaskSpec(objects=[ObjectSpec(name="bird", max_count=4), ObjectSpec(name="car", max_count=4),
                         ObjectSpec(name="plate", min_count=0, max_count=4)], width=W, height=H)
BIRD = (10.0, 10.0, 30.0, 30.0)
CAR = (60.0, 60.0, 40.0, 30.0)


class BrightnessDetector:
    """A deterministic stand-in registered as a detector backend: one detection of the first asked class over
    the top-left quarter, scored by the image's mean brightness."""

    id = "brightness"
    vocabulary = None

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def detect(self, image: np.ndarray, class_names: list[str]) -> list[Detection]:
        if not class_names:
            return []
        height, width = image.shape[:2]
        score = min(1.0, self.scale * float(image.mean()) / 255.0)
        return [Detection(class_names[0], (0.0, 0.0, width / 2, height / 2), score)]


@pytest.fixture(autouse=True, scope="module")
def _brightness_backend():
    DETECTORS.register("test_brightness", BrightnessDetector, replace=True)
    yield
    DETECTORS.unregister("test_brightness")


def _inst(category: str, bbox: tuple[float, float, float, float], certificate: float | None = None) -> Instance:
    cert = None if certificate is None else Certificate(sources={"layout": certificate}, agreement=certificate)
    return Instance(category=category, bbox=bbox, area=int(bbox[2] * bbox[3]), certificate=cert)


def _item(instances: list[Instance], image: np.ndarray | None = None, sample_id: str = "s1") -> JudgeInput:
    return judge_input(SPEC, instances, image, sample_id)


def _judge(detections: list[Detection], instances: list[Instance], **kwargs: object):
    return RecognisabilityJudge(ScriptedDetector(detections), **kwargs).judge(_item(instances))


def test_target_names_map_spec_classes_onto_a_closed_vocabulary_through_coco_names() -> None:
    darknet = frozenset({"bird", "car", "aeroplane", "motorbike", "bowl"})
    assert target_names(["bird", "airplane", "motorcycle", "plate", "cat"], darknet) == {
        "bird": "bird", "airplane": "aeroplane", "motorcycle": "motorbike"}
    assert target_names(["bird", "plate"], None) == {"bird": "bird", "plate": "plate"}


def test_measure_reads_own_class_rival_and_unannotated_detections() -> None:
    detector = ScriptedDetector([Detection("bird", BIRD, 0.7), Detection("car", (12.0, 11.0, 30.0, 30.0), 0.2),
                                 Detection("car", (90.0, 5.0, 20.0, 20.0), 0.6)], frozenset({"bird", "car"}))
    instances = [_inst("bird", BIRD), _inst("car", CAR), _inst("plate", (5.0, 90.0, 20.0, 20.0))]
    evidence = measure(detector, np.zeros((H, W, 3), np.uint8), instances, SPEC.class_names)
    bird, car, plate = evidence.instances
    assert (bird.recognisability, bird.rival, bird.rival_class) == (0.7, 0.2, "car")
    assert (car.recognisability, car.rival, car.rival_class) == (0.0, 0.0, None)
    assert plate is None, "a class the detector does not know is not judged"
    assert [d.bbox for d in evidence.unannotated] == [(90.0, 5.0, 20.0, 20.0)]
    assert detector.asked == [["bird", "car"]], "one pass, only the classes the detector knows"


def test_recognised_objects_are_accepted_with_their_scores() -> None:
    verdict = _judge([Detection("bird", BIRD, 0.8), Detection("car", CAR, 0.4)],
                     [_inst("bird", BIRD), _inst("car", CAR)])
    assert verdict.decision is Decision.accept and verdict.judge == "detector.recognisability"
    assert verdict.scores["recognisability"] == pytest.approx(0.6)
    assert verdict.scores["min_recognisability"] == pytest.approx(0.4)
    assert verdict.scores["n_judged"] == 2.0


def test_a_relabelled_box_is_rejected_when_another_class_clearly_wins_inside_it() -> None:
    instances = [_inst("car", BIRD)]  # the object there is a bird, labelled car
    verdict = _judge([Detection("bird", BIRD, 0.6), Detection("car", BIRD, 0.1)], instances, relabel_margin=0.3)
    assert verdict.decision is Decision.reject
    assert "instance 0 (car): the detector sees bird there (0.60), car only 0.10" in verdict.reasons
    assert verdict.scores["max_rival_margin"] == pytest.approx(0.5)
    close = _judge([Detection("bird", BIRD, 0.35), Detection("car", BIRD, 0.1)], instances, relabel_margin=0.3)
    assert close.decision is Decision.accept, "a margin below the threshold is not evidence enough"


def test_the_datasets_look_alikes_overrule_the_detector_where_they_speak() -> None:
    """support(image, pixels, box, label) → share of the box's look-alikes carrying `label` (None: no basis)."""
    asked: list[tuple[tuple[float, ...], str]] = []

    def support(shares: dict[str, float | None]):
        def share(key: str, image: np.ndarray, bbox, label: str) -> float | None:
            asked.append((tuple(bbox), label))
            return shares.get(label)
        return share

    relabel = [Detection("bird", BIRD, 0.6), Detection("car", BIRD, 0.1)]
    vouched = _judge(relabel, [_inst("car", BIRD)], relabel_margin=0.3, support=support({"car": 0.8}))
    assert vouched.decision is Decision.accept and vouched.scores["overruled_by_look_alikes"] == 1.0
    assert asked == [(BIRD, "car")], "the labelled box is looked up under its own label"
    for shares in ({"car": 0.2}, {}):  # look-alikes disagree, or say nothing: the detector's flag stands
        assert _judge(relabel, [_inst("car", BIRD)], relabel_margin=0.3,
                      support=support(shares)).decision is Decision.reject
    missing = [Detection("bird", BIRD, 0.9), Detection("car", CAR, 0.7)]
    unlike = _judge(missing, [_inst("bird", BIRD)], missing_score=0.5, support=support({"car": 0.1, "bird": 1.0}))
    assert unlike.decision is Decision.accept, "what it found looks like no labelled car"
    alike = _judge(missing, [_inst("bird", BIRD)], missing_score=0.5, support=support({"car": 0.9, "bird": 1.0}))
    assert alike.reasons == ["unannotated car detected at (60, 60, 40, 30), score 0.70"]


def test_a_confident_unannotated_detection_means_a_missing_box() -> None:
    detections = [Detection("bird", BIRD, 0.9), Detection("car", CAR, 0.7)]
    verdict = _judge(detections, [_inst("bird", BIRD)], missing_score=0.5)
    assert verdict.decision is Decision.reject
    assert verdict.reasons == ["unannotated car detected at (60, 60, 40, 30), score 0.70"]
    unsure = _judge([Detection("bird", BIRD, 0.9), Detection("car", CAR, 0.3)], [_inst("bird", BIRD)],
                    missing_score=0.5)
    assert unsure.decision is Decision.accept and unsure.scores["max_unannotated_score"] == pytest.approx(0.3)


def test_low_recognisability_rejects_only_when_asked_and_edit_policy_asks_for_a_rerender() -> None:
    detections = [Detection("bird", BIRD, 0.1)]
    assert _judge(detections, [_inst("bird", BIRD)]).decision is Decision.accept
    strict = _judge(detections, [_inst("bird", BIRD)], min_recognisability=0.5)
    assert strict.decision is Decision.reject and "recognisability 0.10 < 0.50" in strict.reasons[0]
    edit = _judge(detections, [_inst("bird", BIRD)], min_recognisability=0.5, policy="edit")
    assert edit.decision is Decision.edit and edit.fix.startswith("re-render")


def test_nothing_judged_leaves_recognisability_out_of_the_scores() -> None:
    verdict = _judge([], [])
    assert verdict.decision is Decision.accept and "recognisability" not in verdict.scores
    assert verdict.scores["n_judged"] == 0.0


def test_bad_settings_and_a_missing_default_detector_are_one_line_errors(monkeypatch, tmp_path) -> None:
    with pytest.raises(DetectorError, match="policy"):
        RecognisabilityJudge(ScriptedDetector([]), policy="maybe")
    monkeypatch.setenv("SYNTHLOOP_YOLO_DIR", str(tmp_path / "none"))
    with pytest.raises(DetectorError, match=r"scripts/setup\.sh"):
        RecognisabilityJudge()


def test_the_registry_builds_the_judge_around_a_detector_block() -> None:
    judge = JUDGES.build({"backend": "detector.recognisability", "detector": {"backend": "test_brightness"},
                          "min_recognisability": 0.5})
    assert isinstance(judge, Judge)
    bright = _item([_inst("bird", (0.0, 0.0, 64.0, 64.0))], np.full((H, W, 3), 230, np.uint8))
    dark = _item([_inst("bird", (0.0, 0.0, 64.0, 64.0))], np.full((H, W, 3), 20, np.uint8))
    assert judge.judge(bright).decision is Decision.accept
    assert judge.judge(dark).decision is Decision.reject


class TestRecognisabilityContract(JudgeContract):
    backend = RecognisabilityJudge(BrightnessDetector())
    options: ClassVar[dict] = {"detector": {"backend": "test_brightness", "scale": 3.0}, "min_recognisability": 0.3}


# --- measured pairwise judge -----------------------------------------------------------------------------------


def _pair_judge(detections_a: list[Detection], detections_b: list[Detection], **kwargs: object):
    """A measured judge whose detector answers per image: image a is all zeros, image b all ones."""

    class PerImage:
        id, vocabulary = "per-image", None

        def detect(self, image: np.ndarray, class_names: list[str]) -> list[Detection]:
            return [d for d in (detections_a if image.max() == 0 else detections_b) if d.category in class_names]

    return MeasuredPairwiseJudge(RecognisabilityJudge(PerImage()), **kwargs)


def test_the_more_recognisable_sample_wins_in_either_order() -> None:
    judge = _pair_judge([Detection("bird", BIRD, 0.8)], [Detection("bird", BIRD, 0.2)])
    a = _item([_inst("bird", BIRD)], sample_id="a")
    b = _item([_inst("bird", BIRD)], np.ones((H, W, 3), np.uint8), sample_id="b")
    forward, backward = judge.compare_items(a, b, a_id="a", b_id="b"), judge.compare_items(b, a, a_id="b", b_id="a")
    assert forward.winner == "a" and forward.p_a == 1.0
    assert backward.winner == "b" and backward.p_a == 0.0
    assert "recognisability 0.800 vs 0.200" in forward.reasons[0]


def test_certificate_agreement_and_rules_count_only_when_both_sides_have_them() -> None:
    judge = MeasuredPairwiseJudge(None, [GeometryJudge()])
    good = _item([_inst("bird", BIRD, certificate=0.9)], sample_id="good")
    poor = _item([_inst("bird", BIRD, certificate=0.3)], sample_id="poor")
    assert judge.compare_items(good, poor, a_id="good", b_id="poor").winner == "a"
    uncertified = _item([_inst("bird", BIRD)], sample_id="bare")
    result = judge.compare_items(good, uncertified, a_id="good", b_id="bare")
    assert result.winner == "tie" and "certificate" not in result.reasons[0], "no certificate on one side: left out"
    broken = _item([_inst("bird", (10.0, 10.0, 0.5, 30.0), certificate=0.9)], sample_id="broken")
    assert judge.compare_items(poor, broken, a_id="poor", b_id="broken").winner == "a", "rules outweigh"


def test_diversity_prefers_what_the_kept_set_lacks_and_nothing_measured_is_a_tie() -> None:
    rng = np.random.default_rng(0)
    kept_image = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    other_image = np.ascontiguousarray(kept_image[::-1, ::-1])
    index = DuplicateIndex()
    index.add("kept", "", perceptual_hash(kept_image))
    judge = MeasuredPairwiseJudge(None, kept=index)
    copy, new = _item([], kept_image, sample_id="copy"), _item([], other_image, sample_id="new")
    assert judge.compare_items(copy, new, a_id="copy", b_id="new").winner == "b"
    assert MeasuredPairwiseJudge(None).compare_items(copy, new, a_id="copy", b_id="new").winner == "tie"
    with pytest.raises(ValueError, match="weights"):
        MeasuredPairwiseJudge(None, weights={"beauty": 1.0})


def test_measured_judge_ranks_deterministically() -> None:
    judge = _pair_judge([Detection("bird", BIRD, 0.61)], [Detection("bird", BIRD, 0.6)])
    a = _item([_inst("bird", BIRD)], sample_id="a")
    b = _item([_inst("bird", BIRD)], np.ones((H, W, 3), np.uint8), sample_id="b")
    first = judge.compare_items(a, b, a_id="a", b_id="b")
    assert first == judge.compare_items(a, b, a_id="a", b_id="b")
    assert first.winner == "a", "0.61 vs 0.60 is beyond the default tie margin"
    assert MeasuredPairwiseJudge(judge.recognisability, tie_margin=0.05).compare_items(
        a, b, a_id="a", b_id="b").winner == "tie"


def test_a_part_found_inside_an_annotated_box_is_not_an_unannotated_object() -> None:
    part = Detection("car", (62.0, 62.0, 15.0, 10.0), 0.9)  # a wheel of the annotated car: IoU 0.125 with it
    beside = Detection("car", (95.0, 62.0, 20.0, 20.0), 0.9)  # mostly outside every box
    evidence = measure(ScriptedDetector([part, beside]), np.zeros((H, W, 3), np.uint8), [_inst("car", CAR)],
                       SPEC.class_names)
    assert evidence.unannotated == [beside]
