"""Clean compositor samples and known defects injected into them, for measuring judges by construction.

A clean item is what the loop produces before its critic: a procedural layout, the compositor's pixels and
the exact annotator's labels. Each injector returns a new `JudgeInput` (the clean one is never modified)
together with what it did, or None when the sample cannot carry that defect (e.g. no instance to drop).

Defects (`DEFECTS`, names stable, used as table rows):
- box_shift        one instance's box moved by ≥ 60% of its size (its mask stays): box off its object;
- box_mask_shift   one instance's box and mask moved together: the annotation is self-consistent but off its
                   object, only the pixels can tell;
- mask_shift       one instance's mask moved by ≥ 60% of its size (its box stays);
- degenerate_box   one instance's box collapsed to under 2 px on a side;
- missing_box      one instance dropped (the object stays in the pixels);
- extra_box        a box of a spec class added on background (no object there);
- relabel          one instance's class swapped for another class of the spec;
- blank            every pixel set to one mid-grey value;
- black            every pixel 0;
- exact_duplicate  a second sample with the same pixels as one already kept;
- near_duplicate   a kept image, slightly brighter and cropped by a few pixels (then resized back).

Clean items come from the compositor on a three-class kitchen spec (`defect_spec`), or, for judges that need
real objects (a COCO detector), from the copy_paste renderer on eight COCO classes the asset library has
photographs of (`coco_defect_spec`; `clean_items(..., renderer="copy_paste")`).

`corrupt_every_instance` applies box_shift, mask_shift, relabel or missing_box to every visible instance of an
item (a badly annotated image rather than one slip): the utility eval's injected bad training samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from synthloop.tools.critic.base import JudgeInput
from synthloop.tools.masks import decode_rle, encode_rle, mask_bbox
from synthloop.tools.types import Annotation, Difficulty, Instance, ObjectSpec, Sample, Task, TaskSpec

DEFECTS = (
    "box_shift", "box_mask_shift", "mask_shift", "degenerate_box", "missing_box", "extra_box", "relabel",
    "blank", "black", "exact_duplicate", "near_duplicate",
)
# What the issue calls "visible from the pixels and the annotation alone" (the embedded critic's target).
RULE_VISIBLE = ("box_shift", "box_mask_shift", "mask_shift", "degenerate_box", "blank", "black",
                "exact_duplicate", "near_duplicate")
DUPLICATE_DEFECTS = ("exact_duplicate", "near_duplicate")
MIN_SHIFT = 0.6  # shifts move an annotation by at least this fraction of its box size


def defect_spec(size: int = 512, difficulty: Difficulty = Difficulty.medium, seed: int = 0) -> TaskSpec:
    """The three-class kitchen spec the benchmark renders (the one `synthloop bench` uses)."""
    return TaskSpec(
        objects=[ObjectSpec(name="cup", min_count=1, max_count=3), ObjectSpec(name="plate", min_count=1, max_count=2),
                 ObjectSpec(name="fork", min_count=0, max_count=2)],
        n_images=1, width=size, height=size, tasks=[Task.detection, Task.instance_segmentation],
        scene="kitchen table", difficulty=difficulty, seed=seed,
    )


# COCO classes with photographic cut-outs in the Tux Paint library that YOLOv3-tiny finds at least now and then.
COCO_BENCH_CLASSES = ("bird", "car", "apple", "orange", "elephant", "sheep", "broccoli", "truck")


def coco_defect_spec(size: int = 512, difficulty: Difficulty = Difficulty.medium, seed: int = 0,
                     classes: tuple[str, ...] = COCO_BENCH_CLASSES) -> TaskSpec:
    """COCO classes (default the eight of `COCO_BENCH_CLASSES`), up to one object of each per image: the spec the
    detector judges are benchmarked on (copy_paste renders real cut-outs of them)."""
    return TaskSpec(objects=[ObjectSpec(name=name, min_count=0, max_count=1) for name in classes],
                    n_images=1, width=size, height=size, tasks=[Task.detection, Task.instance_segmentation],
                    difficulty=difficulty, seed=seed)


def clean_items(n: int, size: int = 512, seed: int = 0, difficulties: tuple[Difficulty, ...] | None = None, *,
                renderer: str = "compositor", coco_classes: tuple[str, ...] = COCO_BENCH_CLASSES
                ) -> list[JudgeInput]:
    """`n` clean samples (layout → renderer → exact labels), cycling through the difficulties: the compositor on
    `defect_spec`, or copy_paste (default options, the installed asset library) on `coco_defect_spec`."""
    from synthloop.tools.annotate.exact import ExactAnnotator
    from synthloop.tools.layout.procedural import ProceduralLayoutSampler
    from synthloop.tools.seeding import derive_seed

    if renderer == "compositor":
        from synthloop.tools.render.compositor import CompositorRenderer

        painter, spec_of = CompositorRenderer(), defect_spec
    elif renderer == "copy_paste":
        from synthloop.tools.render.copy_paste import CopyPasteRenderer

        painter = CopyPasteRenderer()

        def spec_of(size: int, difficulty: Difficulty, seed: int) -> TaskSpec:
            return coco_defect_spec(size, difficulty, seed, coco_classes)
    else:
        raise ValueError(f"clean items are rendered by compositor or copy_paste, not '{renderer}'")
    levels = difficulties or (Difficulty.easy, Difficulty.medium, Difficulty.hard)
    sampler, annotator = ProceduralLayoutSampler(), ExactAnnotator()
    items = []
    for index in range(n):
        spec = spec_of(size, levels[index % len(levels)], seed)
        sample_seed = derive_seed(seed, index, 0)
        layout = sampler.sample(spec, sample_seed)
        render = painter.render(layout, spec, sample_seed)
        annotation = annotator.annotate(layout, render, spec)
        sample = Sample(id=f"{index:06d}", index=index, attempt=0, seed=sample_seed, split="train",
                        image_path=f"images/train/{index:06d}.png", width=size, height=size, layout=layout,
                        annotation=annotation)
        items.append(JudgeInput(sample=sample, image=render.image, spec=spec))
    return items


@dataclass(frozen=True)
class Injected:
    """A defective item and a short description of the change (instance index, offsets...)."""

    item: JudgeInput
    note: str
    instance: int | None = None


def _visible(item: JudgeInput) -> list[int]:
    annotation = item.sample.annotation
    return [i for i, inst in enumerate(annotation.instances) if inst.area > 0] if annotation else []


def _with_instances(item: JudgeInput, instances: list[Instance], suffix: str) -> JudgeInput:
    annotation = (item.sample.annotation or Annotation()).model_copy(update={"instances": instances})
    # Same id: an annotation defect is judged in the original's place (not as a duplicate of it).
    sample = item.sample.model_copy(update={"annotation": annotation})
    return JudgeInput(sample=sample, image=item.image, spec=item.spec)


def _with_image(item: JudgeInput, image: np.ndarray, suffix: str | None) -> JudgeInput:
    """New pixels; a new id (`{id}-{suffix}`) for a copy that must be told apart from its original."""
    new_id = item.sample.id if suffix is None else f"{item.sample.id}-{suffix}"
    sample = item.sample.model_copy(update={"id": new_id, "image_sha256": None, "phash": None})
    return JudgeInput(sample=sample, image=image, spec=item.spec)


def _shift_offset(bbox: tuple[float, float, float, float], width: int, height: int,
                  rng: np.random.Generator) -> tuple[int, int] | None:
    """An offset moving the box by ≥ MIN_SHIFT of its size along a random axis, staying inside the image."""
    x, y, w, h = bbox
    options = []
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        amount = MIN_SHIFT * (w if dx else h) + rng.uniform(0.0, 0.3) * (w if dx else h)
        ox, oy = int(np.ceil(dx * amount)), int(np.ceil(dy * amount))
        if x + ox >= 0 and x + w + ox <= width and y + oy >= 0 and y + h + oy <= height:
            options.append((ox, oy))
    if not options:
        return None
    return options[int(rng.integers(len(options)))]


def _shifted_mask(inst: Instance, ox: int, oy: int) -> np.ndarray:
    mask = decode_rle(inst.segmentation) if inst.segmentation is not None else None
    if mask is None:
        raise ValueError("instance has no mask to shift")
    moved = np.zeros_like(mask)
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    keep = (ys + oy >= 0) & (ys + oy < height) & (xs + ox >= 0) & (xs + ox < width)
    moved[ys[keep] + oy, xs[keep] + ox] = True
    return moved


def _shifted_instance(item: JudgeInput, index: int, rng: np.random.Generator, *, box: bool,
                      mask: bool) -> tuple[Instance, tuple[int, int]] | None:
    """Instance `index` with its box and/or mask moved off its object, or None when no move stays inside."""
    inst = item.sample.annotation.instances[index]
    offset = _shift_offset(inst.bbox, item.sample.width, item.sample.height, rng)
    if offset is None:
        return None
    ox, oy = offset
    update: dict = {}
    if box:
        x, y, w, h = inst.bbox
        update["bbox"] = (x + ox, y + oy, w, h)
    if mask:
        moved = _shifted_mask(inst, ox, oy)
        update["segmentation"] = encode_rle(moved)
        update["area"] = int(moved.sum())
    return inst.model_copy(update=update), offset


def _shift(item: JudgeInput, rng: np.random.Generator, *, box: bool, mask: bool, name: str) -> Injected | None:
    visible = [i for i in _visible(item) if item.sample.annotation.instances[i].segmentation is not None]
    rng.shuffle(visible)
    for index in visible:
        shifted = _shifted_instance(item, index, rng, box=box, mask=mask)
        if shifted is None:
            continue
        instances = list(item.sample.annotation.instances)
        instances[index], (ox, oy) = shifted
        return Injected(_with_instances(item, instances, name), f"instance {index} moved by ({ox}, {oy}) px", index)
    return None


def box_shift(item: JudgeInput, rng: np.random.Generator) -> Injected | None:
    """Move one instance's box off its object (its mask stays)."""
    return _shift(item, rng, box=True, mask=False, name="box_shift")


def box_mask_shift(item: JudgeInput, rng: np.random.Generator) -> Injected | None:
    """Move one instance's box and mask together off its object."""
    return _shift(item, rng, box=True, mask=True, name="box_mask_shift")


def mask_shift(item: JudgeInput, rng: np.random.Generator) -> Injected | None:
    """Move one instance's mask off its object (its box stays)."""
    return _shift(item, rng, box=False, mask=True, name="mask_shift")


def degenerate_box(item: JudgeInput, rng: np.random.Generator) -> Injected | None:
    """Collapse one instance's box to under 2 px on one side."""
    visible = _visible(item)
    if not visible:
        return None
    index = visible[int(rng.integers(len(visible)))]
    inst = item.sample.annotation.instances[index]
    x, y, w, h = inst.bbox
    side = float(rng.uniform(0.0, 2.0))
    bbox = (x, y, side, h) if rng.random() < 0.5 else (x, y, w, side)
    instances = list(item.sample.annotation.instances)
    instances[index] = inst.model_copy(update={"bbox": bbox})
    return Injected(_with_instances(item, instances, "degenerate_box"), f"instance {index} box {bbox}", index)


def missing_box(item: JudgeInput, rng: np.random.Generator) -> Injected | None:
    """Drop one visible instance; its object stays in the image."""
    visible = _visible(item)
    if not visible:
        return None
    index = visible[int(rng.integers(len(visible)))]
    instances = [inst for i, inst in enumerate(item.sample.annotation.instances) if i != index]
    return Injected(_with_instances(item, instances, "missing_box"), f"instance {index} dropped", index)


def extra_box(item: JudgeInput, rng: np.random.Generator) -> Injected | None:
    """Add a box (with a filled-box mask) of a spec class where no object is."""
    width, height = item.sample.width, item.sample.height
    occupied = np.zeros((height, width), bool)
    for inst in item.sample.annotation.instances if item.sample.annotation else []:
        x, y, w, h = (round(v) for v in inst.bbox)
        occupied[y:y + h, x:x + w] = True
    for _ in range(50):
        w = int(rng.uniform(0.08, 0.2) * width)
        h = int(rng.uniform(0.08, 0.2) * height)
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        if occupied[y:y + h, x:x + w].any():
            continue
        mask = np.zeros((height, width), bool)
        mask[y:y + h, x:x + w] = True
        category = item.spec.class_names[int(rng.integers(len(item.spec.class_names)))]
        extra = Instance(category=category, bbox=mask_bbox(mask), area=int(mask.sum()), segmentation=encode_rle(mask),
                         source="injected", visible_fraction=1.0)
        instances = [*item.sample.annotation.instances, extra]
        return Injected(_with_instances(item, instances, "extra_box"), f"{category} box at ({x}, {y}, {w}, {h})",
                        len(instances) - 1)
    return None


def _relabelled(item: JudgeInput, index: int, rng: np.random.Generator) -> Instance:
    inst = item.sample.annotation.instances[index]
    others = [c for c in item.spec.class_names if c != inst.category]
    return inst.model_copy(update={"category": others[int(rng.integers(len(others)))]})


def relabel(item: JudgeInput, rng: np.random.Generator) -> Injected | None:
    """Swap one instance's class for another class of the spec."""
    visible = _visible(item)
    if not visible or len(item.spec.class_names) < 2:
        return None
    index = visible[int(rng.integers(len(visible)))]
    instances = list(item.sample.annotation.instances)
    before = instances[index].category
    instances[index] = _relabelled(item, index, rng)
    return Injected(_with_instances(item, instances, "relabel"),
                    f"instance {index}: {before} → {instances[index].category}", index)


def blank(item: JudgeInput, rng: np.random.Generator) -> Injected | None:
    """Replace every pixel with one random mid-range grey."""
    value = int(rng.integers(40, 216))
    return Injected(_with_image(item, np.full_like(item.image, value), None), f"all pixels {value}")


def black(item: JudgeInput, rng: np.random.Generator) -> Injected | None:
    """Replace every pixel with 0."""
    return Injected(_with_image(item, np.zeros_like(item.image), None), "all pixels 0")


def exact_duplicate(item: JudgeInput, rng: np.random.Generator) -> Injected | None:
    """The same pixels under a new sample id (the original must be in the duplicate index)."""
    return Injected(_with_image(item, item.image.copy(), "exact_duplicate"), f"copy of {item.sample.id}")


def near_duplicate(item: JudgeInput, rng: np.random.Generator) -> Injected | None:
    """The same image, a few percent brighter, cropped by a few pixels and resized back."""
    height, width = item.image.shape[:2]
    gain = float(rng.uniform(1.02, 1.06))
    crop = int(rng.integers(1, max(2, min(width, height) // 100 + 2)))
    brighter = np.clip(item.image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    cropped = Image.fromarray(brighter[crop:height - crop, crop:width - crop]).resize(
        (width, height), Image.Resampling.BILINEAR)
    return Injected(_with_image(item, np.asarray(cropped), "near_duplicate"),
                    f"copy of {item.sample.id}, brightness ×{gain:.3f}, crop {crop} px")


INJECTORS: dict[str, Callable[[JudgeInput, np.random.Generator], Injected | None]] = {
    "box_shift": box_shift, "box_mask_shift": box_mask_shift, "mask_shift": mask_shift,
    "degenerate_box": degenerate_box, "missing_box": missing_box, "extra_box": extra_box, "relabel": relabel,
    "blank": blank, "black": black, "exact_duplicate": exact_duplicate, "near_duplicate": near_duplicate,
}


EVERY_INSTANCE_DEFECTS = ("box_shift", "missing_box", "relabel", "mask_shift")


def corrupt_every_instance(defect: str, item: JudgeInput, rng: np.random.Generator) -> Injected | None:
    """`defect` (one of EVERY_INSTANCE_DEFECTS) applied to every visible instance: all boxes (or masks) moved off
    their objects, all classes swapped for other spec classes, or all instances dropped. None when the item
    has no visible instance to spoil (or, for a shift, none that can move inside the image)."""
    if defect not in EVERY_INSTANCE_DEFECTS:
        raise ValueError(f"unknown whole-image defect '{defect}' (known: {', '.join(EVERY_INSTANCE_DEFECTS)})")
    visible = _visible(item)
    if not visible or (defect == "relabel" and len(item.spec.class_names) < 2):
        return None
    instances = list(item.sample.annotation.instances)
    if defect == "missing_box":
        kept = [inst for i, inst in enumerate(instances) if i not in visible]
        return Injected(_with_instances(item, kept, defect), f"{len(visible)} instances dropped")
    changed = 0
    for index in visible:
        if defect == "relabel":
            instances[index] = _relabelled(item, index, rng)
            changed += 1
        elif defect == "box_shift" or instances[index].segmentation is not None:  # a box moves without a mask
            shifted = _shifted_instance(item, index, rng, box=defect == "box_shift", mask=defect == "mask_shift")
            if shifted is not None:
                instances[index], _ = shifted
                changed += 1
    if not changed:
        return None
    return Injected(_with_instances(item, instances, defect), f"{defect} on {changed} of {len(visible)} instances")

