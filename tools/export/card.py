"""The dataset card: `card.md` plus two pictures drawn with Pillow (no plotting library).

DIR/card.md                   counts per split, class balance, instance and box-size statistics, what each
                              task delivered with a section per task output and the certificate histogram
                              (`card_tasks`), rejection reasons, the spec, provenance, the loop's timings
DIR/card_samples.png          up to 16 images (first by id) with boxes, class labels and mask outlines
DIR/card_class_balance.png    instances per class, bars stacked by split
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from synthloop.tools.export.card_tasks import task_sections
from synthloop.tools.io import atomic_write_png, atomic_write_text
from synthloop.tools.masks import rle_crops
from synthloop.tools.types import Instance, Sample, TaskSpec

SMALL_AREA, MEDIUM_AREA = 32**2, 96**2  # COCO's area thresholds
GRID_MAX, TILE = 16, 256
PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
    (0, 0, 128), (128, 128, 128),
]  # fmt: skip


def _instances(sample: Sample) -> list[Instance]:
    """Instances the exports contain (area 0 is skipped there too)."""
    return [i for i in (sample.annotation.instances if sample.annotation else []) if i.area > 0]


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


def size_bucket(area: float) -> str:
    """COCO size class of an instance area."""
    return "small" if area < SMALL_AREA else "medium" if area < MEDIUM_AREA else "large"


def reason_counts(rejected_rows: list[Mapping[str, Any]]) -> Counter[str]:
    """Rejection reasons counted; numbers become '#' so that 'box 3 too small' and 'box 7 too small' meet."""
    counts: Counter[str] = Counter()
    for row in rejected_rows:
        reasons = row.get("reasons")
        if reasons is None:
            reasons = [row["reason"]] if row.get("reason") else []
        if not reasons:
            reasons = ["(no reason given)"]
        for reason in reasons:
            counts[re.sub(r"\d+(\.\d+)?", "#", str(reason))[:120]] += 1
    return counts


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


def draw_sample_grid(out_dir: Path, spec: TaskSpec, samples: list[Sample]) -> Image.Image:
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


def write_card(
    out_dir: Path,
    spec: TaskSpec,
    samples: list[Sample],
    rejected_rows: list[Mapping[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write card.md, card_samples.png and card_class_balance.png into `out_dir`; returns card.md's path.

    `extra` holds figures from the loop (timings, throughput); they are printed as a table.
    """
    out_dir = Path(out_dir)
    samples = sorted(samples, key=lambda s: s.id)
    splits = list(dict.fromkeys([*spec.splits.names(), *(s.split for s in samples)]))
    per_split: dict[str, Counter[str]] = {s: Counter() for s in splits}
    images_with: Counter[str] = Counter()
    images_per_split: Counter[str] = Counter(s.split for s in samples)
    buckets: Counter[str] = Counter()
    widths: list[float] = []
    heights: list[float] = []
    per_image: list[int] = []
    for sample in samples:
        instances = _instances(sample)
        per_image.append(len(instances))
        for inst in instances:
            per_split[sample.split][inst.category] += 1
            buckets[size_bucket(inst.area)] += 1
            widths.append(inst.bbox[2])
            heights.append(inst.bbox[3])
        images_with.update({inst.category for inst in instances})
    n_instances = sum(per_image)

    atomic_write_png(out_dir / "card_samples.png", draw_sample_grid(out_dir, spec, samples))
    atomic_write_png(out_dir / "card_class_balance.png", draw_class_balance(spec, per_split))

    request = spec.request.strip()
    title = request.splitlines()[0][:100] if request else ", ".join(spec.class_names)
    md = [f"# Dataset card: {title}"]
    md.append(
        "Generated by synthloop. Annotations: `annotations/instances_{split}.json` (COCO); formats: "
        + ", ".join(f.value for f in spec.formats)
        + "."
    )

    md.append("## Counts\n")
    rows = [[s, images_per_split[s], sum(per_split[s].values())] for s in splits]
    rows.append(["**total**", len(samples), n_instances])
    md.append(_table(["split", "images", "instances"], rows))
    n_rejected = len(rejected_rows)
    md.append(f"{len(samples)} images kept of {spec.n_images} asked for; {n_rejected} attempts rejected.")

    md.append("## Class balance\n")
    rows = []
    for name in spec.class_names:
        total = sum(per_split[s][name] for s in splits)
        share = f"{100 * total / n_instances:.1f}%" if n_instances else "-"
        rows.append([name, *(per_split[s][name] for s in splits), total, share, images_with[name]])
    md.append(_table(["class", *splits, "total", "share", "images with it"], rows))
    md.append("\n![class balance](card_class_balance.png)\n")

    md.append("## Instances and box sizes\n")
    rows = [
        [b, buckets[b], f"{100 * buckets[b] / n_instances:.1f}%" if n_instances else "-"]
        for b in ("small", "medium", "large")
    ]
    md.append(_table(["size (COCO: area < 32², < 96², larger)", "instances", "share"], rows))
    if per_image:
        md.append(
            f"\nInstances per image: min {min(per_image)}, mean {statistics.fmean(per_image):.2f}, "
            f"max {max(per_image)}.\n"
        )
    if widths:
        md.append(
            f"Box width px: min {min(widths):.0f}, median {statistics.median(widths):.0f}, "
            f"max {max(widths):.0f}; "
            f"box height px: min {min(heights):.0f}, median {statistics.median(heights):.0f}, "
            f"max {max(heights):.0f}.\n"
        )

    md.append(task_sections(spec, samples))

    md.append("## Rejections\n")
    counts = reason_counts(rejected_rows)
    if counts:
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        md.append(_table(["reason", "count"], [[_fmt_value(r), c] for r, c in ordered]))
    else:
        md.append("No rejected attempts.\n")

    md.append("\n## Spec\n")
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
    md.append(_table(["field", "value"], spec_rows))

    md.append("\n## Provenance\n")
    backends = Counter((k, v) for s in samples for k, v in sorted(s.backend.items()))
    if backends:
        ordered_b = sorted(backends.items(), key=lambda kv: kv[0])
        rows = [[_fmt_value(k), _fmt_value(v), c] for (k, v), c in ordered_b]
        md.append(_table(["role", "id", "samples"], rows))
    else:
        md.append("No backend ids recorded.\n")
    judges = Counter(v.judge for s in samples for v in s.verdicts)
    if judges:
        md.append("\nJudges: " + ", ".join(f"{j} ({c})" for j, c in sorted(judges.items())) + ".\n")

    if extra:
        md.append("\n## Timings and figures\n")
        md.append(_table(["figure", "value"], [[_fmt_value(k), _fmt_value(v)] for k, v in extra.items()]))

    realism = realism_section(out_dir)
    if realism:
        md.append(realism)

    md.append("\n## Samples\n")
    md.append(f"First {min(len(samples), GRID_MAX)} images by id, boxes and mask outlines drawn per class.\n")
    md.append("\n![samples](card_samples.png)\n")
    path = out_dir / "card.md"
    atomic_write_text(path, "\n\n".join(part.strip("\n") for part in md) + "\n")
    return path


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
    if data.get("unmapped"):
        md.append("Not scored (no COCO class): " + _fmt_value(", ".join(data["unmapped"])) + ".\n")
    return "\n".join(md)


def refresh_realism_section(out_dir: Path) -> Path | None:
    """Put the realism section into an existing card.md (replacing an older one); its path, or None."""
    path = Path(out_dir) / "card.md"
    section = realism_section(out_dir)
    if section is None or not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    start = text.find(f"\n{REALISM_HEADING}\n")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + (text[end:] if end >= 0 else "\n")
    at = text.find("\n## Samples\n")
    at = at if at >= 0 else len(text.rstrip("\n"))
    text = text[:at].rstrip("\n") + "\n\n" + section.strip("\n") + "\n\n" + text[at:].lstrip("\n")
    atomic_write_text(path, text.rstrip("\n") + "\n")
    return path
