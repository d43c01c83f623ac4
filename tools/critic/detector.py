"""Detector-agreement judge: re-detect the expected classes and compare the detections with the annotation.

A `Detector` finds objects of given class names in an RGB image (open-vocabulary backends such as OWLv2 or
Grounding DINO take any name; a closed-vocabulary one such as YOLOv3-tiny says which names it knows in
`vocabulary`). Backends live one per file in `synthloop.tools.critic.detectors`.

Matching (`match_detections`), per image:
1. Detections below `min_score` are dropped; the rest go through class-wise NMS (open-vocabulary detectors
   often return several boxes per object).
2. Same-class pairs are matched greedily by IoU, highest first (one annotation ↔ one detection). A pair with
   IoU ≥ `iou` is a match; a pair that overlaps (IoU ≥ `min_overlap`) but less is a **shifted box**.
3. An annotation still unmatched whose box is covered (IoU ≥ `iou`) by a detection of another class is a
   **wrong class**.
4. Annotations still unmatched are **missing** (annotated, not detected); detections still unmatched with
   score ≥ `extra_score` are **extra** objects (detected, not annotated). Unmatched detections between
   `min_score` and `extra_score` are too unsure to count either way.
Annotations with no visible pixels (area 0), or of a class the detector cannot see, are not expected.

Decision policy (`policy`):
- no defect → accept;
- `"edit"` (default): at most `max_edits` defects and at least one annotation confirmed → edit, with one
  instruction per defect in `fix`, drops first: "drop annotation 3", "add box for cup at (x, y, w, h)",
  "set box of annotation 1 to (x, y, w, h)", "relabel annotation 2 as fork" (the repair step maps a fix that
  only drops annotations to an in-place drop, anything else to a re-render); more defects, or none of the
  annotations confirmed (the image and its labels disagree wholesale) → reject;
- `"reject"`: any defect → reject.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from synthloop.tools.critic.base import BaseJudge, JudgeInput
from synthloop.tools.geometry import Box, iou, xywh_to_xyxy
from synthloop.tools.types import Decision, Instance, Verdict

Policy = Literal["edit", "reject"]
DefectKind = Literal["missing", "extra", "shifted", "wrong_class"]


class DetectorError(ValueError):
    """A detector cannot be built or run: missing model files, missing packages, bad settings."""


@dataclass(frozen=True)
class Detection:
    """One detected object: class name (one of those asked for), pixel xywh box, confidence in [0, 1]."""

    category: str
    bbox: tuple[float, float, float, float]
    score: float


@runtime_checkable
class Detector(Protocol):
    """Finds objects of the given classes in an HxWx3 uint8 RGB image.

    `id` names the backend and model (recorded in verdict reasons' provenance); `vocabulary` is the set of
    class names the detector can find, or None for an open-vocabulary detector that takes any name.
    """

    id: str
    vocabulary: frozenset[str] | None

    def detect(self, image: np.ndarray, class_names: list[str]) -> list[Detection]:
        """Detections of `class_names` only, any order."""
        ...


@dataclass(frozen=True)
class Defect:
    """One disagreement between the annotation and the detections."""

    kind: DefectKind
    annotation: int | None  # index into the sample's instances
    detection: Detection | None
    iou: float = 0.0


@dataclass
class Agreement:
    """The outcome of matching one annotation against one set of detections."""

    expected: list[int]  # annotation indices the detector was expected to find
    matches: list[tuple[int, Detection, float]] = field(default_factory=list)  # (annotation, detection, IoU)
    defects: list[Defect] = field(default_factory=list)
    n_detections: int = 0  # detections kept after the score threshold and NMS

    def scores(self) -> dict[str, float]:
        """Precision and recall against the annotation, mean IoU per expected annotation, defect counts."""
        tp = len(self.matches)
        best = {a: v for a, _, v in self.matches}
        best.update({d.annotation: d.iou for d in self.defects if d.kind == "shifted" and d.annotation is not None})
        counts = {kind: sum(d.kind == kind for d in self.defects) for kind in ("missing", "extra", "shifted",
                                                                                "wrong_class")}
        return {
            "precision": tp / self.n_detections if self.n_detections else 1.0,
            "recall": tp / len(self.expected) if self.expected else 1.0,
            "mean_iou": float(np.mean([best.get(a, 0.0) for a in self.expected])) if self.expected else 1.0,
            "n_expected": float(len(self.expected)),
            "n_detections": float(self.n_detections),
            **{f"n_{kind}": float(n) for kind, n in counts.items()},
        }


def _nms(detections: list[Detection], threshold: float) -> list[Detection]:
    """Class-wise non-maximum suppression, highest score first."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: (-d.score, d.bbox)):
        box = xywh_to_xyxy(det.bbox)
        if all(k.category != det.category or iou(box, xywh_to_xyxy(k.bbox)) < threshold for k in kept):
            kept.append(det)
    return kept


def _greedy(pairs: list[tuple[float, int, int]], used_a: set[int], used_d: set[int]) -> list[tuple[float, int, int]]:
    """Greedy one-to-one assignment over (IoU, annotation, detection) pairs, highest IoU first."""
    chosen = []
    for value, a, d in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
        if a not in used_a and d not in used_d:
            used_a.add(a)
            used_d.add(d)
            chosen.append((value, a, d))
    return chosen


def match_detections(instances: Sequence[Instance], detections: Sequence[Detection], *, iou_threshold: float = 0.5,
                     min_overlap: float = 0.1, min_score: float = 0.3, extra_score: float = 0.5,
                     nms_iou: float = 0.5, vocabulary: frozenset[str] | None = None) -> Agreement:
    """Class-aware greedy matching of annotated instances against detections (see the module docstring)."""
    expected = [i for i, inst in enumerate(instances)
                if inst.area > 0 and (vocabulary is None or inst.category in vocabulary)]
    dets = _nms([d for d in detections if d.score >= min_score], nms_iou)
    result = Agreement(expected=expected, n_detections=len(dets))
    boxes = {i: xywh_to_xyxy(instances[i].bbox) for i in expected}
    det_boxes: list[Box] = [xywh_to_xyxy(d.bbox) for d in dets]
    overlap = {(a, d): iou(boxes[a], det_boxes[d]) for a in expected for d in range(len(dets))}
    used_a: set[int] = set()
    used_d: set[int] = set()
    same = [(v, a, d) for (a, d), v in overlap.items()
            if dets[d].category == instances[a].category and v >= min_overlap]
    for value, a, d in _greedy([p for p in same if p[0] >= iou_threshold], used_a, used_d):
        result.matches.append((a, dets[d], value))
    for value, a, d in _greedy(same, used_a, used_d):
        result.defects.append(Defect("shifted", a, dets[d], value))
    other = [(v, a, d) for (a, d), v in overlap.items()
             if dets[d].category != instances[a].category and v >= iou_threshold]
    for value, a, d in _greedy(other, used_a, used_d):
        result.defects.append(Defect("wrong_class", a, dets[d], value))
    for a in expected:
        if a not in used_a:
            result.defects.append(Defect("missing", a, None))
    for d, det in enumerate(dets):
        if d not in used_d and det.score >= extra_score:
            result.defects.append(Defect("extra", None, det))
    order = {"missing": 0, "wrong_class": 1, "shifted": 2, "extra": 3}
    result.defects.sort(key=lambda x: (order[x.kind], -1 if x.annotation is None else x.annotation,
                                       -(x.detection.score if x.detection else 0.0)))
    result.matches.sort(key=lambda m: m[0])
    return result


def _fmt_box(box: tuple[float, float, float, float]) -> str:
    return "(" + ", ".join(f"{v:.0f}" for v in box) + ")"


def _reason(defect: Defect, instances: Sequence[Instance]) -> str:
    det = defect.detection
    if defect.kind == "missing":
        inst = instances[defect.annotation]
        return f"instance {defect.annotation} ({inst.category}): not detected (annotated at {_fmt_box(inst.bbox)})"
    if defect.kind == "extra":
        return f"extra {det.category} detected at {_fmt_box(det.bbox)} (score {det.score:.2f}), not annotated"
    inst = instances[defect.annotation]
    if defect.kind == "shifted":
        return (f"instance {defect.annotation} ({inst.category}): box shifted, IoU {defect.iou:.2f} with the "
                f"detection at {_fmt_box(det.bbox)} (score {det.score:.2f})")
    return (f"instance {defect.annotation} ({inst.category}): detector sees {det.category} there "
            f"(IoU {defect.iou:.2f}, score {det.score:.2f})")


def _instruction(defect: Defect) -> str:
    det = defect.detection
    if defect.kind == "extra":
        return f"add box for {det.category} at {_fmt_box(det.bbox)}"
    if defect.kind == "shifted":
        return f"set box of annotation {defect.annotation} to {_fmt_box(det.bbox)}"
    return f"relabel annotation {defect.annotation} as {det.category}"


def _fix(defects: list[Defect]) -> str:
    """One edit instruction: the drops merged first ("drop annotations 1, 3"), then the others in order."""
    drops = sorted(d.annotation for d in defects if d.kind == "missing")
    parts = [f"drop annotation{'s' if len(drops) > 1 else ''} {', '.join(map(str, drops))}"] if drops else []
    return "; ".join([*parts, *(_instruction(d) for d in defects if d.kind != "missing")])


class DetectorAgreementJudge(BaseJudge):
    """Compares the annotation with what a detector finds; see the module docstring for matching and policy."""

    def __init__(self, detector: Detector, *, id: str = "detector.agreement", iou: float = 0.5,
                 min_overlap: float = 0.1, min_score: float = 0.3, extra_score: float = 0.5, nms_iou: float = 0.5,
                 policy: Policy = "edit", max_edits: int = 2) -> None:
        if not 0.0 < min_overlap <= iou <= 1.0:
            raise DetectorError(f"need 0 < min_overlap ({min_overlap}) ≤ iou ({iou}) ≤ 1")
        if not 0.0 <= min_score <= extra_score <= 1.0:
            raise DetectorError(f"need 0 ≤ min_score ({min_score}) ≤ extra_score ({extra_score}) ≤ 1")
        if policy not in ("edit", "reject"):
            raise DetectorError(f"unknown policy '{policy}' (edit | reject)")
        self.detector = detector
        self.id = id
        self.iou, self.min_overlap, self.nms_iou = iou, min_overlap, nms_iou
        self.min_score, self.extra_score = min_score, extra_score
        self.policy: Policy = policy
        self.max_edits = max_edits

    def agreement(self, item: JudgeInput) -> Agreement:
        """Detect the spec's classes on the image and match them against the sample's annotation."""
        vocabulary = self.detector.vocabulary
        names = [n for n in item.spec.class_names if vocabulary is None or n in vocabulary]
        detections = self.detector.detect(item.image, names) if names else []
        instances = list(item.sample.annotation.instances) if item.sample.annotation else []
        return match_detections(instances, detections, iou_threshold=self.iou, min_overlap=self.min_overlap,
                                min_score=self.min_score, extra_score=self.extra_score, nms_iou=self.nms_iou,
                                vocabulary=vocabulary)

    def judge(self, item: JudgeInput) -> Verdict:
        """Reasons name each disagreement with its instance and numbers; the policy picks the decision."""
        result = self.agreement(item)
        instances = list(item.sample.annotation.instances) if item.sample.annotation else []
        reasons = [_reason(d, instances) for d in result.defects]
        scores = result.scores()
        if not result.defects:
            return Verdict(judge=self.id, decision=Decision.accept, reasons=reasons, scores=scores)
        confirmed = bool(result.matches) or not result.expected
        if self.policy == "edit" and len(result.defects) <= self.max_edits and confirmed:
            fix = _fix(result.defects)
            return Verdict(judge=self.id, decision=Decision.edit, reasons=reasons, scores=scores, fix=fix)
        if self.policy == "edit" and not confirmed:
            reasons.append(f"none of the {len(result.expected)} annotated objects was confirmed by the detector")
        elif self.policy == "edit":
            reasons.append(f"{len(result.defects)} disagreements (at most {self.max_edits} are repaired by edits)")
        return Verdict(judge=self.id, decision=Decision.reject, reasons=reasons, scores=scores)
