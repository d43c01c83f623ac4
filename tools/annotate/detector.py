"""Detector verification and box refinement as an annotation step, for images whose pixels are not exact.

A generator (diffusion) was told to draw each layout object inside its layout box; whether it did, and how
tightly, is unknown. `BoxVerifier` runs one of the critic's detector backends (`tools/critic/detectors/`,
registry `DETECTORS`) over the image and matches its detections with the layout boxes, class-aware and one to
one, exactly as the detector judge does (`match_detections`):
1. detections below `min_score` are dropped, the rest go through class-wise NMS;
2. a same-class detection with IoU ≥ `iou` with a layout box **confirms** it; with `refine` its box replaces
   the layout box (the generator rarely fills its box exactly);
3. a same-class detection overlapping less (IoU ≥ 0.1) is recorded as evidence but does not move the box;
4. an object the detector cannot see (a class outside a closed vocabulary) gets no detector evidence at all.

`DetectorAnnotator` (`annotator: {backend: detector, detector: {backend: owlv2, model: DIR}}`) labels boxes
only: one instance per layout object, in layout order (relations stay valid), box = the checked box, area =
box area, no mask. An object the detector did not confirm keeps its layout box and a low certificate
(detector_iou / detector_score 0 → agreement 0): the certificate judge can drop it, nothing is dropped here.
With `vlm:` configured, a VLM's yes/no per instance joins the certificates (`vlm_check.py`).
The SAM annotator composes the same verifier (`annotator: {backend: sam, model: DIR, detector: {backend: owlv2,
model: DIR}}`) and segments inside the refined boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from synthloop.tools.annotate.base import AnnotateRequest, BaseAnnotator
from synthloop.tools.annotate.certificate import certify, layout_iou
from synthloop.tools.annotate.vlm_check import VLMEndpoint, add_vlm_evidence, vlm_presence
from synthloop.tools.backend import BackendBlock, BackendError, Capabilities
from synthloop.tools.critic.detector import Detector, DetectorError, match_detections
from synthloop.tools.geometry import Box, scale_box, xywh_to_xyxy, xyxy_to_xywh
from synthloop.tools.types import Annotation, Instance, Layout, Task


@dataclass(frozen=True)
class BoxCheck:
    """What the detector said about one layout object.

    box: the pixel xyxy box to use (the confirming detection's box when refined, else the layout box);
    detector_iou / detector_score: the best same-class detection's IoU with the layout box and its score, or
    None when the detector cannot see this class.
    """

    box: Box
    confirmed: bool
    detector_iou: float | None
    detector_score: float | None

    def sources(self) -> dict[str, float]:
        """Certificate sources from the detector (empty when it could not see the class)."""
        if self.detector_iou is None or self.detector_score is None:
            return {}
        return {"detector_iou": self.detector_iou, "detector_score": self.detector_score}


class BoxVerifier:
    """Checks layout boxes against one detector's detections (module docstring)."""

    def __init__(self, detector: Detector, *, iou: float = 0.5, min_score: float = 0.3, refine: bool = True) -> None:
        if not 0.0 < iou <= 1.0 or not 0.0 <= min_score <= 1.0:
            raise ValueError(f"need 0 < iou ({iou}) ≤ 1 and 0 ≤ min_score ({min_score}) ≤ 1")
        self.detector = detector
        self.iou = iou
        self.min_score = min_score
        self.refine = refine

    def check(self, image: np.ndarray, layout: Layout) -> list[BoxCheck]:
        """One `BoxCheck` per layout object, in layout order (one `detect` call for the image)."""
        height, width = image.shape[:2]
        boxes = [scale_box(obj.box, width, height) for obj in layout.objects]
        vocabulary = self.detector.vocabulary
        seen = [vocabulary is None or obj.category in vocabulary for obj in layout.objects]
        names = sorted({obj.category for obj, ok in zip(layout.objects, seen, strict=True) if ok})
        detections = self.detector.detect(image, names) if names else []
        placed = [Instance(category=obj.category, bbox=xyxy_to_xywh(box), area=max(1, round(_area(box))))
                  for obj, box in zip(layout.objects, boxes, strict=True)]
        agreement = match_detections(placed, detections, iou_threshold=self.iou, min_overlap=0.1,
                                     min_score=self.min_score, extra_score=1.0, vocabulary=vocabulary)
        evidence: dict[int, tuple[float, Any, bool]] = {a: (v, det, True) for a, det, v in agreement.matches}
        for defect in agreement.defects:
            if defect.kind == "shifted" and defect.annotation is not None:
                evidence[defect.annotation] = (defect.iou, defect.detection, False)
        checks = []
        for index, box in enumerate(boxes):
            if not seen[index]:
                checks.append(BoxCheck(box, False, None, None))
            elif index in evidence:
                value, det, confirmed = evidence[index]
                refined = xywh_to_xyxy(det.bbox) if confirmed and self.refine else box
                checks.append(BoxCheck(refined, confirmed, float(value), float(det.score)))
            else:
                checks.append(BoxCheck(box, False, 0.0, 0.0))
        return checks


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _checked_detector(block: BackendBlock) -> BackendBlock:
    from synthloop.tools.critic.detectors.registry import check_detector

    return check_detector(block)


DetectorBlock = Annotated[BackendBlock, AfterValidator(_checked_detector)]
"""A detector block validated against the detector registry: {backend: owlv2, model: DIR, ...options}."""


def make_verifier(detector: BackendBlock | dict[str, Any] | str, *, iou: float = 0.5, min_score: float = 0.3,
                  refine: bool = True) -> BoxVerifier:
    """Load the detector of `detector` now and wrap it in a `BoxVerifier`; a problem is one `BackendError` line."""
    from synthloop.tools.critic.detectors.registry import build_detector

    try:
        return BoxVerifier(build_detector(detector), iou=iou, min_score=min_score, refine=refine)
    except DetectorError as exc:
        raise BackendError(f"annotator detector: {exc}") from exc


class DetectorAnnotatorOptions(BaseModel):
    """Options of the detector annotator."""

    model_config = ConfigDict(extra="forbid")

    detector: DetectorBlock = Field(description="A detector block: {backend: owlv2, model: DIR, ...options}.")
    iou: float = Field(default=0.5, gt=0.0, le=1.0, description="IoU at which a detection confirms a layout box.")
    min_score: float = Field(default=0.3, ge=0.0, le=1.0, description="Detections below this score are ignored.")
    refine: bool = Field(default=True, description="Replace a confirmed layout box by the detection's box.")
    vlm: VLMEndpoint | None = Field(default=None, description="Ask a VLM yes/no per instance (certificate source "
                                                              "'vlm'): {base_url: http://host/v1, model: NAME}.")


class DetectorAnnotator(BaseAnnotator):
    """Boxes verified and refined by an open-vocabulary detector; no masks (use `sam` with `detector:` for those)."""

    id = "detector"
    Options = DetectorAnnotatorOptions
    capabilities = Capabilities(batched=True, device="auto")

    def __init__(self, detector: BackendBlock | dict[str, Any] | str, *, iou: float = 0.5, min_score: float = 0.3,
                 refine: bool = True, vlm: VLMEndpoint | dict[str, Any] | None = None) -> None:
        self.verifier = make_verifier(detector, iou=iou, min_score=min_score, refine=refine)
        self.vlm = VLMEndpoint.model_validate(vlm) if vlm is not None else None
        self.vlm_client = self.vlm.client() if self.vlm is not None else None
        self.id = f"detector+{self.verifier.detector.id}"

    def annotate_batch(self, requests: Sequence[AnnotateRequest]) -> list[Annotation]:
        """One annotation per request, in order (one detector call per image)."""
        return [self._annotate(r) for r in requests]

    def _annotate(self, request: AnnotateRequest) -> Annotation:
        layout, image = request.layout, request.render.image
        check_image(image, layout)
        instances = []
        for index, (obj, check) in enumerate(zip(layout.objects, self.verifier.check(image, layout), strict=True)):
            bbox = xyxy_to_xywh(check.box)
            placed = scale_box(obj.box, layout.width, layout.height)
            instances.append(Instance(
                category=obj.category, bbox=bbox, area=round(_area(check.box)), source="detector",
                layout_index=index, score=check.detector_score,
                certificate=certify({"layout": layout_iou(placed, bbox), **check.sources()})))
        if self.vlm_client is not None:
            answers = vlm_presence(self.vlm_client, image, instances, class_names=request.spec.class_names,
                                   max_tokens=self.vlm.max_tokens)
            instances = add_vlm_evidence(instances, answers)
        relations = list(layout.relations) if Task.scene_graph in request.spec.tasks else []
        return Annotation(instances=instances, relations=relations)


def check_image(image: np.ndarray, layout: Layout) -> None:
    """An (H, W, 3) uint8 image at the layout's size, or a ValueError naming what differs."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB render, got shape {image.shape} dtype {image.dtype}")
    if image.shape[:2] != (layout.height, layout.width):
        raise ValueError(f"render is {image.shape[1]}x{image.shape[0]} but the layout is "
                         f"{layout.width}x{layout.height}")
