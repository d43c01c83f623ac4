"""`synthloop eval labels`: language labels measured against the exact ground truth of rendered scenes.

Steps:
1. render N hard scenes (procedural layout → compositor, or another renderer that knows its masks such as
   copy_paste → exact annotator) from a spec with several classes, colour attributes, a scene and a style,
   asking for captions, referring expressions and scene graphs;
2. run `add_language_labels` on each (no model: rules and templates only), timing it; with `noise_px` > 0
   every visible mask is first shifted by a seeded offset of up to that many pixels each way, as a stand-in
   for a model annotator's error (the truth stays exact);
3. measure against the truth the renderer knows: its instance map (exact visible masks), the layout's full
   boxes and depth order, and its amodal areas:
   - relations: each emitted spatial relation is checked by a geometric test written here, on the masks
     (left of: the subject's mask centroid lies left of the object's 10th-percentile column and the other way
     round, the centroids differing more along x than y; near: mask-to-mask distance ≤ half the smaller
     mask box's side; on: the subject's mask touches the object's from above with its centroid over it; inside:
     ≥ 98 % of the subject's pixels inside the object's full box; in front of: higher depth, the masks touch,
     and the object is partly hidden); precision per predicate and overall;
   - referring expressions: every sentence is resolved by the independent resolver against referents built
     from the truth (mask boxes, layout attributes and depth); share resolved to the right object, and the
     visible objects left without any unique sentence;
   - captions: every caption is checked (`check_caption`) against the visible counts and attributes of the
     instance map; share of images whose captions all pass;
   - requested (layout) relations: how many the rules confirmed.
Measured, never asserted (targets from the issue: relation precision ≥ 0.95, referring ≥ 0.95, captions ≥ 0.98).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from synthloop.tools.render.base import RenderResult
from synthloop.tools.types import Annotation, Difficulty, Layout, ObjectSpec, Task, TaskSpec

TARGETS = {"relation_precision": 0.95, "referring_accuracy": 0.95, "caption_accuracy": 0.98}
_CONTACT = 3  # adjacent pixel pairs that make two masks touch


def labels_spec(size: int, seed: int) -> TaskSpec:
    """The hard scene spec of the eval: five classes, colour attributes on three, all three language tasks."""
    return TaskSpec(
        objects=[
            ObjectSpec(name="cup", attributes=["red"], min_count=1, max_count=4),
            ObjectSpec(name="plate", min_count=0, max_count=3),
            ObjectSpec(name="fork", attributes=["silver"], min_count=0, max_count=3),
            ObjectSpec(name="apple", attributes=["green"], min_count=0, max_count=3),
            ObjectSpec(name="book", min_count=0, max_count=2),
        ],
        width=size,
        height=size,
        tasks=[Task.detection, Task.captioning, Task.referring_expressions, Task.scene_graph],
        scene="kitchen table",
        style="photo",
        difficulty=Difficulty.hard,
        seed=seed,
    )


@dataclass
class LabelsReport:
    """Counts behind the printed report."""

    n_images: int
    size: int
    seed: int
    noise_px: int = 0
    renderer: str = "compositor"
    relations: dict[str, list[int]] = field(default_factory=dict)  # predicate → [correct, emitted]
    wrong_relations: list[str] = field(default_factory=list)
    requested: list[int] = field(default_factory=lambda: [0, 0])  # [confirmed, requested]
    sentences: list[int] = field(default_factory=lambda: [0, 0])  # [resolved right, emitted]
    wrong_sentences: list[str] = field(default_factory=list)
    objects: list[int] = field(default_factory=lambda: [0, 0])  # [with a sentence, visible]
    caption_images: list[int] = field(default_factory=lambda: [0, 0])  # [all captions pass, images]
    caption_problems: list[str] = field(default_factory=list)
    captions_per_image: float = 0.0
    seconds_per_image: float = 0.0

    @property
    def relation_precision(self) -> float:
        """Correct / emitted spatial relations (NaN when none)."""
        correct = sum(c for c, _ in self.relations.values())
        total = sum(t for _, t in self.relations.values())
        return correct / total if total else float("nan")

    @property
    def referring_accuracy(self) -> float:
        """Sentences the resolver maps to the right object on the truth (NaN when none)."""
        return self.sentences[0] / self.sentences[1] if self.sentences[1] else float("nan")

    @property
    def caption_accuracy(self) -> float:
        """Images whose captions all name only present classes with correct counts and attributes."""
        return self.caption_images[0] / self.caption_images[1] if self.caption_images[1] else float("nan")

    def to_dict(self) -> dict:
        """JSON-ready counts and rates."""
        return {**asdict(self), "relation_precision": self.relation_precision,
                "referring_accuracy": self.referring_accuracy, "caption_accuracy": self.caption_accuracy,
                "targets": TARGETS}


class Truth:
    """What the renderer knows of one image: masks per layout object, their contacts, full boxes and depths."""

    def __init__(self, layout: Layout, render: RenderResult) -> None:
        self.layout = layout
        self.map = render.instance_map
        self.amodal = list(render.amodal_areas)
        n = len(layout.objects)
        labels = self.map.ravel()
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(n + 2))
        width = self.map.shape[1]
        self.pixels: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for k in range(n):
            flat = order[bounds[k + 1] : bounds[k + 2]]
            if flat.size:
                self.pixels[k] = (flat % width, flat // width)  # xs, ys
        self.contacts = self._contacts(n)

    def _contacts(self, n: int) -> Counter[tuple[int, int]]:
        counts: Counter[tuple[int, int]] = Counter()
        for a, b in ((self.map[:, :-1], self.map[:, 1:]), (self.map[:-1, :], self.map[1:, :])):
            touching = (a != b) & (a > 0) & (b > 0)
            codes, numbers = np.unique(a[touching].astype(np.int64) * (n + 2) + b[touching], return_counts=True)
            for code, number in zip(codes.tolist(), numbers.tolist(), strict=True):
                i, j = divmod(code, n + 2)
                counts[(i - 1, j - 1)] += number
                counts[(j - 1, i - 1)] += number
        return counts

    def box(self, k: int) -> tuple[int, int, int, int]:
        """Tight mask box (x0, y0, x1, y1), exclusive ends."""
        xs, ys = self.pixels[k]
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1

    def full_box(self, k: int) -> tuple[float, float, float, float]:
        """The layout box in pixels (the object's full extent)."""
        x0, y0, x1, y1 = self.layout.objects[k].box
        return x0 * self.layout.width, y0 * self.layout.height, x1 * self.layout.width, y1 * self.layout.height

    def centroid(self, k: int) -> tuple[float, float]:
        """Mask centroid (x, y) at pixel centres."""
        xs, ys = self.pixels[k]
        return float(xs.mean()) + 0.5, float(ys.mean()) + 0.5

    def distance(self, a: int, b: int) -> float:
        """Gap between the two masks in pixels (0 when they touch)."""
        import cv2

        if self.contacts[(a, b)]:
            return 0.0
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = self.box(a), self.box(b)
        x0, y0, x1, y1 = min(ax0, bx0), min(ay0, by0), max(ax1, bx1), max(ay1, by1)
        window = self.map[y0:y1, x0:x1]
        not_a = (window != a + 1).astype(np.uint8)
        distances = cv2.distanceTransform(not_a, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        return max(0.0, float(distances[window == b + 1].min()) - 1.0)

    def holds(self, predicate: str, a: int, b: int) -> bool:
        """The eval's own test of "a <predicate> b" on the truth (unknown predicates: False)."""
        if a not in self.pixels or b not in self.pixels:
            return False
        (axs, ays), (bxs, bys) = self.pixels[a], self.pixels[b]
        (acx, acy), (bcx, bcy) = self.centroid(a), self.centroid(b)
        dx, dy = bcx - acx, bcy - acy
        depth_a, depth_b = self.layout.objects[a].depth, self.layout.objects[b].depth
        contact = self.contacts[(a, b)] >= _CONTACT
        if predicate == "left of":
            return acx < np.percentile(bxs, 10) and bcx > np.percentile(axs, 90) and abs(dx) > abs(dy)
        if predicate == "right of":
            return self.holds("left of", b, a)
        if predicate == "above":
            return acy < np.percentile(bys, 10) and bcy > np.percentile(ays, 90) and abs(dy) > abs(dx)
        if predicate == "below":
            return self.holds("above", b, a)
        if predicate == "near":
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = self.box(a), self.box(b)
            side = min((ax1 - ax0) * (ay1 - ay0), (bx1 - bx0) * (by1 - by0)) ** 0.5
            return self.distance(a, b) <= 0.5 * side
        if predicate == "on":
            b_top, b_bottom = int(bys.min()), int(bys.max())
            a_top, a_bottom = int(ays.min()), int(ays.max())
            over = bxs.min() <= acx <= bxs.max() + 1
            return (contact and over and a_top < b_top
                    and b_top - 2 <= a_bottom <= b_top + 0.6 * (b_bottom - b_top + 1))
        if predicate == "under":
            return self.holds("on", b, a)
        if predicate == "inside":
            fx0, fy0, fx1, fy1 = self.full_box(b)
            within = float(((axs >= fx0) & (axs < fx1) & (ays >= fy0) & (ays < fy1)).mean())
            return within >= 0.98 and axs.size <= 0.6 * (fx1 - fx0) * (fy1 - fy0) and depth_a > depth_b
        if predicate == "in front of":
            hidden = len(self.amodal) > b and bxs.size < self.amodal[b]
            return depth_a > depth_b and contact and hidden
        if predicate == "behind":
            return self.holds("in front of", b, a)
        return False


def shifted(annotation: Annotation, noise_px: int, rng: np.random.Generator) -> Annotation:
    """The annotation with every visible mask moved by a random offset of up to `noise_px` pixels each way."""
    from synthloop.tools.masks import decode_rle, encode_rle, mask_bbox

    instances = []
    for inst in annotation.instances:
        if inst.area <= 0 or inst.segmentation is None or noise_px <= 0:
            instances.append(inst)
            continue
        mask = decode_rle(inst.segmentation)
        dx, dy = (int(v) for v in rng.integers(-noise_px, noise_px + 1, size=2))
        moved = np.zeros_like(mask)
        height, width = mask.shape
        moved[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = \
            mask[max(-dy, 0) : height - max(dy, 0), max(-dx, 0) : width - max(dx, 0)]
        area = int(moved.sum())
        instances.append(inst.model_copy(update={"segmentation": encode_rle(moved), "area": area,
                                                  "bbox": mask_bbox(moved) if area else (0.0, 0.0, 0.0, 0.0)}))
    return annotation.model_copy(update={"instances": instances})


def run_labels_eval(n: int = 200, size: int = 512, seed: int = 0, noise_px: int = 0,
                    renderer: str = "compositor") -> LabelsReport:
    """Render, label and measure `n` hard scenes (see the module docstring); `renderer` names a registered
    renderer with exact masks (ValueError otherwise)."""
    from synthloop.tools.annotate.exact import ExactAnnotator
    from synthloop.tools.annotate.language import Referent, Resolver, add_language_labels
    from synthloop.tools.annotate.language.caption_check import caption_facts, check_caption
    from synthloop.tools.layout.procedural import ProceduralLayoutSampler
    from synthloop.tools.render.registry import RENDERERS
    from synthloop.tools.seeding import derive_seed

    spec = labels_spec(size, seed)
    if not RENDERERS.capabilities(renderer).exact_labels:  # an unknown name raises BackendError, a ValueError
        raise ValueError(f"renderer '{renderer}' does not know its masks: the eval needs exact truth "
                         "(compositor, copy_paste)")
    painter = RENDERERS.build(renderer)
    sampler, annotator = ProceduralLayoutSampler(), ExactAnnotator()
    report = LabelsReport(n_images=n, size=size, seed=seed, noise_px=noise_px, renderer=renderer)
    seconds, captions = 0.0, 0
    for index in range(n):
        sample_seed = derive_seed(seed, index, 0)
        layout = sampler.sample(spec, sample_seed)
        render = painter.render(layout, spec, sample_seed)
        annotation = annotator.annotate(layout, render, spec)
        if noise_px > 0:
            annotation = shifted(annotation, noise_px, np.random.default_rng([seed, index, 0x0015E]))
        start = time.perf_counter()
        labelled = add_language_labels(layout, annotation, spec, seed=sample_seed)
        seconds += time.perf_counter() - start
        truth = Truth(layout, render)
        layout_of = [inst.layout_index for inst in annotation.instances]

        for r in labelled.relations:
            counts = report.relations.setdefault(r.predicate, [0, 0])
            counts[1] += 1
            if truth.holds(r.predicate, layout_of[r.subject], layout_of[r.object]):
                counts[0] += 1
            elif len(report.wrong_relations) < 10:
                report.wrong_relations.append(f"image {index}: {r.subject} {r.predicate} {r.object}")
        instance_of = {k: i for i, k in enumerate(layout_of)}
        emitted = {(r.subject, r.predicate, r.object) for r in labelled.relations}
        report.requested[0] += sum((instance_of.get(r.subject), r.predicate, instance_of.get(r.object)) in emitted
                                   for r in layout.relations)
        report.requested[1] += len(layout.relations)

        visible = sorted(truth.pixels)
        referents = [Referent(category=layout.objects[k].category, attributes=tuple(layout.objects[k].attributes),
                              box=tuple(float(v) for v in truth.box(k)), depth=layout.objects[k].depth)
                     for k in visible]
        resolver = Resolver(referents, layout.width, layout.height)
        position = {k: p for p, k in enumerate(visible)}
        report.objects[1] += len(visible)
        report.objects[0] += len(labelled.referring)
        for ref in labelled.referring:
            for sentence in ref.sentences:
                report.sentences[1] += 1
                if resolver.resolve(sentence) == position.get(layout_of[ref.instance]):
                    report.sentences[0] += 1
                elif len(report.wrong_sentences) < 10:
                    report.wrong_sentences.append(f"image {index}: '{sentence}' (instance {ref.instance})")

        facts = caption_facts(((layout.objects[k].category, layout.objects[k].attributes) for k in visible),
                              class_names=spec.class_names,
                              extra_attributes=[a for o in spec.objects for a in o.attributes])
        facts = facts.with_allowed(spec.scene, spec.style)
        problems = [f"image {index}: '{c}': {p}" for c in labelled.captions for p in check_caption(c, facts)]
        captions += len(labelled.captions)
        report.caption_images[1] += 1
        report.caption_images[0] += not problems
        report.caption_problems.extend(problems[: max(0, 10 - len(report.caption_problems))])
    report.seconds_per_image = seconds / n if n else 0.0
    report.captions_per_image = captions / n if n else 0.0
    return report


def format_labels_report(report: LabelsReport) -> str:
    """The printed report: rates against their targets, per-predicate precision, examples of failures."""
    def pct(x: float) -> str:
        return "n/a" if x != x else f"{x:.3f}"

    lines = [
        f"language labels on {report.n_images} hard {report.size}² {report.renderer} scenes (seed {report.seed}"
        + (f", masks shifted by up to {report.noise_px} px" if report.noise_px else "") + "), "
        f"{report.seconds_per_image * 1000:.1f} ms per image for the labels",
        f"  spatial relation precision  {pct(report.relation_precision)}  (target ≥ {TARGETS['relation_precision']})"
        f"  {sum(t for _, t in report.relations.values())} relations",
    ]
    for predicate, (correct, total) in sorted(report.relations.items(), key=lambda kv: -kv[1][1]):
        lines.append(f"    {predicate:<12} {correct:>6} / {total:<6} {pct(correct / total if total else float('nan'))}")
    lines += [
        f"  layout relations kept (confirmed on the visible annotation): {report.requested[0]} of "
        f"{report.requested[1]}",
        f"  referring sentences resolved right  {pct(report.referring_accuracy)}  "
        f"(target ≥ {TARGETS['referring_accuracy']})  {report.sentences[1]} sentences",
        f"    visible objects with a unique sentence: {report.objects[0]} of {report.objects[1]} "
        f"({report.objects[1] - report.objects[0]} without)",
        f"  images whose captions are all faithful  {pct(report.caption_accuracy)}  "
        f"(target ≥ {TARGETS['caption_accuracy']})  {report.captions_per_image:.1f} captions per image",
    ]
    for title, examples in (("wrong relations", report.wrong_relations),
                            ("misresolved sentences", report.wrong_sentences),
                            ("caption problems", report.caption_problems)):
        if examples:
            lines.append(f"  {title} (first {len(examples)}):")
            lines.extend(f"    {e}" for e in examples)
    return "\n".join(lines)
