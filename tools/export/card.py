"""The dataset card: `card.md` plus two pictures drawn with Pillow (no plotting library).

DIR/card.md                   counts per split, class balance, instance and box-size statistics, what each
                              task delivered with a section per task output and the certificate histogram
                              (`card_tasks`), rejection reasons, the spec, provenance, the loop's timings
DIR/card_samples.png          up to 16 images (first by id) with boxes, class labels and mask outlines
DIR/card_class_balance.png    instances per class, bars stacked by split

`CardExporter` takes the samples one at a time like the other exporters (and the rejected rows through
`add_rejected`), keeping counts only (`card_stats`, `card_tasks`), so a card over a million images needs no
more memory than one over ten; `write_card` does the same for samples already in hand.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from synthloop.tools.export.base import BaseExporter
from synthloop.tools.export.card_stats import GRID_MAX, MEDIUM_AREA, SMALL_AREA, CardStats, size_bucket
from synthloop.tools.export.card_stats import exported as _instances
from synthloop.tools.export.card_tasks import TaskStats
from synthloop.tools.io import atomic_write_png, atomic_write_text
from synthloop.tools.masks import rle_crops
from synthloop.tools.types import Instance, Sample, TaskSpec

__all__ = ["GRID_MAX", "MEDIUM_AREA", "SMALL_AREA", "CardExporter", "reason_counts", "size_bucket", "write_card"]
TILE = 256
PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
    (0, 0, 128), (128, 128, 128),
]  # fmt: skip


def _color(class_index: int) -> tuple[int, int, int]:
    return PALETTE[class_index % len(PALETTE)]


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def row_reasons(row: Mapping[str, Any]) -> list[str]:
    """The reasons of one rejected row, numbers turned into '#' so that 'box 3 too small' and 'box 7 too small'
    meet."""
    reasons = row.get("reasons")
    if reasons is None:
        reasons = [row["reason"]] if row.get("reason") else []
    if not reasons:
        reasons = ["(no reason given)"]
    return [re.sub(r"\d+(\.\d+)?", "#", str(reason))[:120] for reason in reasons]


def reason_counts(rejected_rows: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """Rejection reasons counted (`row_reasons`)."""
    return Counter(reason for row in rejected_rows for reason in row_reasons(row))


# ------------------------------------------------------------------------------------------- pictures


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of a boolean mask that touch the outside (4-neighbourhood)."""
    padded = np.pad(mask, 1)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~interior


def draw_tile(out_dir: Path, sample: Sample, class_index: dict[str, int], tile: int = TILE) -> Image.Image:
    """One sample scaled into a `tile`² square with mask outlines, boxes and class labels."""
    canvas = Image.new("RGB", (tile, tile), (32, 32, 32))
    try:
        with Image.open(out_dir / sample.image_path) as opened:
            image = opened.convert("RGB")
    except OSError:
        ImageDraw.Draw(canvas).text((8, 8), f"{sample.id}: unreadable", fill=(255, 80, 80), font=_font())
        return canvas
    scale = tile / max(image.width, image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    pixels = np.asarray(image.resize(size, Image.BILINEAR)).copy()
    instances = _instances(sample)
    masked = [inst for inst in instances if inst.segmentation is not None]
    by_size: dict[tuple[int, int], list[Instance]] = {}
    for inst in masked:
        by_size.setdefault(tuple(inst.segmentation.size), []).append(inst)  # type: ignore[union-attr]
    for (mask_h, mask_w), group in by_size.items():
        # Nearest-neighbour thumbnail of each mask, sampled from its tight box only (decoded in one pass).
        src_rows = ((np.arange(size[1]) + 0.5) * mask_h / size[1]).astype(np.int64)
        src_cols = ((np.arange(size[0]) + 0.5) * mask_w / size[0]).astype(np.int64)
        crops = rle_crops((mask_h, mask_w), [inst.segmentation.counts for inst in group])  # type: ignore[union-attr]
        for inst, (crop, x0, y0) in zip(group, crops, strict=True):
            if crop.size == 0:
                continue
            rows = np.flatnonzero((src_rows >= y0) & (src_rows < y0 + crop.shape[0]))
            cols = np.flatnonzero((src_cols >= x0) & (src_cols < x0 + crop.shape[1]))
            if rows.size == 0 or cols.size == 0:
                continue
            small = crop[np.ix_(src_rows[rows] - y0, src_cols[cols] - x0)]
            outline = _outline(small)
            region = pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            region[outline] = _color(class_index.get(inst.category, 0))
    thumb = Image.fromarray(pixels)
    draw = ImageDraw.Draw(thumb)
    font = _font()
    for inst in instances:
        color = _color(class_index.get(inst.category, 0))
        x, y, w, h = (v * scale for v in inst.bbox)
        draw.rectangle([x, y, x + max(w, 1) - 1, y + max(h, 1) - 1], outline=color, width=1)
        left, top, right, bottom = draw.textbbox((0, 0), inst.category, font=font)
        text_h = bottom - top + 2
        ty = y - text_h if y - text_h >= 0 else y  # above the box, inside it at the top edge
        draw.rectangle([x, ty, x + right - left + 2, ty + text_h], fill=color)
        draw.text((x + 1 - left, ty + 1 - top), inst.category, fill=(0, 0, 0), font=font)
    canvas.paste(thumb, ((tile - size[0]) // 2, (tile - size[1]) // 2))
    return canvas


def draw_sample_grid(out_dir: Path, spec: TaskSpec, samples: Iterable[Sample]) -> Image.Image:
    """Up to 16 samples (first by id) in a 4-column grid with a caption under each tile."""
    chosen = sorted(samples, key=lambda s: s.id)[:GRID_MAX]
    class_index = {name: i for i, name in enumerate(spec.class_names)}
    cols = min(4, max(1, len(chosen)))
    rows = max(1, -(-len(chosen) // cols))
    caption_h, pad = 14, 4
    grid_size = (cols * (TILE + pad) + pad, rows * (TILE + caption_h + pad) + pad)
    grid = Image.new("RGB", grid_size, (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    if not chosen:
        draw.text((pad, pad), "no samples", fill=(0, 0, 0), font=_font())
    for k, sample in enumerate(chosen):
        x = pad + (k % cols) * (TILE + pad)
        y = pad + (k // cols) * (TILE + caption_h + pad)
        grid.paste(draw_tile(out_dir, sample, class_index), (x, y))
        draw.text((x, y + TILE + 1), f"{sample.id} ({sample.split})", fill=(0, 0, 0), font=_font())
    return grid


def draw_class_balance(spec: TaskSpec, per_split: dict[str, Counter[str]]) -> Image.Image:
    """Horizontal bars of instances per class, stacked by split, with a legend."""
    font = _font()
    names, splits = spec.class_names, list(per_split)
    split_colors = [(0, 114, 178), (230, 159, 0), (0, 158, 115)]
    label_w, bar_w, row_h, top = 150, 420, 22, 30
    width, height = label_w + bar_w + 70, top + row_h * len(names) + 10
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    totals = {n: sum(per_split[s][n] for s in splits) for n in names}
    peak = max([*totals.values(), 1])
    lx = label_w
    for i, split in enumerate(splits):
        draw.rectangle([lx, 8, lx + 12, 20], fill=split_colors[i % 3])
        draw.text((lx + 16, 8), split, fill=(0, 0, 0), font=font)
        lx += 24 + int(draw.textlength(split, font=font)) + 12
    for row, name in enumerate(names):
        y = top + row * row_h
        draw.text((6, y + 5), name[:24], fill=(0, 0, 0), font=font)
        x = float(label_w)
        for i, split in enumerate(splits):
            w = bar_w * per_split[split][name] / peak
            if w > 0:
                draw.rectangle([x, y + 3, x + w, y + row_h - 3], fill=split_colors[i % 3])
            x += w
        draw.text((x + 6, y + 5), str(totals[name]), fill=(0, 0, 0), font=font)
    return image


# ------------------------------------------------------------------------------------------- card.md


class CardExporter(BaseExporter):
    """Writes card.md and its two pictures (see the module docstring). Feed it the kept samples with
    `export_sample` and the rejected rows with `add_rejected`; set `figures` (the loop's timings and other
    numbers, printed as a table) before `close`."""

    id = "card"

    def __init__(self, sections: Iterable[str] = ()) -> None:
        super().__init__()
        self.sections = list(sections)

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Start a new card for `out_dir`."""
        super().setup(out_dir, spec)
        self._stats = CardStats(spec)
        self._tasks = TaskStats(spec)
        self._reasons: Counter[str] = Counter()
        self._rejected = 0
        self.figures: dict[str, Any] = {}

    def export_sample(self, sample: Sample) -> None:
        """Count one kept sample."""
        self._stats.add(sample)
        self._tasks.add(sample)

    def add_rejected(self, row: Mapping[str, Any]) -> None:
        """Count one rejected attempt (a rejected.jsonl row)."""
        self._rejected += 1
        self._reasons.update(row_reasons(row))

    def close(self) -> None:
        """Write card.md, card_samples.png and card_class_balance.png."""
        stats, spec = self._stats, self.spec
        per_split = stats.class_counts()
        atomic_write_png(self.out_dir / "card_samples.png", draw_sample_grid(self.out_dir, spec, stats.first.values()))
        atomic_write_png(self.out_dir / "card_class_balance.png", draw_class_balance(spec, per_split))
        md = [*_counts_part(stats, per_split, self._rejected), self._tasks.markdown(), *self._rejections_part(),
              *_spec_part(spec), *_sources_part(spec, stats), *_provenance_part(stats)]
        if self.figures:
            md.append("\n## Timings and figures\n")
            md.append(_table(["figure", "value"], [[_fmt_value(k), _fmt_value(v)] for k, v in self.figures.items()]))
        md += self.sections
        realism = realism_section(self.out_dir)
        if realism:
            md.append(realism)
        md.append("\n## Samples\n")
        md.append(f"First {min(stats.images, GRID_MAX)} images by id, boxes and mask outlines drawn per class.\n")
        md.append("\n![samples](card_samples.png)\n")
        atomic_write_text(self.out_dir / "card.md", "\n\n".join(part.strip("\n") for part in md) + "\n")
        self.finish()

    def _rejections_part(self) -> list[str]:
        md = ["## Rejections\n"]
        if self._reasons:
            ordered = sorted(self._reasons.items(), key=lambda kv: (-kv[1], kv[0]))
            md.append(_table(["reason", "count"], [[_fmt_value(r), c] for r, c in ordered]))
        else:
            md.append("No rejected attempts.\n")
        return md


def _counts_part(stats: CardStats, per_split: dict[str, Counter[str]], rejected: int) -> list[str]:
    """Title, counts per split, class balance, instances and box sizes."""
    spec, splits, n_instances = stats.spec, stats.splits, stats.instances
    request = spec.request.strip()
    title = request.splitlines()[0][:100] if request else ", ".join(spec.class_names)
    md = [f"# Dataset card: {title}"]
    md.append(
        "Generated by synthloop. Annotations: `annotations/instances_{split}.json` (COCO); formats: "
        + ", ".join(f.value for f in spec.formats)
        + "."
    )
    md.append("## Counts\n")
    rows = [[s, stats.images_per_split[s], sum(per_split[s].values())] for s in splits]
    rows.append(["**total**", stats.images, n_instances])
    md.append(_table(["split", "images", "instances"], rows))
    md.append(f"{stats.images} images kept of {spec.n_images} asked for; {rejected} attempts rejected.")

    md.append("## Class balance\n")
    rows = []
    for name in spec.class_names:
        total = sum(per_split[s][name] for s in splits)
        share = f"{100 * total / n_instances:.1f}%" if n_instances else "-"
        rows.append([name, *(per_split[s][name] for s in splits), total, share, stats.images_with[name]])
    md.append(_table(["class", *splits, "total", "share", "images with it"], rows))
    md.append("\n![class balance](card_class_balance.png)\n")

    md.append("## Instances and box sizes\n")
    rows = [
        [b, stats.buckets[b], f"{100 * stats.buckets[b] / n_instances:.1f}%" if n_instances else "-"]
        for b in ("small", "medium", "large")
    ]
    md.append(_table(["size (COCO: area < 32², < 96², larger)", "instances", "share"], rows))
    if stats.images:
        md.append(
            f"\nInstances per image: min {stats.per_image_min}, mean {n_instances / stats.images:.2f}, "
            f"max {stats.per_image_max}.\n"
        )
    widths, heights = stats.widths, stats.heights
    if widths.count:
        md.append(
            f"Box width px: min {widths.min:.0f}, median {widths.median():.0f}, max {widths.max:.0f}; "
            f"box height px: min {heights.min:.0f}, median {heights.median():.0f}, max {heights.max:.0f}.\n"
        )
    return md


def _spec_part(spec: TaskSpec) -> list[str]:
    spec_rows = [
        ["request", _fmt_value(spec.request) or "-"],
        ["classes", ", ".join(f"{o.name} ({o.min_count}–{o.max_count})" for o in spec.objects)],
        ["images requested", spec.n_images],
        ["image size", f"{spec.width}×{spec.height}"],
        ["tasks", ", ".join(t.value for t in spec.tasks)],
        ["formats", ", ".join(f.value for f in spec.formats)],
        ["difficulty", spec.difficulty.value],
        ["splits", ", ".join(f"{n} {getattr(spec.splits, n):.2f}" for n in spec.splits.names())],
        ["scene", _fmt_value(spec.scene) or "-"],
        ["style", _fmt_value(spec.style) or "-"],
        ["seed", spec.seed],
        ["defaults used", _fmt_value(", ".join(spec.defaults_used)) or "-"],
    ]
    return ["\n## Spec\n", _table(["field", "value"], spec_rows)]


def _sources_part(spec: TaskSpec, stats: CardStats) -> list[str]:
    """Where each class's objects came from (sources, licences, distinct exemplars), what the plan said before
    approval, what it named back, and the measured difficulty."""
    md = ["\n## Where the objects came from\n"]
    if stats.asset_uses:
        rows = [[name, source, kind, licence, n, len(stats.assets_seen.get(name, ()))]
                for name in spec.class_names for (source, kind, licence), n in
                sorted(stats.asset_uses.get(name, Counter()).items(), key=lambda kv: (-kv[1], kv[0]))]
        md.append(_table(["class", "source", "kind", "licence", "objects", "distinct exemplars (class)"], rows))
    else:
        md.append("The renderer recorded no per-object sources.\n")
    if spec.plan_notes:
        md.append("\nThe plan, as approved:\n\n" + "\n".join(f"- {_fmt_value(n)}" for n in spec.plan_notes) + "\n")
    if spec.notices:
        md.append("\nNamed back before approval:\n\n" + "\n".join(
            f"- {n.kind.replace('_', ' ')}: {_fmt_value(n.text)}" + (f" ({_fmt_value(n.reason)})" if n.reason else "")
            for n in spec.notices) + "\n")
    if stats.difficulty.count:
        md.append(f"\nMeasured difficulty (0 easy … 1 hard; spec: {spec.difficulty.value}): median "
                  f"{stats.difficulty.median():.2f} over {stats.difficulty.count} images.\n")
    return md


def _provenance_part(stats: CardStats) -> list[str]:
    md = ["\n## Provenance\n"]
    if stats.backends:
        ordered_b = sorted(stats.backends.items(), key=lambda kv: kv[0])
        md.append(_table(["role", "id", "samples"], [[_fmt_value(k), _fmt_value(v), c] for (k, v), c in ordered_b]))
    else:
        md.append("No backend ids recorded.\n")
    if stats.judges:
        md.append("\nJudges: " + ", ".join(f"{j} ({c})" for j, c in sorted(stats.judges.items())) + ".\n")
    return md


def write_card(
    out_dir: Path,
    spec: TaskSpec,
    samples: Iterable[Sample],
    rejected_rows: Iterable[Mapping[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write card.md, card_samples.png and card_class_balance.png into `out_dir`; returns card.md's path.

    `extra` holds figures from the loop (timings, throughput); they are printed as a table.
    """
    card = CardExporter()
    card.setup(Path(out_dir), spec)
    for sample in samples:
        card.export_sample(sample)
    for row in rejected_rows:
        card.add_rejected(row)
    card.figures = dict(extra or {})
    card.close()
    return Path(out_dir) / "card.md"


# ------------------------------------------------------------------------------------------- realism

REALISM_HEADING = "## Realism"


def realism_section(out_dir: Path) -> str | None:
    """The card's realism section from DIR/realism.json (`synthloop eval realism`); None when it is absent."""
    try:
        data = json.loads((Path(out_dir) / "realism.json").read_text(encoding="utf-8"))
        aware, agnostic = data["recall"]["class_aware"], data["recall"]["class_agnostic"]
        names: dict[str, list[str]] = {}
        for name, coco in data["mapping"].items():
            names.setdefault(coco, []).append(name)

        def cell(r: Mapping[str, Any]) -> str:
            interval = f" [{r['interval'][0]:.2f}, {r['interval'][1]:.2f}]" if r.get("interval") else ""
            return "-" if r["recall"] is None else f"{r['recall']:.3f}{interval}"

        rows = [[_fmt_value(", ".join(names.get(c, ["all"]))), c if c in names else "",
                 aware[c]["total"], cell(aware[c]), cell(agnostic[c])] for c in [*sorted(names), "all"] if c in aware]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    md = [f"{REALISM_HEADING}\n",
          f"Recall of a real COCO-trained detector ({_fmt_value(data.get('detector'))}) on this dataset's objects at "
          f"IoU ≥ {data.get('iou_threshold')} and score ≥ {data.get('min_score')}, with 95% bootstrap intervals "
          "over images: a floor on how recognisable the objects are.\n",
          _table(["class", "COCO class", "objects", "class-aware recall", "class-agnostic recall"], rows)]
    by_size = (data.get("recall_by_size") or {}).get("class_aware") or {}
    sizes = [f"{b} ({by_size[b]['total']} objects) {cell(by_size[b])}" for b in ("small", "medium", "large")
             if isinstance(by_size.get(b), dict) and by_size[b].get("total")]
    if sizes:
        md.append("Class-aware recall by box area (small < 32², medium < 96², large; a detector with a fixed input "
                  "misses most small objects in real photographs too): " + "; ".join(sizes) + ".\n")
    if data.get("unmapped"):
        md.append("Not scored (no COCO class): " + _fmt_value(", ".join(data["unmapped"])) + ".\n")
    return "\n".join(md)


def replace_card_section(card: Path, heading: str, section: str) -> None:
    """Put `section` (starting with `heading`) into an existing card.md: an older section under the same heading
    is removed, and the new one goes before the sample grid (or at the end when there is none)."""
    text = card.read_text(encoding="utf-8")
    start = text.find(f"\n{heading}\n")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + (text[end:] if end >= 0 else "\n")
    at = text.find("\n## Samples\n")
    at = at if at >= 0 else len(text.rstrip("\n"))
    text = text[:at].rstrip("\n") + "\n\n" + section.strip("\n") + "\n\n" + text[at:].lstrip("\n")
    atomic_write_text(card, text.rstrip("\n") + "\n")


def refresh_realism_section(out_dir: Path) -> Path | None:
    """Put the realism section into an existing card.md (replacing an older one); its path, or None."""
    path = Path(out_dir) / "card.md"
    section = realism_section(out_dir)
    if section is None or not path.is_file():
        return None
    replace_card_section(path, REALISM_HEADING, section)
    return path
