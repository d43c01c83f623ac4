"""Detector verification and box refinement: the box verifier, the detector annotator, and SAM prompted with the
detector-refined boxes (`annotator: {backend: sam, model: DIR, detector: {backend: ..., model: ...}}`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from contracts import AnnotatorContract
from pydantic import BaseModel, ConfigDict

from synthloop.agent.config import ConfigError, RunConfig, load_config
from synthloop.tools.annotate.base import Annotator
from synthloop.tools.annotate.detector import BoxVerifier, DetectorAnnotator
from synthloop.tools.annotate.registry import ANNOTATORS
from synthloop.tools.backend import Backend, BackendError
from synthloop.tools.critic.detector import Detection
from synthloop.tools.critic.detectors.registry import DETECTORS
from synthloop.tools.geometry import iou, xywh_to_xyxy
from synthloop.tools.render.base import RenderResult
from synthloop.tools.types import Layout, LayoutObject, ObjectSpec, Task, TaskSpec

os.environ.setdefault("HF_HUB_OFFLINE", "1")

W, H = 100, 80
SPEC = TaskSpec(objects=[ObjectSpec(name="cup"), ObjectSpec(name="plate")], width=W, height=H,
                tasks=[Task.detection, Task.instance_segmentation])
LAYOUT = Layout(width=W, height=H, seed=0, objects=[
    LayoutObject(category="cup", box=(0.1, 0.1, 0.4, 0.5)),     # px (10, 8, 40, 40)
    LayoutObject(category="plate", box=(0.5, 0.2, 0.9, 0.8)),   # px (50, 16, 90, 64)
    LayoutObject(category="cup", box=(0.05, 0.6, 0.25, 0.95)),  # px (5, 48, 25, 76)
])
DETECTIONS = [
    ("cup", 12.0, 10.0, 28.0, 28.0, 0.9),   # confirms object 0 (IoU 0.82): its box replaces the layout box
    ("plate", 60.0, 30.0, 30.0, 40.0, 0.8),  # overlaps object 1 too little (IoU 0.49): evidence, no refinement
    ("cup", 5.0, 48.0, 20.0, 28.0, 0.2),    # on object 2 but below min_score: ignored
    ("fork", 70.0, 5.0, 10.0, 10.0, 0.9),   # a class the layout does not hold
]
IOU_0 = iou((10, 8, 40, 40), (12, 10, 40, 38))
IOU_1 = iou((50, 16, 90, 64), (60, 30, 90, 70))
IMAGE = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)


class ScriptedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detections: list[tuple[str, float, float, float, float, float]] = []
    vocabulary: list[str] | None = None


class ScriptedDetector(Backend):
    """Answers the same detections for every image (the classes asked for only); records each call."""

    id = "scripted"
    Options = ScriptedOptions

    def __init__(self, detections: list[tuple[str, float, float, float, float, float]] = (),  # type: ignore[assignment]
                 vocabulary: list[str] | None = None) -> None:
        self.detections = [Detection(c, (x, y, w, h), s) for c, x, y, w, h, s in detections]
        self.vocabulary = frozenset(vocabulary) if vocabulary is not None else None
        self.calls: list[list[str]] = []

    def detect(self, image: np.ndarray, class_names: list[str]) -> list[Detection]:
        self.calls.append(list(class_names))
        return [d for d in self.detections if d.category in class_names]


@pytest.fixture
def scripted() -> Iterator[dict[str, Any]]:
    DETECTORS.register("scripted", ScriptedDetector)
    yield {"backend": "scripted", "detections": DETECTIONS}
    DETECTORS.unregister("scripted")


def test_the_verifier_confirms_refines_and_records_evidence() -> None:
    detector = ScriptedDetector(DETECTIONS)
    checks = BoxVerifier(detector, iou=0.5, min_score=0.3).check(IMAGE, LAYOUT)
    assert detector.calls == [["cup", "plate"]], "one detect call per image, the layout's classes"
    first, second, third = checks
    assert first.confirmed and first.box == (12.0, 10.0, 40.0, 38.0)
    assert first.detector_iou == pytest.approx(IOU_0) and first.detector_score == 0.9
    assert not second.confirmed and second.box == pytest.approx((50.0, 16.0, 90.0, 64.0))
    assert second.detector_iou == pytest.approx(IOU_1) and second.detector_score == 0.8
    assert not third.confirmed and (third.detector_iou, third.detector_score) == (0.0, 0.0)
    unrefined = BoxVerifier(detector, refine=False).check(IMAGE, LAYOUT)[0]
    assert unrefined.confirmed and unrefined.box == pytest.approx((10.0, 8.0, 40.0, 40.0))
    closed = BoxVerifier(ScriptedDetector(DETECTIONS, vocabulary=["plate"])).check(IMAGE, LAYOUT)
    assert closed[0].sources() == {} and closed[2].sources() == {}, "a class the detector cannot see: no evidence"
    assert closed[1].sources() == {"detector_iou": pytest.approx(IOU_1), "detector_score": 0.8}


def test_the_detector_annotator_keeps_every_layout_object_with_its_certificate(scripted: dict[str, Any]) -> None:
    annotator = ANNOTATORS.build({"backend": "detector", "detector": scripted})
    assert isinstance(annotator, (Annotator, DetectorAnnotator)) and annotator.id == "detector+scripted"
    assert annotator.capabilities.batched and not annotator.capabilities.needs_instance_map
    first, second, third = annotator.annotate(LAYOUT, RenderResult(image=IMAGE), SPEC).instances
    assert [i.layout_index for i in (first, second, third)] == [0, 1, 2]
    assert first.bbox == (12.0, 10.0, 28.0, 28.0) and first.area == 28 * 28 and first.segmentation is None
    assert first.source == "detector" and first.score == 0.9
    assert first.certificate.sources == {"layout": round(IOU_0, 4), "detector_iou": round(IOU_0, 4),
                                         "detector_score": 0.9}
    assert first.certificate.agreement == pytest.approx((IOU_0 ** 2 * 0.9) ** (1 / 3), abs=1e-4)
    assert second.bbox == pytest.approx((50.0, 16.0, 40.0, 48.0)) and second.area == 40 * 48
    assert second.certificate.sources["layout"] == 1.0
    assert second.certificate.agreement == pytest.approx((1.0 * IOU_1 * 0.8) ** (1 / 3), abs=1e-4)
    assert third.bbox == pytest.approx((5.0, 48.0, 20.0, 28.0)), "not confirmed: kept at its layout box"
    assert third.certificate.agreement == 0.0 and third.score == 0.0


def test_sam_segments_inside_the_detector_refined_boxes(scripted: dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from synthloop.evals.tiny_sam import tiny_sam

    model = tiny_sam(tmp_path / "sam")
    annotator = ANNOTATORS.build({"backend": "sam", "model": str(model), "device": "cpu", "min_predicted_iou": 0.0,
                                  "detector": scripted, "detector_iou": 0.5, "detector_min_score": 0.3})
    assert annotator.id == f"sam:{model}+scripted"
    prompts: list[Any] = []
    forward = annotator.predictor.model.forward

    def spy(*args: Any, **kwargs: Any) -> Any:
        prompts.append(kwargs["input_boxes"][0].numpy().astype(np.float64))
        return forward(*args, **kwargs)

    annotator.predictor.model.forward = spy
    annotation = annotator.annotate(LAYOUT, RenderResult(image=IMAGE), SPEC)
    new_h, new_w = annotator.predictor.embed(IMAGE).reshaped_size  # SAM's resize: longest side to the encoder's
    scale = np.array([new_w / W, new_h / H, new_w / W, new_h / H])
    expected = np.array([(12, 10, 40, 38), (50, 16, 90, 64), (5, 48, 25, 76)], dtype=np.float64) * scale
    assert len(prompts) == 1 and np.allclose(prompts[0], expected, atol=1e-4), "refined box 0, layout boxes 1-2"
    for inst, check_iou, score in zip(annotation.instances, (IOU_0, IOU_1, 0.0), (0.9, 0.8, 0.0), strict=True):
        sources = inst.certificate.sources
        assert set(sources) == {"layout", "sam_iou", "detector_iou", "detector_score"}
        assert sources["detector_iou"] == pytest.approx(check_iou, abs=1e-4) and sources["detector_score"] == score
        placed = tuple(v * s for v, s in zip(LAYOUT.objects[inst.layout_index].box, (W, H, W, H), strict=True))
        assert sources["layout"] == pytest.approx(iou(placed, xywh_to_xyxy(inst.bbox)) if inst.area else 0.0,
                                                  abs=1e-4)
    assert annotation.instances[2].certificate.agreement == 0.0, "the detector saw nothing at object 2"


def test_a_tiny_owlv2_verifies_boxes_through_the_registries(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from helpers_tiny_detectors import tiny_owl

    owl = tiny_owl(tmp_path / "owl")
    block = {"backend": "detector", "min_score": 0.0,
             "detector": {"backend": "owlv2", "model": str(owl), "device": "cpu", "score_threshold": 0.0}}
    annotator = ANNOTATORS.build(block)
    assert annotator.id == f"detector+owlv2:{owl}"
    annotation = annotator.annotate(LAYOUT, RenderResult(image=IMAGE), SPEC)
    assert [i.category for i in annotation.instances] == ["cup", "plate", "cup"]
    for inst in annotation.instances:
        assert {"layout", "detector_iou", "detector_score"} == set(inst.certificate.sources)
        assert all(0.0 <= v <= 1.0 for v in inst.certificate.sources.values())
    assert annotation == annotator.annotate(LAYOUT, RenderResult(image=IMAGE), SPEC)


def test_the_composed_annotator_reads_from_a_run_config(tmp_path: Path, scripted: dict[str, Any]) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("annotator:\n  backend: sam\n  model: /models/sam-vit-huge\n  detector:\n"
                    "    backend: owlv2\n    model: /models/owlv2\n    score_threshold: 0.1\n  detector_iou: 0.6\n")
    config = load_config(file)
    assert config.annotator.options["detector"] == {"backend": "owlv2", "model": "/models/owlv2",
                                                    "score_threshold": 0.1}
    assert RunConfig.model_validate(config.model_dump(mode="json")) == config, "serialises back to the same shape"
    file.write_text("annotator:\n  backend: sam\n  model: /m\n  detector:\n    backend: owlv2\n    model: /o\n"
                    "    score_treshold: 0.1\n")
    with pytest.raises(ConfigError, match="detector 'owlv2' has no option 'score_treshold'"):
        load_config(file)
    with pytest.raises(BackendError, match=r"^annotator detector: detector model path does not exist"):
        ANNOTATORS.build({"backend": "detector", "detector": {"backend": "owlv2", "model": str(tmp_path / "none")}})


class TestTinyOwlSamAnnotatorContract(AnnotatorContract):
    """SAM composed with a detector (tiny random OWLv2 and SAM) keeps the annotator contract: valid labels."""

    exact_masks = False
    registry_name = "sam"
    seeds = range(2)

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _tiny_models(cls, tmp_path_factory: pytest.TempPathFactory) -> None:
        pytest.importorskip("transformers")
        from helpers_tiny_detectors import tiny_owl

        from synthloop.evals.tiny_sam import tiny_sam

        root = tmp_path_factory.mktemp("sam-owl")
        cls.options = {"model": str(tiny_sam(root / "sam")), "device": "cpu", "detector_min_score": 0.0,
                       "detector": {"backend": "owlv2", "model": str(tiny_owl(root / "owl")), "device": "cpu"}}
        cls.backend = ANNOTATORS.build({"backend": "sam", **cls.options})


class TestTinyOwlDetectorAnnotatorContract(AnnotatorContract):
    """The detector annotator (boxes only) over a tiny random OWLv2 keeps the annotator contract."""

    exact_masks = False
    registry_name = "detector"
    seeds = range(3)

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _tiny_model(cls, tmp_path_factory: pytest.TempPathFactory) -> None:
        pytest.importorskip("transformers")
        from helpers_tiny_detectors import tiny_owl

        owl = tiny_owl(tmp_path_factory.mktemp("owl") / "owl")
        cls.options = {"detector": {"backend": "owlv2", "model": str(owl), "device": "cpu"}, "min_score": 0.0}
        cls.backend = ANNOTATORS.build({"backend": "detector", **cls.options})
