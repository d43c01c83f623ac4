"""Recognisability judge (`detector.recognisability`): does a detector trained on real photographs find each
annotated object as its intended class? DetDiffusion's perception-aware attribute (the basis of easy / hard),
used here as a critic with signal on every renderer, and on users' own datasets (`synthloop critique
--detector`).

Evidence (`measure`), one detector pass per image asking for every class of the spec that the detector knows
(a closed-vocabulary detector such as YOLOv3-tiny through the COCO names of `tools/class_names.py`, an
open-vocabulary one by the names themselves); with `zoom`, also passes over 2 × 2 overlapping tiles and over a
window around each judged box, enlarged to the detector's input (`tools/critic/views.py`: a 416-input detector
loses the small objects of a 512² image; ~8 passes per image instead of 1). Each detection carries the class the
detector finds most likely:
- recognisability of an instance = the highest score of a detection of its class whose box overlaps the
  instance's box with IoU ≥ `overlap_iou` (0 when there is none): the detector's confidence for the intended
  class inside the box;
- its rival = the highest such score among the other classes, and the rival margin = rival − recognisability;
- unannotated detections: detections of the spec's classes whose IoU with every annotated box is below
  `free_iou` and that do not lie mostly (≥ half their area) inside an annotated box: a detector often finds
  a part of an object (a head, a wheel) as well as the whole; measured on copy_paste renders this cut clean
  images with a confident "unannotated" detection from 14% to 1% at the same catch of missing boxes.
Instances of classes the detector does not know, and instances with no visible pixels, are not judged.

Checks (thresholds calibrated on the defect benchmark, `synthloop eval critic-defects --renderer copy_paste
--calibrate`, per view mode; the defaults are that calibration's, see `CALIBRATION`):
- relabelled: an instance's rival margin ≥ `relabel_margin` ("the detector sees bird there, not car");
- missing: an unannotated detection with score ≥ `missing_score` (an object nobody labelled);
- unrecognisable: an instance's recognisability < `min_recognisability` (0 = off: a weak detector misses real
  objects too, so this is for asking for easy samples, not a default rejection).
`policy="reject"` (default) rejects on any check; `"edit"` asks for a re-render (the labels of an exact
renderer are right by construction, so a disagreement means the pixels do not show them recognisably).
With a `support` (an audit passes its label consistency index, `tools/critic/consistency.py`), the dataset's own
labelled look-alikes overrule the detector where they speak: a relabel flag is dropped when at least half of the
box's look-alikes in other images carry its label (the detector errs: a ram it takes for a bird), an unannotated
detection when fewer than half of its look-alikes carry the detected class (a tennis ball it takes for an orange).

Scores: `recognisability` (mean over judged instances; absent when none), `min_recognisability`,
`max_rival_margin`, `max_unannotated_score`, `n_judged`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from synthloop.tools.backend import BackendBlock, Capabilities
from synthloop.tools.class_names import coco_class_for
from synthloop.tools.critic.base import BaseJudge, JudgeInput
from synthloop.tools.critic.detector import Detection, Detector, DetectorError
from synthloop.tools.critic.views import detect_in, object_window, tiles
from synthloop.tools.geometry import iou, xywh_to_xyxy
from synthloop.tools.types import Decision, Instance, Verdict

YOLO_SUBDIR = Path("share") / "synthloop" / "detectors" / "yolov3-tiny"
YOLO_ENV = "SYNTHLOOP_YOLO_DIR"
INSIDE_SHARE = 0.5  # a detection mostly inside an annotated box belongs to it (a part found as well as the whole)
# Thresholds per view mode from `synthloop eval critic-defects --renderer copy_paste --detector default --calibrate
# --n 150 --seed 1 --max-false-reject 0.03` (150 clean copy_paste images of 8 COCO classes at 512², one relabelled /
# one missing box injected into each), rounded up:
# - "image" (one pass over the whole image, --no-zoom): on seed 1 relabels caught 18.7%, missing boxes 15.3%, clean
#   false rejects 2.7%; on seed 2: 20.0%, 12.7%, 4.7%;
# - "zoom" (whole image, 2 × 2 tiles, a window per box; distractors without siblings of the classes): on seed 1
#   55.3%, 35.3%, 2.7%; on seed 2: 47.3%, 31.3%, 3.3%.
# YOLOv3-tiny's low recall on these composites is the ceiling: a box it does not recognise cannot be judged.
CALIBRATION = {"image": {"relabel_margin": 0.29, "missing_score": 0.45},
               "zoom": {"relabel_margin": 0.49, "missing_score": 0.56}}
SUPPORT_SHARE = 0.5  # look-alikes carrying a label from this share on vouch for it
# (image key, RGB pixels, xywh box, label) → share of the box's look-alikes in other images that carry the label,
# or None where the dataset gives no basis.
LabelSupport = Callable[[str, np.ndarray, Sequence[float], str], float | None]


def default_detector_dir() -> Path | None:
    """Where scripts/setup.sh puts YOLOv3-tiny (COCO), `<venv>/share/synthloop/detectors/yolov3-tiny`, unless the
    environment variable SYNTHLOOP_YOLO_DIR names another Darknet model folder; None when it is set empty (no
    default detector, as in the tests) or the folder is not there."""
    if YOLO_ENV in os.environ:
        chosen = Path(os.environ[YOLO_ENV]).expanduser() if os.environ[YOLO_ENV] else None
    else:
        chosen = Path(sys.prefix) / YOLO_SUBDIR
    return chosen if chosen is not None and chosen.is_dir() else None


def default_detector_block() -> BackendBlock | None:
    """The YOLOv3-tiny detector block (low score threshold: the judge weighs the scores itself); None when there is
    no default detector."""
    folder = default_detector_dir()
    if folder is None:
        return None
    return BackendBlock.model_validate({"backend": "yolov3_darknet", "model": str(folder), "score_threshold": 0.02})


def target_names(class_names: Sequence[str], vocabulary: frozenset[str] | None) -> dict[str, str]:
    """Spec class → the detector's name for it, for the classes the detector knows (all of them for an
    open-vocabulary detector); a closed vocabulary is matched exactly, else through the COCO names."""
    if vocabulary is None:
        return {name: name for name in class_names}
    by_coco = {coco_class_for(v): v for v in sorted(vocabulary) if coco_class_for(v) is not None}
    targets = {}
    for name in class_names:
        if name in vocabulary:
            targets[name] = name
        elif coco_class_for(name) in by_coco:
            targets[name] = by_coco[coco_class_for(name)]
    return targets


@dataclass(frozen=True)
class InstanceEvidence:
    """What the detector says about one annotated instance."""

    recognisability: float
    rival: float
    rival_class: str | None

    @property
    def rival_margin(self) -> float:
        """How far the best other class beats the intended one (negative: the intended class leads)."""
        return self.rival - self.recognisability


@dataclass(frozen=True)
class Evidence:
    """Per instance (None: not judged), and the detections no annotated box accounts for."""

    instances: list[InstanceEvidence | None]
    unannotated: list[Detection]

    def judged(self) -> list[InstanceEvidence]:
        """The evidence of the judged instances."""
        return [e for e in self.instances if e is not None]


def _inside(inner: tuple[float, float, float, float], outer: tuple[float, float, float, float]) -> float:
    """Share of the `inner` xywh box's area that lies inside the `outer` one."""
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    width = max(0.0, min(x + w, ox + ow) - max(x, ox))
    height = max(0.0, min(y + h, oy + oh) - max(y, oy))
    return width * height / (w * h) if w > 0 and h > 0 else 0.0


def measure(detector: Detector, image: np.ndarray, instances: Sequence[Instance], class_names: Sequence[str], *,
            overlap_iou: float = 0.3, free_iou: float = 0.3, zoom: bool = False) -> Evidence:
    """A detector pass over the image for the spec's classes (with `zoom`, also over 2 × 2 tiles and over a window
    around each judged instance, `tools/critic/views.py`), matched against the instances (see the module)."""
    targets = target_names(list(dict.fromkeys([*class_names, *(i.category for i in instances)])),
                           detector.vocabulary)
    spec_targets = sorted({targets[n] for n in class_names if n in targets})
    asked = sorted({*spec_targets, *(targets[i.category] for i in instances if i.category in targets)})
    detections = list(detector.detect(image, asked)) if asked else []
    height, width = image.shape[:2]
    if zoom and asked:
        for window in tiles(width, height):
            detections += detect_in(detector, image, window, asked, drop_cut=True)
    boxes = [xywh_to_xyxy(inst.bbox) for inst in instances]
    det_boxes = [xywh_to_xyxy(d.bbox) for d in detections]
    overlap = [[iou(b, d) for d in det_boxes] for b in boxes]
    evidence: list[InstanceEvidence | None] = []
    for index, inst in enumerate(instances):
        target = targets.get(inst.category)
        if target is None or inst.area <= 0:
            evidence.append(None)
            continue
        candidates = list(zip(detections, overlap[index], strict=True))
        window = object_window(inst.bbox, width, height) if zoom else None
        if window is not None:
            candidates += [(d, iou(boxes[index], xywh_to_xyxy(d.bbox)))
                           for d in detect_in(detector, image, window, asked, drop_cut=False)]
        own, rival, rival_class = 0.0, 0.0, None
        for det, value in candidates:
            if value < overlap_iou:
                continue
            if det.category == target:
                own = max(own, det.score)
            elif det.score > rival:
                rival, rival_class = det.score, det.category
        evidence.append(InstanceEvidence(own, rival, rival_class))
    free = [d for j, d in enumerate(detections) if d.category in spec_targets
            and all(overlap[i][j] < free_iou for i in range(len(instances)))
            and all(_inside(d.bbox, inst.bbox) < INSIDE_SHARE for inst in instances)]
    return Evidence(instances=evidence, unannotated=sorted(free, key=lambda d: -d.score))


class RecognisabilityOptions(BaseModel):
    """Options of the recognisability judge."""

    model_config = ConfigDict(extra="forbid")

    detector: BackendBlock | None = Field(default=None, description="Detector block, e.g. {backend: owlv2, model: "
                                                                    "DIR}; default: YOLOv3-tiny (COCO) from "
                                                                    "scripts/setup.sh.")
    relabel_margin: float | None = Field(default=None, ge=-1.0, le=1.0,
                                         description="Reject when another class's score beats the intended class's "
                                                     "by this much inside a box (default: the calibration's for "
                                                     "the view mode).")
    missing_score: float | None = Field(default=None, ge=0.0, le=1.0,
                                        description="Reject when a detection this confident lies on no annotated "
                                                    "box (default: the calibration's for the view mode).")
    min_recognisability: float = Field(default=0.0, ge=0.0, le=1.0,
                                       description="Reject when an instance's own-class score is below this "
                                                   "(0 = off).")
    overlap_iou: float = Field(default=0.3, gt=0.0, le=1.0, description="A detection speaks for a box from this "
                                                                        "IoU on.")
    free_iou: float = Field(default=0.3, gt=0.0, le=1.0, description="A detection below this IoU with every box is "
                                                                     "unannotated.")
    zoom: bool = Field(default=False, description="Also detect on 2 × 2 tiles and on a window around each box, "
                                                  "enlarged to the detector's input (small objects; ~8× the cost).")
    policy: Literal["reject", "edit"] = Field(default="reject", description="reject, or edit (ask for a "
                                                                            "re-render).")
    classes: list[str] | None = Field(default=None, description="Classes to look for (default: the spec's; an "
                                                                "audit passes the dataset's categories).")


class RecognisabilityJudge(BaseJudge):
    """A detector's confidence for the intended class inside each box; relabelled and missing boxes flagged."""

    id = "detector.recognisability"
    Options = RecognisabilityOptions
    capabilities = Capabilities(device="auto")
    requires = ("cv2",)

    def __init__(self, detector: Detector | BackendBlock | dict[str, Any] | str | None = None, *,
                 relabel_margin: float | None = None, missing_score: float | None = None,
                 min_recognisability: float = 0.0,
                 overlap_iou: float = 0.3, free_iou: float = 0.3, zoom: bool = False,
                 policy: Literal["reject", "edit"] = "reject", classes: Sequence[str] | None = None,
                 support: LabelSupport | None = None) -> None:
        if policy not in ("reject", "edit"):
            raise DetectorError(f"unknown policy '{policy}' (reject | edit)")
        if not (0.0 < overlap_iou <= 1.0 and 0.0 < free_iou <= 1.0):
            raise DetectorError(f"overlap_iou ({overlap_iou}) and free_iou ({free_iou}) must be in (0, 1]")
        self.detector = detector if isinstance(detector, Detector) else _build(detector)
        calibrated = CALIBRATION["zoom" if zoom else "image"]
        self.relabel_margin = calibrated["relabel_margin"] if relabel_margin is None else relabel_margin
        self.missing_score = calibrated["missing_score"] if missing_score is None else missing_score
        self.min_recognisability = min_recognisability
        self.overlap_iou, self.free_iou = overlap_iou, free_iou
        self.zoom = zoom
        self.policy = policy
        self.classes = list(classes) if classes is not None else None
        self.support = support

    def measure(self, item: JudgeInput) -> Evidence:
        """The detector's evidence for this sample."""
        instances = list(item.sample.annotation.instances) if item.sample.annotation else []
        classes = self.classes if self.classes is not None else item.spec.class_names
        return measure(self.detector, item.image, instances, classes, overlap_iou=self.overlap_iou,
                       free_iou=self.free_iou, zoom=self.zoom)

    def judge(self, item: JudgeInput) -> Verdict:
        """Reasons name each relabelled, missing or unrecognisable object with the detector's scores."""
        instances = list(item.sample.annotation.instances) if item.sample.annotation else []
        evidence = self.measure(item)
        reasons = []
        overruled = 0
        for index, (inst, ev) in enumerate(zip(instances, evidence.instances, strict=True)):
            if ev is None:
                continue
            if ev.rival_margin >= self.relabel_margin and ev.rival_class is not None:
                if self._supported(item, inst.bbox, inst.category, at_least=True):
                    overruled += 1  # the box's look-alikes in other images carry its label: the detector errs
                    continue
                reasons.append(f"instance {index} ({inst.category}): the detector sees {ev.rival_class} there "
                               f"({ev.rival:.2f}), {inst.category} only {ev.recognisability:.2f}")
            elif ev.recognisability < self.min_recognisability:
                reasons.append(f"instance {index} ({inst.category}): recognisability {ev.recognisability:.2f} "
                               f"< {self.min_recognisability:.2f}")
        for det in evidence.unannotated:
            if det.score >= self.missing_score:
                if self._supported(item, det.bbox, det.category, at_least=False):
                    overruled += 1  # what it found looks like no labelled object of that class
                    continue
                x, y, w, h = det.bbox
                reasons.append(f"unannotated {det.category} detected at ({x:.0f}, {y:.0f}, {w:.0f}, {h:.0f}), "
                               f"score {det.score:.2f}")
        scores = evidence_scores(evidence)
        if self.support is not None:
            scores["overruled_by_look_alikes"] = float(overruled)
        if not reasons:
            return Verdict(judge=self.id, decision=Decision.accept, reasons=[], scores=scores)
        if self.policy == "edit":
            return Verdict(judge=self.id, decision=Decision.edit, reasons=reasons, scores=scores,
                           fix="re-render: the detector does not see the annotated objects as labelled")
        return Verdict(judge=self.id, decision=Decision.reject, reasons=reasons, scores=scores)

    def _supported(self, item: JudgeInput, bbox: Sequence[float], label: str, *, at_least: bool) -> bool:
        """With a label support (a dataset's look-alikes): True when it speaks and its share of `label` is at least
        SUPPORT_SHARE (`at_least`) or below it (not `at_least`)."""
        if self.support is None:
            return False
        share = self.support(item.sample.image_path, np.asarray(item.image), bbox, label)
        if share is None:
            return False
        return share >= SUPPORT_SHARE if at_least else share < SUPPORT_SHARE


def evidence_scores(evidence: Evidence) -> dict[str, float]:
    """The verdict's scores (see the module docstring); the calibration reads the same numbers."""
    judged = evidence.judged()
    scores = {"n_judged": float(len(judged)),
              "max_rival_margin": round(max((e.rival_margin for e in judged), default=-1.0), 6),
              "max_unannotated_score": round(max((d.score for d in evidence.unannotated), default=0.0), 6)}
    if judged:
        values = [e.recognisability for e in judged]
        scores |= {"recognisability": round(float(np.mean(values)), 6), "min_recognisability": round(min(values), 6)}
    return scores


def _build(block: BackendBlock | dict[str, Any] | str | None) -> Detector:
    from synthloop.tools.critic.detectors.registry import build_detector

    chosen = default_detector_block() if block is None else block
    if chosen is None:
        raise DetectorError(f"no default detector: YOLOv3-tiny is not in {Path(sys.prefix) / YOLO_SUBDIR} (run `bash "
                            f"scripts/setup.sh`, or set {YOLO_ENV}), and the judge was given no detector block "
                            "({backend: NAME, model: DIR})")
    return build_detector(chosen)
