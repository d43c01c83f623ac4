"""The embedded CPU renderer: procedural objects composited on procedural backgrounds, with exact masks.

Steps per image:
1. check inputs;
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

import colorsys
from collections import Counter
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from synthloop.tools.render.base import RenderResult
from synthloop.tools.render.compositor_shapes import (
    TEXTURES,
    attribute_colour,
    class_look,
    pattern,
    shading,
    shape_mask,
    stable_hash,
)
from synthloop.tools.types import Difficulty, Layout, LayoutObject, TaskSpec

MODEL_ID = "procedural-v1"
_CLUTTER = {Difficulty.easy: (0, 3), Difficulty.medium: (2, 7), Difficulty.hard: (8, 20)}
_NOISE_SIGMAS = (0.0, 2.0, 4.0, 6.0)
_NOISE_MARGIN = 64


class CompositorRenderer:
    """Procedural compositor with exact instance maps; same layout + spec + seed → identical pixels.

    min_contrast: least RGB distance between an object's mean colour and the mean of what it covers.
    blur_probability: chance of a slight Gaussian blur on the final image.
    noise: add sensor noise to the final image.
    """

    id = "compositor"

    def __init__(self, min_contrast: float = 70.0, blur_probability: float = 0.2, noise: bool = True) -> None:
        if not 0.0 <= min_contrast <= 255.0:
            raise ValueError(f"min_contrast must be in [0, 255], got {min_contrast}")
        if not 0.0 <= blur_probability <= 1.0:
            raise ValueError(f"blur_probability must be in [0, 1], got {blur_probability}")
        self.min_contrast = min_contrast
        self.blur_probability = blur_probability
        self.noise = noise

    def render(self, layout: Layout, spec: TaskSpec, seed: int) -> RenderResult:
        """Render `layout` at (layout.height, layout.width) with exact visible masks and amodal areas."""
        width, height = layout.width, layout.height
        rng = np.random.default_rng([seed, layout.seed, 0xC0417])
        scene_key = stable_hash(f"{spec.scene}|{spec.style}") & 0xFFFFFFFF

        bg_rng = np.random.default_rng([seed, scene_key])
        background = _background(width, height, bg_rng, light=_preferred_ground(layout.objects))
        _clutter(background, spec.difficulty, rng)
        ground = np.array(background)
        canvas = ground.copy()
        instance_map = np.zeros((height, width), dtype=np.int32)

        amodal_areas = [0] * len(layout.objects)
        order = sorted(range(len(layout.objects)), key=lambda i: (layout.objects[i].depth, i))
        for index in order:
            amodal_areas[index] = self._paint(
                canvas, ground, instance_map, layout.objects[index], index + 1, rng
            )

        image = _domain_randomise(Image.fromarray(canvas), rng, self.blur_probability, self.noise)
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
        x0, y0, x1, y1 = _pixel_box(obj.box, width, height)
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


def _pixel_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """Normalised xyxy → integer pixel xyxy, at least one pixel each way and inside the image."""
    x0 = min(round(box[0] * width), width - 1)
    y0 = min(round(box[1] * height), height - 1)
    x1 = max(min(round(box[2] * width), width), x0 + 1)
    y1 = max(min(round(box[3] * height), height), y0 + 1)
    return x0, y0, x1, y1


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


def _background(width: int, height: int, rng: np.random.Generator, light: bool | None = None) -> Image.Image:
    """A muted background (gradient, low-frequency noise or tiles), light or dark (None: either)."""
    hue = rng.uniform(0, 1)
    coin = rng.random() < 0.5
    light = coin if light is None else light
    c0 = _muted(hue, rng, light)
    c1 = _muted((hue + rng.uniform(-0.12, 0.12)) % 1.0, rng, light)
    kind = rng.choice(["gradient", "noise", "tiles"], p=[0.35, 0.4, 0.25])
    if kind == "tiles":
        tile = int(rng.integers(max(8, min(width, height) // 20), max(9, min(width, height) // 5)))
        nx, ny = width // tile + 1, height // tile + 1
        t = (np.indices((ny, nx)).sum(axis=0) % 2)[:, :, None] * rng.uniform(0.5, 1.0)
        t = t + rng.uniform(-0.12, 0.12, (ny, nx, 1))
        small = np.clip(c0 + t * (c1 - c0), 0, 255).astype(np.uint8)
        full = np.array(Image.fromarray(small).resize((nx * tile, ny * tile), Image.Resampling.NEAREST))
        grout = np.clip((c0 + c1) / 2 * rng.uniform(0.6, 0.85), 0, 255).astype(np.uint8)
        full[::tile] = grout
        full[:, ::tile] = grout
        return Image.fromarray(full[:height, :width])
    if kind == "gradient":
        theta = rng.uniform(0, 2 * np.pi)
        g = np.linspace(-0.5, 0.5, 8)
        t = 0.5 + g[None, :] * np.cos(theta) + g[:, None] * np.sin(theta)
    else:
        cells = int(rng.integers(3, 9))
        t = rng.random((cells, cells))
    small = np.clip(c0 + t[:, :, None] * (c1 - c0), 0, 255).astype(np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)


def _muted(hue: float, rng: np.random.Generator, light: bool) -> np.ndarray:
    """A low-saturation RGB colour (float, 0–255), light or dark, so saturated objects stand out."""
    sat = rng.uniform(0.05, 0.35)
    val = rng.uniform(0.7, 0.95) if light else rng.uniform(0.15, 0.4)
    return np.array(colorsys.hsv_to_rgb(hue, sat, val), dtype=np.float64) * 255.0


def _clutter(background: Image.Image, difficulty: Difficulty, rng: np.random.Generator) -> None:
    """Draw unlabelled low-contrast marks (lines, specks, patches) onto the background in place."""
    lo, hi = _CLUTTER[difficulty]
    count = int(rng.integers(lo, hi + 1))
    if count == 0:
        return
    width, height = background.size
    side = min(width, height)
    draw = ImageDraw.Draw(background)
    pixels = background.load()
    for _ in range(count):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        near = np.array(pixels[x, y], dtype=np.float64)
        colour = tuple(int(v) for v in np.clip(near + rng.uniform(-30, 30, 3), 0, 255))
        size = max(2, int(side * rng.uniform(0.01, 0.05)))
        kind = int(rng.integers(3))
        if kind == 0:
            end = (
                x + int(rng.integers(-3 * size, 3 * size + 1)),
                y + int(rng.integers(-3 * size, 3 * size + 1)),
            )
            draw.line([(x, y), end], fill=colour, width=max(1, size // 4))
        elif kind == 1:
            draw.ellipse((x, y, x + size, y + size), fill=colour)
        else:
            draw.rectangle((x, y, x + size, y + size // 2 + 1), fill=colour)


def _domain_randomise(
    image: Image.Image, rng: np.random.Generator, blur_probability: float, noise: bool
) -> np.ndarray:
    """Global photometric jitter, optional blur and sensor noise; returns a writable (H, W, 3) uint8 array."""
    x = np.arange(256, dtype=np.float64) / 255.0
    gamma = rng.uniform(0.85, 1.15)
    contrast = rng.uniform(0.88, 1.12)
    brightness = rng.uniform(-18, 18)
    cast = rng.uniform(-10, 10, 3)
    base = (x**gamma * 255.0 - 128.0) * contrast + 128.0 + brightness
    lut = np.clip(np.round(base[None, :] + cast[:, None]), 0, 255).astype(np.uint8)
    image = image.point(lut.ravel().tolist())
    if rng.random() < blur_probability:
        # A fractional box blur: close to a slight Gaussian at a third of GaussianBlur's cost.
        image = image.filter(ImageFilter.BoxBlur(radius=float(rng.uniform(0.3, 0.7))))
    sigma = _NOISE_SIGMAS[int(rng.integers(len(_NOISE_SIGMAS)))] if noise else 0.0
    if sigma > 0:
        width, height = image.size
        tile = _sensor_noise(sigma, width + _NOISE_MARGIN, height + _NOISE_MARGIN)
        ox, oy = int(rng.integers(0, _NOISE_MARGIN + 1)), int(rng.integers(0, _NOISE_MARGIN + 1))
        image = ImageChops.add(image, tile.crop((ox, oy, ox + width, oy + height)), scale=1.0, offset=-128)
    return np.array(image)


@lru_cache(maxsize=8)
def _sensor_noise(sigma: float, width: int, height: int) -> Image.Image:
    """A seed-independent Gaussian noise image centred on 128; renders take random offsets into it."""
    rng = np.random.default_rng(7331)
    values = rng.normal(128.0, sigma, (height, width, 3))
    return Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8))


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
