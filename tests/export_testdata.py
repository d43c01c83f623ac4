"""Synthetic samples for the export tests: small PNGs with drawn shapes and their exact masks.

Each image paints its objects back to front, so masks are what stays visible: some instances are split in two
by an occluder, one is a ring with a hole, one is hidden completely (area 0), one has no mask (box only),
and one image is empty. The `test` split has no samples (its COCO file must still be valid).

With `rich=True` the samples also carry what the language and model annotators add (built here by hand, from
the drawn geometry): grounded captions, a referring expression per object (one for the hidden square too,
which the exports must leave out), left-of / above relations, and a certificate on every instance, some below
the semantic ignore threshold; one image gets an extra model ("sam") mask of another class overlapping a drawn
object, so the semantic map has an ambiguous region.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from synthloop.tools.io import atomic_write_png
from synthloop.tools.masks import encode_rle, mask_bbox
from synthloop.tools.types import (
    Annotation,
    Certificate,
    ExportFormat,
    Instance,
    Layout,
    LayoutObject,
    ObjectSpec,
    ReferringExpression,
    Relation,
    Sample,
    Splits,
    Task,
    TaskSpec,
)

CLASSES = ["square", "disc", "ring"]
WIDTH, HEIGHT = 96, 72


def make_spec(
    formats: tuple[str, ...] = ("coco", "yolo", "hf"),
    tasks: tuple[str, ...] = ("detection", "instance_segmentation"),
    width: int = WIDTH,
    height: int = HEIGHT,
) -> TaskSpec:
    """A spec with three classes and train/val/test splits."""
    return TaskSpec(
        objects=[ObjectSpec(name=n, min_count=0, max_count=4) for n in CLASSES],
        n_images=8,
        width=width,
        height=height,
        tasks=[Task(t) for t in tasks],
        formats=[ExportFormat(f) for f in formats],
        splits=Splits(train=0.6, val=0.2, test=0.2),
        request="shapes on a grey background, boxes and masks",
        seed=7,
    )


def _shape_mask(kind: str, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    image = Image.new("L", size, 0)
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = box
    if kind == "square":
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=255)
    elif kind == "disc":
        draw.ellipse([x0, y0, x1 - 1, y1 - 1], fill=255)
    else:
        draw.ellipse([x0, y0, x1 - 1, y1 - 1], fill=255)
        t = max(3, min(x1 - x0, y1 - y0) // 5)
        draw.ellipse([x0 + t, y0 + t, x1 - 1 - t, y1 - 1 - t], fill=0)
    return np.asarray(image) > 0


def _scene(
    rng: np.random.Generator, index: int, width: int, height: int
) -> list[tuple[str, tuple[int, int, int, int]]]:
    s = width / WIDTH
    if index == 0:  # nothing to annotate
        return []
    if index == 1:  # a disc cut in two by a bar in front; a square fully hidden behind the bar
        return [
            ("disc", (round(10 * s), round(10 * s), round(60 * s), round(60 * s))),
            ("square", (round(30 * s), round(30 * s), round(38 * s), round(38 * s))),
            ("square", (round(28 * s), 0, round(40 * s), height)),
        ]
    objects = []
    for _ in range(int(rng.integers(1, 5))):
        kind = CLASSES[int(rng.integers(0, 3))]
        w, h = int(rng.integers(14 * s, 40 * s)), int(rng.integers(14 * s, 40 * s))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        objects.append((kind, (x, y, x + w, y + h)))
    return objects


ALL_TASKS = (
    "detection",
    "instance_segmentation",
    "semantic_segmentation",
    "captioning",
    "referring_expressions",
    "scene_graph",
)
LOW_AGREEMENT = 0.3  # below the semantic export's ignore threshold


def _plural(name: str, count: int) -> str:
    return name if count == 1 else f"{name}s"


def _rich_annotation(index: int, instances: list[Instance], width: int, height: int) -> Annotation:
    """Captions, referring expressions, relations and certificates for the instances of one image."""
    visible = [k for k, inst in enumerate(instances) if inst.area > 0]
    counts: dict[str, int] = {}
    for k in visible:
        counts[instances[k].category] = counts.get(instances[k].category, 0) + 1
    listed = " and ".join(f"{c} {_plural(name, c)}" for name, c in sorted(counts.items()))
    captions = (
        [f"{listed} on a grey background.", f"A grey picture with {listed}."]
        if counts
        else ["An empty grey background."]
    )
    certified = []
    for k, inst in enumerate(instances):
        agreement = LOW_AGREEMENT if (index + k) % 3 == 2 else 1.0
        sources = {"layout": 1.0, "render_mask": 1.0 if inst.segmentation is not None else 0.0}
        certified.append(inst.model_copy(update={"certificate": Certificate(sources=sources, agreement=agreement)}))
    referring = []
    for k, inst in enumerate(instances):
        x, _, w, _ = inst.bbox
        side = "left" if x + w / 2 < width / 2 else "right"
        referring.append(
            ReferringExpression(
                instance=k, sentences=[f"The {inst.category} on the {side}.", f"{side} {inst.category}"]
            )
        )
    relations = []
    for a in range(len(instances)):
        for b in range(len(instances)):
            ax, ay, aw, ah = instances[a].bbox
            bx, by, _, _ = instances[b].bbox
            if a != b and ax + aw <= bx:
                relations.append(Relation(subject=a, predicate="left of", object=b, source="rule"))
            elif a != b and ay + ah <= by:
                relations.append(Relation(subject=a, predicate="above", object=b, source="vlm", score=0.8))
    return Annotation(instances=certified, captions=captions, referring=referring, relations=relations)


def _overlapping_model_mask(instances: list[Instance], width: int, height: int) -> Instance | None:
    """A 'sam' mask of another class over the right half of the first visible drawn mask."""
    first = next((inst for inst in instances if inst.segmentation is not None), None)
    if first is None:
        return None
    x, y, w, h = (int(v) for v in first.bbox)
    mask = np.zeros((height, width), dtype=bool)
    mask[y : y + h, x + w // 2 : min(width, x + w + 6)] = True
    other = next(name for name in CLASSES if name != first.category)
    return Instance(
        category=other,
        bbox=mask_bbox(mask),
        area=int(mask.sum()),
        segmentation=encode_rle(mask),
        source="sam",
        certificate=Certificate(sources={"sam_iou": 0.9}, agreement=0.9),
    )


def make_samples(
    out_dir: Path,
    n: int = 8,
    seed: int = 0,
    width: int = WIDTH,
    height: int = HEIGHT,
    *,
    rich: bool = False,
) -> list[Sample]:
    """Draw `n` images under out_dir/images/{split}/ and return their samples (ids s000, s001, ...).

    `rich`: add captions, referring expressions, relations, certificates and one overlapping model mask
    (see the module docstring).
    """
    rng = np.random.default_rng(seed)
    samples = []
    for index in range(n):
        split = "val" if index % 4 == 3 else "train"
        sample_id = f"s{index:03d}"
        objects = _scene(rng, index, width, height)
        pixels = np.full((height, width, 3), 128, dtype=np.uint8)
        visible: list[np.ndarray] = []
        for k, (kind, box) in enumerate(objects):
            mask = _shape_mask(kind, box, (width, height))
            for earlier in visible:
                earlier &= ~mask
            visible.append(mask)
            pixels[mask] = (60 * (k + 1) % 256, 200 - 40 * k, 90 + 50 * CLASSES.index(kind))
        instances = []
        for k, ((kind, _), mask) in enumerate(zip(objects, visible, strict=True)):
            area = int(mask.sum())
            box_only = index == 2 and k == 0
            instances.append(
                Instance(
                    category=kind,
                    bbox=mask_bbox(mask),
                    area=int(mask_bbox(mask)[2] * mask_bbox(mask)[3]) if box_only else area,
                    segmentation=None if box_only or area == 0 else encode_rle(mask),
                    layout_index=k,
                )
            )
        annotation = Annotation(instances=instances, captions=[f"{len(objects)} shapes"])
        if rich:
            if index == 5:
                extra = _overlapping_model_mask(instances, width, height)
                instances = [*instances, extra] if extra is not None else instances
            annotation = _rich_annotation(index, instances, width, height)
        image_path = f"images/{split}/{sample_id}.png"
        atomic_write_png(out_dir / image_path, pixels)
        layout = Layout(
            width=width,
            height=height,
            seed=seed + index,
            objects=[
                LayoutObject(category=kind, box=(x0 / width, y0 / height, x1 / width, y1 / height), depth=k)
                for k, (kind, (x0, y0, x1, y1)) in enumerate(objects)
            ],
        )
        samples.append(
            Sample(
                id=sample_id,
                index=index,
                attempt=0,
                seed=seed + index,
                split=split,
                image_path=image_path,
                width=width,
                height=height,
                layout=layout,
                annotation=annotation,
                backend={"renderer": "test-painter", "annotator": "exact"},
                prompt="shapes",
            )
        )
    return samples


def rejected_rows() -> list[dict]:
    """Two rejected attempts in the shape agent/store.py writes."""
    return [
        {"id": "s001", "index": 1, "attempt": 0, "reasons": ["rules: box 3 too small"]},
        {"id": "s004", "index": 4, "attempt": 1, "reasons": ["rules: box 1 too small", "rules: duplicate"]},
    ]
