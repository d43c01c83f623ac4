"""The embedded CPU renderer: procedural objects composited on procedural backgrounds, with exact masks.

Steps per image:
1. check inputs (a non-negative seed);
2. background (gradient, low-frequency noise or tiles; palette from the scene text, variety from the seed)
   plus unlabelled low-contrast clutter, more of it for harder specs;
3. objects back to front (by depth), each drawn on its own box-sized crop: a class look (shape family,
   palette, texture from a stable hash of the class name; a colour attribute such as "red" wins over the
   palette), per-instance variation, a lighting gradient, and a colour pushed away from what it covers so it
   stays clearly visible; the instance map records exactly the pixels each object paints;
4. domain randomisation on the image only (brightness, contrast, gamma, colour cast, optional slight blur,
   sensor noise), so masks never move.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from synthloop.tools.backend import Capabilities
from synthloop.tools.geometry import pixel_box
from synthloop.tools.render.base import BaseRenderer, RenderResult, RenderReview
from synthloop.tools.render.compositor_scene import background, clutter, domain_randomise
from synthloop.tools.render.compositor_shapes import (
    TEXTURES,
    attribute_colour,
    class_look,
    pattern,
    shading,
    shape_mask,
    stable_hash,
)
from synthloop.tools.types import Layout, LayoutObject, TaskSpec

MODEL_ID = "procedural-v1"


class CompositorOptions(BaseModel):
    """Options of the procedural compositor."""

    model_config = ConfigDict(extra="forbid")

    min_contrast: float = Field(default=70.0, ge=0.0, le=255.0,
                                description="Least RGB distance between an object's mean colour and what it covers.")
    blur_probability: float = Field(default=0.2, ge=0.0, le=1.0,
                                    description="Chance of a slight Gaussian blur on the final image.")
    noise: bool = Field(default=True, description="Add sensor noise to the final image.")


class CompositorRenderer(BaseRenderer):
    """Procedural shapes composited with exact instance maps; same layout + spec + seed → identical pixels.

    min_contrast: least RGB distance between an object's mean colour and the mean of what it covers.
    blur_probability: chance of a slight Gaussian blur on the final image.
    noise: add sensor noise to the final image.
    """

    id = "compositor"
    Options = CompositorOptions
    capabilities = Capabilities(exact_labels=True, provides_masks=True)

    def __init__(self, min_contrast: float = 70.0, blur_probability: float = 0.2, noise: bool = True) -> None:
        if not 0.0 <= min_contrast <= 255.0:
            raise ValueError(f"min_contrast must be in [0, 255], got {min_contrast}")
        if not 0.0 <= blur_probability <= 1.0:
            raise ValueError(f"blur_probability must be in [0, 1], got {blur_probability}")
        self.min_contrast = min_contrast
        self.blur_probability = blur_probability
        self.noise = noise

    def review(self, spec: TaskSpec) -> RenderReview:
        """Every class is a procedural shape, and no style is drawn."""
        base = super().review(spec)
        notes = tuple(f"{name}: procedural shapes, not real objects (the copy_paste renderer pastes real "
                      "cut-outs)" for name in spec.class_names)
        return RenderReview(notes=notes, unsupported_style=base.unsupported_style, reason=base.reason)

    def render(self, layout: Layout, spec: TaskSpec, seed: int, *, prompt: str = "") -> RenderResult:
        """Render `layout` at (layout.height, layout.width) with exact visible masks and amodal areas (the
        compositor draws no text: `prompt` is ignored)."""
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        width, height = layout.width, layout.height
        rng = np.random.default_rng([seed, layout.seed, 0xC0417])
        scene_key = stable_hash(f"{spec.scene}|{spec.style}") & 0xFFFFFFFF

        bg_rng = np.random.default_rng([seed, scene_key])
        ground_image = background(width, height, bg_rng, light=_preferred_ground(layout.objects))
        clutter(ground_image, spec.difficulty, rng)
        ground = np.array(ground_image)
        canvas = ground.copy()
        instance_map = np.zeros((height, width), dtype=np.int32)

        amodal_areas = [0] * len(layout.objects)
        order = sorted(range(len(layout.objects)), key=lambda i: (layout.objects[i].depth, i))
        for index in order:
            amodal_areas[index] = self._paint(
                canvas, ground, instance_map, layout.objects[index], index + 1, rng
            )

        image = domain_randomise(Image.fromarray(canvas), rng, self.blur_probability, self.noise)
        return RenderResult(
            image=image,
            instance_map=instance_map,
            amodal_areas=amodal_areas,
            backend={"renderer": self.id, "model": MODEL_ID},
            prompt=scene_prompt(layout, spec),
        )

    def _paint(
        self,
        canvas: np.ndarray,
        ground: np.ndarray,
        instance_map: np.ndarray,
        obj: LayoutObject,
        label: int,
        rng: np.random.Generator,
    ) -> int:
        """Draw one object into its box crop; return its full (amodal) pixel area.

        The object must stand out both from what it directly covers (`canvas`, objects behind included) and
        from the bare background there (`ground`), since either can surround its visible outline.
        """
        height, width = instance_map.shape
        x0, y0, x1, y1 = pixel_box(obj.box, width, height)
        w, h = x1 - x0, y1 - y0
        look = class_look(obj.category)
        mask = shape_mask(look.shape, w, h, rng, look)

        named = attribute_colour(obj.attributes)
        if named is not None:
            base = np.array(named, dtype=np.float32) + rng.uniform(-10, 10, 3).astype(np.float32)
            second = base * np.float32(rng.uniform(0.6, 0.8))
        else:
            base = np.array(look.colour, dtype=np.float32) + rng.uniform(-25, 25, 3).astype(np.float32)
            second = np.array(look.secondary, dtype=np.float32) + rng.uniform(-20, 20, 3).astype(np.float32)
        texture = look.texture if rng.random() < 0.6 else TEXTURES[int(rng.integers(len(TEXTURES)))]
        weights = pattern(texture, w, h, rng)
        if weights is None:
            colours = np.broadcast_to(base, (h, w, 3)).astype(np.float32)
        else:
            colours = base + weights[:, :, None] * (second - base)
        colours *= shading(w, h, rng, strength=float(rng.uniform(0.1, 0.35)))

        crop = canvas[y0:y1, x0:x1]
        # Means on a strided subsample (≤ ~32×32 points) are plenty for a contrast decision.
        stride = max(1, min(w, h) // 32)
        sub = mask[::stride, ::stride]
        if not sub.any():
            stride, sub = 1, mask
        covered = crop[::stride, ::stride][sub].mean(axis=0)
        bare = ground[y0:y1:stride, x0:x1:stride][sub].mean(axis=0)
        mean = colours[::stride, ::stride][sub].mean(axis=0)
        colours = _ensure_contrast(colours, mean, [covered, bare], self.min_contrast)

        pixels = np.clip(colours, 0, 255).astype(np.uint8)
        np.copyto(crop, pixels, where=mask[:, :, None])
        instance_map[y0:y1, x0:x1][mask] = label
        return int(mask.sum())


def _ensure_contrast(
    colours: np.ndarray, mean: np.ndarray, references: list[np.ndarray], minimum: float
) -> np.ndarray:
    """Darken or lighten the object (keeping its hue) until its mean is `minimum` away from every reference.

    `mean` is the object's mean colour, `references` mean colours of its surroundings. The smallest change
    that works wins, the object's current side (lighter or darker than its surroundings) tried first.
    """

    def far_enough(colour: np.ndarray) -> bool:
        return all(float(np.linalg.norm(colour - r)) >= minimum for r in references)

    if far_enough(mean):
        return colours
    surround = float(np.mean(references))
    lighter_first = float(mean.mean()) >= surround
    for step in (0.15, 0.3, 0.45, 0.6, 0.75, 0.9):
        for lighten in (lighter_first, not lighter_first):
            # Both transforms are affine, so the transformed mean predicts the result without touching pixels.
            if far_enough(mean + (255.0 - mean) * step if lighten else mean * (1 - step)):
                return _adjust(colours, step, lighten)
    return _adjust(colours, 0.9, surround < 128.0)


def _adjust(colours: np.ndarray, step: float, lighten: bool) -> np.ndarray:
    """Blend towards white (lighten) or scale towards black by `step`."""
    if lighten:
        return colours + (np.float32(255.0) - colours) * np.float32(step)
    return colours * np.float32(1.0 - step)


def _preferred_ground(objects: list[LayoutObject]) -> bool | None:
    """Light (True) or dark (False) background so that named object colours keep their colour; None: any."""
    lumas = []
    for obj in objects:
        named = attribute_colour(obj.attributes)
        if named is not None:
            lumas.append(0.299 * named[0] + 0.587 * named[1] + 0.114 * named[2])
    if lumas and min(lumas) > 150:
        return False
    if lumas and max(lumas) < 90:
        return True
    return None


def scene_prompt(layout: Layout, spec: TaskSpec) -> str:
    """A short text description of the rendered scene, e.g. "kitchen counter with 2 red cup, 1 plate"."""
    prompts = {o.name: o.render_prompt for o in spec.objects}
    counts = Counter(
        " ".join([*o.attributes, o.category]) if o.category not in prompts else prompts[o.category]
        for o in layout.objects
    )
    parts = ", ".join(f"{n} {what}" for what, n in counts.items())
    text = f"{spec.scene or 'a scene'} with {parts}" if parts else (spec.scene or "an empty scene")
    return f"{text}, {spec.style}" if spec.style else text
