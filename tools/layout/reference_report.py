"""How closely synthetic layouts follow the reference data: per class distances, before and after anchoring.

"Before" is the procedural sampler, "after" the reference sampler, both on the same spec and seeds. Per class
of the spec that the reference has:
- Wasserstein-1 distance between the reference's boxes and the layouts' boxes on size (sqrt of box area over
  image area), log aspect (ln of width / height in pixels), centre x and centre y (fractions of the image);
- total variation distance between the distributions of that class's count per image.
Across those classes: total variation of the class frequencies (share of instances) and of objects per image.
Reference statistics come from the reference images holding any of those classes (the images the sampler
draws from). Spec classes the reference lacks are listed, not scored.

Files (`write_layout_report`): DIR/layout_prior.json (the numbers) and DIR/card_layout_prior.png (per class, box
outlines of the reference, procedural and anchored layouts side by side, with the distances), drawn with Pillow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from synthloop.tools.io import atomic_write_json, atomic_write_png
from synthloop.tools.layout.base import LayoutSampler
from synthloop.tools.layout.procedural import ProceduralLayoutSampler
from synthloop.tools.layout.reference import ReferenceLayoutSampler
from synthloop.tools.reference import LayoutPriors
from synthloop.tools.types import Layout, TaskSpec

BOX_METRICS = ("size", "log_aspect", "centre_x", "centre_y")
REPORT_FILE, PLOT_FILE = "layout_prior.json", "card_layout_prior.png"


@dataclass(frozen=True)
class BoxStatistics:
    """Per class an (n × 4) array of (size, log aspect, centre x, centre y); counts: (images × classes)."""

    classes: tuple[str, ...]
    boxes: dict[str, np.ndarray]
    counts: np.ndarray


def layout_statistics(layouts: Sequence[Layout], classes: Sequence[str]) -> BoxStatistics:
    """Statistics of generated layouts for `classes` (other classes are ignored)."""
    index = {name: k for k, name in enumerate(classes)}
    counts = np.zeros((len(layouts), len(classes)), dtype=np.int64)
    rows: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in classes}
    for i, layout in enumerate(layouts):
        for obj in layout.objects:
            if obj.category not in index:
                continue
            counts[i, index[obj.category]] += 1
            x0, y0, x1, y1 = obj.box
            w, h = (x1 - x0) * layout.width, (y1 - y0) * layout.height
            rows[obj.category].append((float(np.sqrt(w * h / (layout.width * layout.height))), float(np.log(w / h)),
                                       (x0 + x1) / 2, (y0 + y1) / 2))
    return BoxStatistics(tuple(classes), {n: np.asarray(r, dtype=np.float64).reshape(-1, 4) for n, r in rows.items()},
                         counts)


def reference_statistics(priors: LayoutPriors, class_map: dict[str, str]) -> BoxStatistics:
    """The reference's statistics under the spec's class names (`class_map`: spec class → reference class)."""
    classes = tuple(class_map)
    columns = [priors.classes.index(ref) for ref in class_map.values()]
    counts = priors.counts[:, columns]
    counts = counts[counts.sum(axis=1) > 0]
    boxes = {}
    for name, ref in class_map.items():
        values = priors.boxes[ref]
        boxes[name] = np.column_stack([np.exp(values[:, 0]), values[:, 1:]])
    return BoxStatistics(classes, boxes, counts)


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance between two 1-D empirical distributions: the area between their CDFs."""
    a, b = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    if not len(a) or not len(b):
        return float("nan")
    points = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(a, points[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, points[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * np.diff(points)))


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance between two histograms over the same bins (each normalised to sum 1)."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def count_variation(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation between the distributions of two samples of non-negative integer counts."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if not len(a) or not len(b):
        return float("nan")
    bins = int(max(a.max(), b.max())) + 1
    return total_variation(np.bincount(a, minlength=bins), np.bincount(b, minlength=bins))


def compare(reference: BoxStatistics, synthetic: BoxStatistics) -> dict[str, Any]:
    """{"classes": {class: {metric: distance}}, "class_frequency_tv": …, "objects_per_image_tv": …}."""
    per_class: dict[str, dict[str, float]] = {}
    for k, name in enumerate(reference.classes):
        j = synthetic.classes.index(name)
        ref, syn = reference.boxes[name], synthetic.boxes[name]
        row = {metric: round(wasserstein1(ref[:, m], syn[:, m]), 4) for m, metric in enumerate(BOX_METRICS)}
        row["count_tv"] = round(count_variation(reference.counts[:, k], synthetic.counts[:, j]), 4)
        per_class[name] = row
    columns = [synthetic.classes.index(name) for name in reference.classes]
    return {
        "classes": per_class,
        "class_frequency_tv": round(total_variation(reference.counts.sum(axis=0),
                                                    synthetic.counts[:, columns].sum(axis=0)), 4),
        "objects_per_image_tv": round(count_variation(reference.counts.sum(axis=1),
                                                      synthetic.counts[:, columns].sum(axis=1)), 4),
    }


@dataclass
class LayoutPriorReport:
    """Distances to the reference before (procedural) and after (reference sampler) anchoring."""

    reference: str
    n_layouts: int
    seed: int
    difficulty: str
    matched: dict[str, str]
    unmatched: list[str]
    before: dict[str, Any]
    after: dict[str, Any]
    statistics: dict[str, BoxStatistics] = field(default_factory=dict, repr=False)  # for the plot

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (no statistics arrays)."""
        return {"reference": self.reference, "n_layouts": self.n_layouts, "seed": self.seed,
                "difficulty": self.difficulty, "matched": self.matched, "unmatched": self.unmatched,
                "before": self.before, "after": self.after}


def layout_prior_report(spec: TaskSpec, sampler: ReferenceLayoutSampler, *, n: int = 200, seed: int = 0,
                        baseline: LayoutSampler | None = None) -> LayoutPriorReport:
    """Sample `n` layouts per sampler (seeds seed … seed+n-1) and measure both against the reference."""
    baseline = baseline or ProceduralLayoutSampler()
    matched = {name: ref for name, ref in sampler.class_map(spec).items() if ref is not None}
    classes = list(spec.class_names)
    reference = reference_statistics(sampler.priors, matched)
    before = layout_statistics([baseline.sample(spec, s) for s in range(seed, seed + n)], classes)
    after = layout_statistics([sampler.sample(spec, s) for s in range(seed, seed + n)], classes)
    empty = {"classes": {}, "class_frequency_tv": None, "objects_per_image_tv": None}
    return LayoutPriorReport(
        reference=sampler.priors.source, n_layouts=n, seed=seed, difficulty=spec.difficulty.value, matched=matched,
        unmatched=sampler.unmatched_classes(spec), before=compare(reference, before) if matched else empty,
        after=compare(reference, after) if matched else empty,
        statistics={"reference": reference, "procedural": before, "reference sampler": after},
    )


def format_layout_report(report: LayoutPriorReport) -> str:
    """Per class and metric: distance before → after (lower is closer to the reference)."""
    lines = [f"layout distances to {report.reference} ({report.n_layouts} layouts per sampler, difficulty "
             f"{report.difficulty}): procedural → reference-anchored, lower is closer",
             f"{'class':<20} " + " ".join(f"{m:>18}" for m in (*BOX_METRICS, "count_tv"))]
    for name in report.matched:
        before, after = report.before["classes"][name], report.after["classes"][name]
        cells = [f"{before[m]:.3f} → {after[m]:.3f}" for m in (*BOX_METRICS, "count_tv")]
        lines.append(f"{name[:20]:<20} " + " ".join(f"{c:>18}" for c in cells))
    for key in ("class_frequency_tv", "objects_per_image_tv"):
        if report.before[key] is not None:
            lines.append(f"{key}: {report.before[key]:.3f} → {report.after[key]:.3f}")
    if report.unmatched:
        lines.append("not in the reference (procedural distributions): " + ", ".join(report.unmatched))
    return "\n".join(lines)


def layout_report_markdown(report: LayoutPriorReport) -> str:
    """A dataset-card section: the distances table, the unmatched classes and the plot."""
    header = ["class", *(f"{m} W1" for m in BOX_METRICS), "count TV"]
    rows = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for name in report.matched:
        before, after = report.before["classes"][name], report.after["classes"][name]
        rows.append("| " + " | ".join([name, *(f"{before[m]:.3f} → {after[m]:.3f}"
                                              for m in (*BOX_METRICS, "count_tv"))]) + " |")
    md = ["## Layout priors from the reference data\n",
          f"Layouts anchored on `{report.reference}`. Distance of the layouts' statistics to the reference's, "
          f"procedural → anchored ({report.n_layouts} layouts each; lower is closer).\n", "\n".join(rows) + "\n"]
    if report.before["class_frequency_tv"] is not None:
        md.append(f"Class frequency TV {report.before['class_frequency_tv']:.3f} → "
                  f"{report.after['class_frequency_tv']:.3f}; objects per image TV "
                  f"{report.before['objects_per_image_tv']:.3f} → {report.after['objects_per_image_tv']:.3f}.\n")
    if report.unmatched:
        md.append("Not in the reference (procedural distributions): " + ", ".join(report.unmatched) + ".\n")
    md.append(f"![layout priors]({PLOT_FILE})\n")
    return "\n".join(md)


# ------------------------------------------------------------------------------------------- plot

PANEL, LABEL_W, MAX_BOXES = 150, 130, 400
COLUMN_COLOURS = {"reference": (0, 114, 178), "procedural": (213, 94, 0), "reference sampler": (0, 158, 115)}


def draw_layout_report(report: LayoutPriorReport, spec: TaskSpec) -> Image.Image:
    """Per matched class one row: box outlines of the reference, procedural and anchored layouts on the spec's
    canvas (up to 400 boxes each, translucent), with the distances before → after under the row."""
    font = ImageFont.load_default()
    panel_h = max(40, round(PANEL * spec.height / spec.width))
    names = list(report.matched) or ["(no class in the reference)"]
    row_h, top = panel_h + 30, 22
    image = Image.new("RGB", (LABEL_W + 3 * (PANEL + 8), top + row_h * len(names)), (255, 255, 255))
    draw = ImageDraw.Draw(image, "RGBA")
    titles = ("reference data", "procedural", "anchored on the reference")
    for c, (title, colour) in enumerate(zip(titles, COLUMN_COLOURS.values(), strict=True)):
        draw.text((LABEL_W + c * (PANEL + 8), 6), title, fill=colour, font=font)
    unit = np.sqrt(spec.width * spec.height)
    for r, name in enumerate(report.matched):
        y = top + r * row_h
        draw.text((6, y + panel_h // 2 - 6), name[:20], fill=(0, 0, 0), font=font)
        for c, (column, colour) in enumerate(COLUMN_COLOURS.items()):
            x = LABEL_W + c * (PANEL + 8)
            draw.rectangle([x, y, x + PANEL, y + panel_h], outline=(160, 160, 160), fill=(246, 246, 246))
            for size, log_aspect, cx, cy in report.statistics[column].boxes[name][:MAX_BOXES]:
                w = size * np.sqrt(np.exp(log_aspect)) * unit / spec.width * PANEL
                h = size / np.sqrt(np.exp(log_aspect)) * unit / spec.height * panel_h
                left, upper = x + cx * PANEL - w / 2, y + cy * panel_h - h / 2
                draw.rectangle([left, upper, left + w, upper + h], outline=(*colour, 60))
        before, after = report.before["classes"][name], report.after["classes"][name]
        text = "   ".join(f"{m} {before[m]:.2f} -> {after[m]:.2f}" for m in ("size", "centre_x", "centre_y"))
        draw.text((LABEL_W, y + panel_h + 4), f"W1: {text}", fill=(60, 60, 60), font=font)
    return image


def write_layout_report(out_dir: Path, report: LayoutPriorReport, spec: TaskSpec) -> tuple[Path, Path]:
    """Write DIR/layout_prior.json and DIR/card_layout_prior.png (atomic); their paths."""
    out_dir = Path(out_dir)
    atomic_write_json(out_dir / REPORT_FILE, report.to_dict(), indent=2)
    atomic_write_png(out_dir / PLOT_FILE, draw_layout_report(report, spec))
    return out_dir / REPORT_FILE, out_dir / PLOT_FILE
