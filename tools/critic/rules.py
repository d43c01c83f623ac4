"""Rule judges: checks that need no model, only the annotation, the spec and the pixels.

Each judge has a stable id (recorded with its verdicts) and explains every rejection in a reason that names
the instance and the number that failed, e.g. "instance 2 (fork): 83% hidden (limit 75%)".
"""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np

from synthloop.tools.backend import Capabilities
from synthloop.tools.critic.base import BaseJudge, JudgeInput
from synthloop.tools.geometry import iou, xywh_to_xyxy
from synthloop.tools.masks import rle_area, rle_bbox
from synthloop.tools.types import Decision, Instance, Sample, TaskSpec, Verdict


def _verdict(judge_id: str, reasons: list[str], scores: dict[str, float]) -> Verdict:
    decision = Decision.reject if reasons else Decision.accept
    return Verdict(judge=judge_id, decision=decision, reasons=reasons, scores=scores)


def _label(index: int, inst: Instance) -> str:
    return f"instance {index} ({inst.category})"


def _instances(item: JudgeInput) -> list[Instance]:
    annotation = item.sample.annotation
    return list(annotation.instances) if annotation is not None else []


class GeometryJudge(BaseJudge):
    """Rejects degenerate boxes and boxes that leave the image."""

    id = "rules.geometry"

    def __init__(self, min_side_px: float = 4.0, tolerance_px: float = 0.5) -> None:
        self.min_side_px = min_side_px
        self.tolerance_px = tolerance_px

    def judge(self, item: JudgeInput) -> Verdict:
        """Check every instance box against the image bounds and the minimum side."""
        width, height = item.sample.width, item.sample.height
        reasons: list[str] = []
        smallest = float("inf")
        for i, inst in enumerate(_instances(item)):
            x, y, w, h = inst.bbox
            smallest = min(smallest, w, h)
            if w < self.min_side_px or h < self.min_side_px:
                reasons.append(f"{_label(i, inst)}: box {w:.0f}×{h:.0f} px is degenerate "
                               f"(min side {self.min_side_px:g} px)")
            tol = self.tolerance_px
            if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
                reasons.append(f"{_label(i, inst)}: box ({x:.0f}, {y:.0f}, {w:.0f}, {h:.0f}) leaves the "
                               f"{width}×{height} image")
        return _verdict(self.id, reasons, {"min_box_side_px": 0.0 if smallest == float("inf") else smallest})


class MaskBoxJudge(BaseJudge):
    """Rejects instances whose mask disagrees with their box or their stated area."""

    id = "rules.mask_box"

    def __init__(self, min_iou: float = 0.9, area_tolerance: float = 0.01) -> None:
        self.min_iou = min_iou
        self.area_tolerance = area_tolerance

    def judge(self, item: JudgeInput) -> Verdict:
        """Compare each RLE mask's tight box and area with the instance's box and area."""
        reasons: list[str] = []
        worst = 1.0
        for i, inst in enumerate(_instances(item)):
            if inst.segmentation is None or inst.area == 0:
                continue
            agreement = iou(xywh_to_xyxy(rle_bbox(inst.segmentation)), xywh_to_xyxy(inst.bbox))
            worst = min(worst, agreement)
            if agreement < self.min_iou:
                reasons.append(f"{_label(i, inst)}: mask and box disagree (IoU {agreement:.2f} < {self.min_iou})")
            mask_area = rle_area(inst.segmentation)
            if abs(mask_area - inst.area) > max(1.0, self.area_tolerance * mask_area):
                reasons.append(f"{_label(i, inst)}: area {inst.area} differs from mask area {mask_area}")
        return _verdict(self.id, reasons, {"min_mask_box_iou": worst})


class OcclusionJudge(BaseJudge):
    """Rejects images with an object hidden (by occlusion or the image border) beyond a threshold."""

    id = "rules.occlusion"

    def __init__(self, min_visible_fraction: float = 0.25) -> None:
        self.min_visible_fraction = min_visible_fraction

    def judge(self, item: JudgeInput) -> Verdict:
        """Check each instance's visible fraction against the limit."""
        reasons: list[str] = []
        least = 1.0
        for i, inst in enumerate(_instances(item)):
            if inst.visible_fraction is None:
                continue
            least = min(least, inst.visible_fraction)
            if inst.visible_fraction < self.min_visible_fraction:
                hidden = 1.0 - inst.visible_fraction
                reasons.append(f"{_label(i, inst)}: {hidden:.0%} hidden "
                               f"(limit {1.0 - self.min_visible_fraction:.0%})")
        return _verdict(self.id, reasons, {"min_visible_fraction": least})


class ContentJudge(BaseJudge):
    """Rejects empty images (no visible object), blank images, and class counts outside the spec."""

    id = "rules.content"

    def __init__(self, min_pixel_std: float = 2.0) -> None:
        self.min_pixel_std = min_pixel_std

    def judge(self, item: JudgeInput) -> Verdict:
        """Check that the image has content and the visible objects match the spec's counts."""
        reasons: list[str] = []
        image = item.image
        # A strided view is enough to tell a flat image from a real one, at 1/16 of the cost.
        std = float(image[::4, ::4].astype(np.float32).std())
        if not np.isfinite(std) or std < self.min_pixel_std:
            reasons.append(f"image is blank (pixel std {std:.2f} < {self.min_pixel_std})")
        visible = [inst for inst in _instances(item) if inst.area > 0]
        if not visible:
            reasons.append("image has no visible annotated object")
        counts = Counter(inst.category for inst in visible)
        for obj in item.spec.objects:
            found = counts.get(obj.name, 0)
            if not obj.min_count <= found <= obj.max_count:
                reasons.append(f"{found} visible {obj.name} (spec asks {obj.min_count}–{obj.max_count})")
        unknown = sorted(set(counts) - set(item.spec.class_names))
        if unknown:
            reasons.append(f"classes not in the spec: {', '.join(unknown)}")
        return _verdict(self.id, reasons, {"pixel_std": std, "n_visible": float(len(visible))})


class TruncationJudge(BaseJudge):
    """Rejects objects cut off by the image border beyond a limit.

    With a known visible fraction (exact annotator: visible / full area) a border-touching instance is
    rejected when more than `max_cut` of it is missing. Without it (a user's COCO file) the cut share is
    unknown; the judge then rejects only border slivers: a box whose depth into the image is below
    `sliver_ratio` × its length along the border it touches.
    """

    id = "rules.truncation"

    def __init__(self, max_cut: float = 0.5, sliver_ratio: float = 0.2, border_px: float = 1.0) -> None:
        self.max_cut = max_cut
        self.sliver_ratio = sliver_ratio
        self.border_px = border_px

    def judge(self, item: JudgeInput) -> Verdict:
        """Check every visible instance whose box touches a border."""
        width, height = item.sample.width, item.sample.height
        reasons: list[str] = []
        touching = 0
        for i, inst in enumerate(_instances(item)):
            x, y, w, h = inst.bbox
            if inst.area == 0 or w <= 0 or h <= 0:
                continue
            sides = {"left": x <= self.border_px, "top": y <= self.border_px,
                     "right": x + w >= width - self.border_px, "bottom": y + h >= height - self.border_px}
            cut = [side for side, hit in sides.items() if hit]
            if not cut:
                continue
            touching += 1
            if inst.visible_fraction is not None:
                if 1.0 - inst.visible_fraction > self.max_cut:
                    reasons.append(f"{_label(i, inst)}: touches the {'/'.join(cut)} border with "
                                   f"{1.0 - inst.visible_fraction:.0%} cut off (limit {self.max_cut:.0%})")
                continue
            for side in cut:
                depth, length = (w, h) if side in ("left", "right") else (h, w)
                if depth < self.sliver_ratio * length:
                    reasons.append(f"{_label(i, inst)}: a {depth:.0f}-px sliver along the {side} border "
                                   f"({depth / length:.2f} of its {length:.0f}-px length < {self.sliver_ratio:g})")
                    break
        return _verdict(self.id, reasons, {"n_border_touching": float(touching)})


class TinyObjectJudge(BaseJudge):
    """Rejects visible objects whose area is below a fraction of the image area."""

    id = "rules.tiny"

    def __init__(self, min_area_fraction: float = 0.0004) -> None:
        self.min_area_fraction = min_area_fraction

    def judge(self, item: JudgeInput) -> Verdict:
        """Compare each visible instance's area with the limit."""
        image_area = float(item.sample.width * item.sample.height)
        limit = self.min_area_fraction * image_area
        reasons: list[str] = []
        smallest = 1.0
        for i, inst in enumerate(_instances(item)):
            if inst.area == 0:
                continue
            smallest = min(smallest, inst.area / image_area)
            if inst.area < limit:
                reasons.append(f"{_label(i, inst)}: {inst.area} px is tiny ({inst.area / image_area:.3%} of the "
                               f"image < {self.min_area_fraction:.3%}, {limit:.0f} px)")
        return _verdict(self.id, reasons, {"min_area_fraction": smallest})


def expected_class_shares(spec: TaskSpec) -> dict[str, float]:
    """Expected share of each class among instances: mean of its count range (counts are drawn uniformly)."""
    means = {o.name: (o.min_count + o.max_count) / 2.0 for o in spec.objects}
    total = sum(means.values()) or 1.0
    return {name: mean / total for name, mean in means.items()}


class ClassBalanceJudge(BaseJudge):
    """Stateful and soft: flags samples that push the kept class histogram further from the spec's shares.

    The running histogram counts instances of the samples reported through `observe` (call it for every
    kept sample). Drift is the total-variation distance between the running shares and
    `expected_class_shares(spec)`. Nothing is flagged before `min_instances` instances are kept. Above that,
    a sample that would increase the drift is answered with `edit` (a fix naming the over-represented
    class) when the drift with it exceeds `max_drift`, and with `reject` beyond `2 × max_drift`; everything
    else is accepted. The default 0.15 is far above what the procedural sampler's own randomness produces
    (≈ 0.02–0.05 after a few hundred instances), so only a real skew trips it.
    """

    id = "rules.class_balance"
    capabilities = Capabilities(stateful=True)  # judged in index order, never in parallel

    def __init__(self, max_drift: float = 0.15, min_instances: int = 100) -> None:
        self.max_drift = max_drift
        self.min_instances = min_instances
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def observe(self, sample: Sample) -> None:
        """Add a kept sample's visible instances to the running histogram."""
        with self._lock:
            self.counts.update(inst.category for inst in (sample.annotation.instances if sample.annotation else [])
                               if inst.area > 0)

    @staticmethod
    def _drift(counts: Counter[str], expected: dict[str, float]) -> float:
        total = sum(counts.values())
        if total == 0:
            return 0.0
        names = sorted(set(expected) | set(counts))  # sorted: a set's order (and so the float sum) varies by process
        return 0.5 * sum(abs(counts.get(n, 0) / total - expected.get(n, 0.0)) for n in names)

    def judge(self, item: JudgeInput) -> Verdict:
        """Compare the drift with and without this sample."""
        expected = expected_class_shares(item.spec)
        with self._lock:
            before = Counter(self.counts)
        after = before + Counter(inst.category for inst in _instances(item) if inst.area > 0)
        drift_before, drift_after = self._drift(before, expected), self._drift(after, expected)
        scores = {"class_drift": drift_after}
        if sum(after.values()) < self.min_instances or drift_after <= max(drift_before, self.max_drift):
            return Verdict(judge=self.id, decision=Decision.accept, scores=scores)
        total = sum(after.values())
        over = max(sorted(expected.keys() | after.keys()),
                   key=lambda n: after.get(n, 0) / total - expected.get(n, 0.0))
        share, wanted = after.get(over, 0) / total, expected.get(over, 0.0)
        reason = (f"class balance drifts to {drift_after:.2f} (limit {self.max_drift:g}): {over} is {share:.0%} of "
                  f"kept instances, spec expects {wanted:.0%}")
        decision = Decision.reject if drift_after > 2 * self.max_drift else Decision.edit
        return Verdict(judge=self.id, decision=decision, reasons=[reason], scores=scores,
                       fix=f"re-layout with fewer {over}" if decision == Decision.edit else None)
