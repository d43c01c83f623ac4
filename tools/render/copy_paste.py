"""The copy_paste renderer: real object cut-outs pasted at the layout's boxes, with exact visible masks.

Steps per image:
1. check inputs; per spec, once: the cut-outs of each class from the asset library (the user's `assets_dir`,
   instances of the user's COCO data, Tux Paint photographs, drawings where no photograph exists) and the
   backgrounds that fit the scene (tools/assets, copy_paste_backgrounds.py);
2. background: a random crop of a fitting photograph (flipped, colour-jittered), or procedural;
3. unlabelled distractors (library photographs of none of the spec's classes) behind everything, more of them
   for harder specs;
4. objects back to front (by depth): a cut-out of the class, varied (flip, small rotation, hue / saturation /
   brightness; perspective and crops for classes with few exemplars), scaled to its box's area with its own
   aspect kept (the layout's box sets size and place, the cut-out its shape: a fork fitted inside a square
   box would be a sliver), pushed across the border now and then on harder specs, composited with a feathered
   edge (Poisson blending or a soft shadow by option); the instance map records the pixels it now owns, so occluded and
   truncated parts are not labelled and a fully hidden object has area 0. Classes nothing covers get
   procedural shapes (compositor_shapes.py);
5. the scene's lighting and style (night, dusk, fog, rain, snow, aerial…; copy_paste_style.py), blur and
   sensor noise from the difficulty, on the image only;
6. provenance: per object the asset id, source, licence and kind, and a measured difficulty; the image's
   difficulty score; the background; the style terms it could not render.
Same layout + spec + seed → same bytes, whatever the batch or thread.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from synthloop.tools.assets.coverage import ClassCoverage, coverage
from synthloop.tools.assets.library import SOURCES, AssetLibrary, Selection, cutout
from synthloop.tools.assets.types import Asset
from synthloop.tools.backend import Capabilities
from synthloop.tools.geometry import pixel_box
from synthloop.tools.render.base import BaseRenderer, RenderResult, RenderReview
from synthloop.tools.render.compositor import scene_prompt
from synthloop.tools.render.compositor_shapes import (
    attribute_colour,
    class_look,
    pattern,
    shading,
    shape_mask,
    stable_hash,
)
from synthloop.tools.render.copy_paste_backgrounds import (
    BackgroundPhoto,
    choose_photos,
    installed_photos,
    render_background,
    user_photos,
)
from synthloop.tools.render.copy_paste_difficulty import PROFILES, image_difficulty, object_difficulty
from synthloop.tools.render.copy_paste_paste import Placed, Variation, fit, paste, prescale, vary
from synthloop.tools.render.copy_paste_style import StyleEffects, apply_effects, style_effects, unsupported_style_terms
from synthloop.tools.types import Layout, LayoutObject, ObjectSpec, TaskSpec

MODEL_ID = "copy-paste-v1"


class CopyPasteOptions(BaseModel):
    """Options of the copy_paste renderer."""

    model_config = ConfigDict(extra="forbid")

    assets_dir: str | None = Field(default=None, description="The user's cut-outs: one folder per class of "
                                                             "PNGs with transparency (DIR/cup/*.png).")
    reference_coco: str | None = Field(default=None, description="The user's COCO instances file: its objects "
                                                                 "are cut out by their masks and used first.")
    reference_images: str | None = Field(default=None, description="Images folder of reference_coco.")
    sources: list[Literal["user", "coco", "tuxpaint", "openclipart"]] = Field(
        default_factory=lambda: list(SOURCES), description="Asset sources to use, in order of preference.")
    use_drawings: Literal["when_no_photos", "always", "never"] = Field(
        default="when_no_photos", description="When clip-art drawings may stand in for photographs.")
    backgrounds_dir: str | None = Field(default=None, description="Background photographs to crop from.")
    background_photos: bool = Field(default=True, description="Use photographs installed locally (Tux Paint "
                                                              "templates, scikit-learn / scikit-image samples).")
    procedural_background_share: float = Field(default=0.4, ge=0.0, le=1.0,
                                               description="Share of images on procedural backgrounds.")
    background_defocus: float = Field(default=4.0, ge=0.0, le=20.0,
                                      description="Largest background blur (Gaussian sigma in px at 512 px), as "
                                                  "in a photograph focused on the objects.")
    blending: Literal["alpha", "feather", "poisson", "mixed"] = Field(
        default="feather", description="Edge blending: hard alpha, feathered alpha, Poisson (OpenCV seamless "
                                       "cloning) or a mix of feather and Poisson.")
    feather: float = Field(default=0.8, ge=0.0, le=5.0, description="Gaussian sigma (px) of the feathered edge.")
    shadow: float = Field(default=0.3, ge=0.0, le=1.0, description="Soft shadow strength (0 = none).")
    distractors: bool = Field(default=True, description="Paste unlabelled objects of other kinds behind.")
    max_rotation: float = Field(default=12.0, ge=0.0, le=180.0, description="Largest rotation (degrees).")
    hue_shift: float = Field(default=0.03, ge=0.0, le=0.5, description="Largest hue change (fraction of the "
                                                                       "colour circle).")
    box_fit: Literal["area", "inside"] = Field(
        default="area", description="How a cut-out takes its layout box: 'area' gives it the box's area with "
                                      "its own aspect (the box sets size and place, the cut-out its shape); "
                                      "'inside' fits it inside the box (a thin object in a square box shrinks).")
    few_exemplars: int = Field(default=5, ge=1, le=1000, description="Below this many cut-outs a class is also "
                                                                     "varied by perspective and crops.")
    cache_dir: str | None = Field(default=None, description="Asset index cache (default "
                                                            "$XDG_CACHE_HOME/synthloop/assets).")


@dataclass(frozen=True)
class _Plan:
    """What a spec renders with: cut-outs per class, distractors, backgrounds and effects."""

    selections: dict[str, Selection]
    distractors: tuple[Asset, ...]
    photos: tuple[BackgroundPhoto, ...]
    effects: StyleEffects
    unsupported: tuple[str, ...]


class CopyPasteRenderer(BaseRenderer):
    """Real cut-outs pasted at the layout's boxes with exact visible masks; procedural shapes for classes no
    asset covers. Options: see CopyPasteOptions."""

    id = "copy_paste"
    Options = CopyPasteOptions
    capabilities = Capabilities(exact_labels=True, provides_masks=True)

    def __init__(self, assets_dir: str | None = None, reference_coco: str | None = None,
                 reference_images: str | None = None, sources: list[str] | None = None,
                 use_drawings: str = "when_no_photos", backgrounds_dir: str | None = None,
                 background_photos: bool = True, procedural_background_share: float = 0.4,
                 background_defocus: float = 4.0,
                 blending: str = "feather", feather: float = 0.8, shadow: float = 0.3, distractors: bool = True,
                 max_rotation: float = 12.0, hue_shift: float = 0.03, box_fit: str = "area",
                 few_exemplars: int = 5, cache_dir: str | None = None) -> None:
        options = CopyPasteOptions(
            assets_dir=assets_dir, reference_coco=reference_coco, reference_images=reference_images,
            sources=list(sources) if sources is not None else list(SOURCES), use_drawings=use_drawings,
            backgrounds_dir=backgrounds_dir, background_photos=background_photos,
            procedural_background_share=procedural_background_share, background_defocus=background_defocus,
            blending=blending, feather=feather,
            shadow=shadow, distractors=distractors, max_rotation=max_rotation, hue_shift=hue_shift,
            box_fit=box_fit, few_exemplars=few_exemplars, cache_dir=cache_dir)
        if (reference_coco is None) != (reference_images is None):
            raise ValueError("reference_coco and reference_images go together")
        self.options = options
        coco = (reference_coco, reference_images) if reference_coco and reference_images else None
        self.library = AssetLibrary(assets_dir=assets_dir, coco=coco, sources=options.sources, cache_dir=cache_dir,
                                    use_drawings=options.use_drawings)
        self._plans: dict[tuple, _Plan] = {}
        self._lock = threading.Lock()

    # --- per spec -------------------------------------------------------------------------------------------

    def plan(self, spec: TaskSpec) -> _Plan:
        """Cut-outs, distractors, backgrounds and effects for `spec` (computed once per spec)."""
        key = (tuple((o.name, tuple(o.attributes), o.prompt) for o in spec.objects), spec.scene, spec.style)
        with self._lock:
            if key not in self._plans:
                self._plans[key] = self._make_plan(spec)
            return self._plans[key]

    def _make_plan(self, spec: TaskSpec) -> _Plan:
        effects = style_effects(spec)
        names = spec.class_names
        selections = {obj.name: self.library.select(obj.name, [spec.scene, spec.style, *_class_context(obj)], names)
                      for obj in spec.objects}
        distractors = tuple(self.library.distractors([s.sense for s in selections.values()])) \
            if self.options.distractors else ()
        photos: list[BackgroundPhoto] = []
        if self.options.backgrounds_dir:
            photos = user_photos(self.options.backgrounds_dir)
        elif self.options.background_photos:
            photos = choose_photos(installed_photos(), effects.scene_tags)
        return _Plan(selections, distractors, tuple(photos), effects, tuple(unsupported_style_terms(spec)))

    def coverage(self, spec: TaskSpec) -> dict[str, ClassCoverage]:
        """Per class of `spec`: where its objects will come from (as this renderer will draw them), how many
        distinct exemplars, and a one-line message (for the plan and the card)."""
        return coverage(spec.class_names, self.library, context=[spec.scene, spec.style],
                        context_for={o.name: _class_context(o) for o in spec.objects})

    def review(self, spec: TaskSpec) -> RenderReview:
        """Where each class's objects come from, and the style terms this renderer cannot draw."""
        notes = tuple(_short_note(c) for c in self.coverage(spec).values())
        return RenderReview(notes=notes, unsupported_style=tuple(self.plan(spec).unsupported),
                            reason="the copy_paste renderer has no effect for it (it draws night, dusk, fog, "
                                   "rain, snow, aerial and similar)")

    # --- per image ------------------------------------------------------------------------------------------

    def render(self, layout: Layout, spec: TaskSpec, seed: int, *, prompt: str = "") -> RenderResult:
        """Render `layout` at (layout.height, layout.width) with exact visible masks and amodal areas."""
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        plan = self.plan(spec)
        profile = PROFILES[spec.difficulty]
        width, height = layout.width, layout.height
        # The scene enters the seed (its backgrounds differ); style words do not, so they never move a mask.
        rng = np.random.default_rng([seed, layout.seed, 0xC0FA57E, stable_hash(spec.scene) >> 32])

        photo = None
        if plan.photos and (self.options.backgrounds_dir or rng.random() >= self.options.procedural_background_share):
            photo = plan.photos[int(rng.integers(len(plan.photos)))]
        defocus = self.options.background_defocus * profile.defocus * min(width, height) / 512
        canvas = render_background(photo, width, height, rng, aerial=plan.effects.aerial,
                                   defocus=defocus).astype(np.float32)
        instance_map = np.zeros((height, width), dtype=np.int32)

        distractor_ids = self._distractors(canvas, plan, profile.distractors, rng)
        amodal_areas = [0] * len(layout.objects)
        placements: list[tuple[int, Placed, dict]] = []
        order = sorted(range(len(layout.objects)), key=lambda i: (layout.objects[i].depth, i))
        for index in order:
            obj = layout.objects[index]
            rgba, path, provenance, allow_flip, few = self._object_cutout(obj, plan, rng)
            variation = Variation(
                max_rotation=180.0 if plan.effects.aerial else self.options.max_rotation,
                hue_shift=0.0 if attribute_colour(obj.attributes) else self.options.hue_shift,
                perspective=0.08 if few else 0.0, crop_probability=0.15 if few else 0.0)
            x0, y0, x1, y1 = pixel_box(obj.box, width, height)
            keep_area = self.options.box_fit == "area"
            varied = vary(_scaled(rgba, path, int(1.3 * _longest_side(rgba, (x1 - x0, y1 - y0), keep_area)) + 2),
                          variation, rng, allow_flip=allow_flip)
            fitted = fit(varied, x1 - x0, y1 - y0, profile.fill, rng, keep_area=keep_area,
                         max_w=int(0.95 * width), max_h=int(0.95 * height))
            x, y = self._position(fitted, (x0, y0, x1, y1), width, height, profile.truncation_probability, rng)
            placed = paste(canvas, instance_map, index + 1, fitted, x, y, feather=self.options.feather,
                           blending=self.options.blending, shadow=self.options.shadow, rng=rng)
            amodal_areas[index] = placed.amodal_area
            placements.append((index, placed, provenance))

        light = float(rng.uniform(*profile.light))
        blur_sigma = self._blur_sigma(plan.effects, profile, rng)
        noise_sigma = 6.0 if "noise" in plan.effects.effects else float(rng.uniform(*profile.noise_sigma))
        image = _finish(canvas, light, plan.effects.effects, blur_sigma, noise_sigma, rng)

        objects_info, scores = self._provenance(image, instance_map, placements, len(layout.objects),
                                                blur_sigma, len(distractor_ids))
        info = {
            "objects": objects_info,
            "difficulty_score": image_difficulty(scores, blur_sigma, len(layout.objects) + len(distractor_ids)),
            "background": {"source": photo.source, "path": photo.path} if photo else {"source": "procedural"},
            "distractors": distractor_ids,
            "style_effects": sorted(plan.effects.effects),
            "unsupported_style_terms": list(plan.unsupported),
        }
        return RenderResult(image=image, instance_map=instance_map, amodal_areas=amodal_areas,
                            backend={"renderer": self.id, "model": MODEL_ID}, prompt=scene_prompt(layout, spec),
                            info=info)

    def _object_cutout(self, obj: LayoutObject, plan: _Plan,
                       rng: np.random.Generator) -> tuple[np.ndarray, str, dict, bool, bool]:
        """A cut-out for one object (RGBA uint8), its path ('' when procedural), its provenance, whether it may
        be mirrored, and whether its class has few exemplars."""
        selection = plan.selections.get(obj.category)
        if selection is None or not selection.assets:
            return (_procedural_cutout(obj, rng), "", {"asset": "procedural", "source": "procedural",
                                                       "licence": "generated", "kind": "procedural"}, True, False)
        asset = self._best_fitting(selection.assets, obj, rng)
        provenance = {"asset": asset.id, "source": asset.source, "licence": asset.licence, "kind": asset.kind,
                      "alpha_quality": asset.alpha_quality}
        few = len(selection.assets) < self.options.few_exemplars
        return cutout(asset.path), asset.path, provenance, not asset.noflip, few

    @staticmethod
    def _best_fitting(assets: tuple[Asset, ...], obj: LayoutObject, rng: np.random.Generator) -> Asset:
        """Of a few exemplars drawn at random, the one whose shape best fills the object's box (its fitted
        area is largest), so annotated boxes stay close to the layout's."""
        box_w, box_h = obj.box[2] - obj.box[0], obj.box[3] - obj.box[1]
        candidates = [assets[int(i)] for i in rng.integers(len(assets), size=min(3, len(assets)))]

        def filled(asset: Asset) -> float:
            width, height, solid = _shape(asset.path)
            scale = min(box_w / width, box_h / height)
            return width * height * scale * scale * solid

        return max(candidates, key=filled)

    def _distractors(self, canvas: np.ndarray, plan: _Plan, count_range: tuple[int, int],
                     rng: np.random.Generator) -> list[str]:
        if not plan.distractors:
            return []
        height, width = canvas.shape[:2]
        side = min(width, height)
        ids = []
        for _ in range(int(rng.integers(count_range[0], count_range[1] + 1))):
            asset = plan.distractors[int(rng.integers(len(plan.distractors)))]
            box = max(8, int(side * rng.uniform(0.08, 0.25)))
            rgba = vary(_scaled(cutout(asset.path), asset.path, int(box * 1.3) + 2), Variation(max_rotation=20.0),
                        rng, allow_flip=not asset.noflip)
            fitted = fit(rgba, box, box, (0.8, 1.0), rng)
            h, w = fitted.shape[:2]
            x = int(rng.integers(-w // 4, max(1, width - 3 * w // 4)))
            y = int(rng.integers(-h // 4, max(1, height - 3 * h // 4)))
            paste(canvas, None, 0, fitted, x, y, feather=self.options.feather, blending="feather",
                  shadow=self.options.shadow, rng=rng)
            ids.append(asset.id)
        return ids

    @staticmethod
    def _position(fitted: np.ndarray, box: tuple[int, int, int, int], width: int, height: int,
                  truncation_probability: float, rng: np.random.Generator) -> tuple[int, int]:
        """Top-left corner of a fitted cut-out inside its box; pushed partly across an image border that the
        box touches with `truncation_probability` (at most a third of the object leaves the image)."""
        x0, y0, x1, y1 = box
        h, w = fitted.shape[:2]
        # Inside its box where it fits; centred on the box (and kept in the image) where it is larger.
        x = x0 + int(rng.integers(0, x1 - x0 - w + 1)) if w <= x1 - x0 else min(max(0, (x0 + x1 - w) // 2), width - w)
        y = y0 + int(rng.integers(0, y1 - y0 - h + 1)) if h <= y1 - y0 else min(max(0, (y0 + y1 - h) // 2), height - h)
        if truncation_probability and rng.random() < truncation_probability:
            margin_x, margin_y = max(2, width // 50), max(2, height // 50)
            shift_x, shift_y = int(w * rng.uniform(0.1, 0.33)), int(h * rng.uniform(0.1, 0.33))
            if x0 <= margin_x:
                x = -shift_x
            elif x1 >= width - margin_x:
                x = width - w + shift_x
            if y0 <= margin_y:
                y = -shift_y
            elif y1 >= height - margin_y:
                y = height - h + shift_y
        return x, y

    @staticmethod
    def _blur_sigma(effects: StyleEffects, profile, rng: np.random.Generator) -> float:
        if "blur" in effects.effects:
            return float(rng.uniform(1.2, 2.0))
        if profile.blur_probability and rng.random() < profile.blur_probability:
            return float(rng.uniform(*profile.blur_sigma))
        return 0.0

    @staticmethod
    def _provenance(image: np.ndarray, instance_map: np.ndarray, placements: list[tuple[int, Placed, dict]],
                    n: int, blur_sigma: float, n_distractors: int) -> tuple[list[dict], list[dict]]:
        """Per object (layout order): provenance plus measured difficulty terms."""
        counts = np.bincount(instance_map.ravel(), minlength=n + 1)
        by_index: dict[int, dict] = {}
        scores = []
        for index, placed, provenance in placements:
            x0, y0, x1, y1 = placed.box
            h, w = instance_map.shape
            bx0, by0, bx1, by1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
            mask = np.zeros((h, w), bool)
            if bx1 > bx0 and by1 > by0:
                mask[by0:by1, bx0:bx1] = instance_map[by0:by1, bx0:bx1] == index + 1
            terms = object_difficulty(image, mask, (bx0, by0, bx1, by1), int(counts[index + 1]), placed.amodal_area,
                                      placed.outside_area, blur_sigma, n + n_distractors)
            scores.append(terms)
            by_index[index] = {**provenance, "difficulty": terms}
        return [by_index[i] for i in range(n) if i in by_index], scores


_SIDES = (24, 32, 48, 64, 96, 128, 160, 192, 256, 320, 384, 448, 512)


def _longest_side(rgba: np.ndarray, box: tuple[int, int], keep_area: bool) -> float:
    """The longer side (px) a cut-out will take in a box of (width, height): the box's longer side when it fits
    inside, else the side of the box's area stretched by the cut-out's own aspect."""
    if not keep_area:
        return float(max(box))
    aspect = max(rgba.shape[0], rgba.shape[1]) / max(1, min(rgba.shape[0], rgba.shape[1]))
    return float(np.sqrt(box[0] * box[1] * aspect))


def _scaled(rgba: np.ndarray, path: str, side: int) -> np.ndarray:
    """The cut-out shrunk to the smallest standard side ≥ `side` (cached per asset and side when it has a path)."""
    bucket = next((s for s in _SIDES if s >= side), _SIDES[-1])
    return _scaled_cutout(path, bucket) if path else prescale(rgba, bucket)


@functools.lru_cache(maxsize=2048)
def _scaled_cutout(path: str, side: int) -> np.ndarray:
    scaled = prescale(cutout(path), side)
    scaled.setflags(write=False)
    return scaled


@functools.lru_cache(maxsize=1024)
def _shape(path: str) -> tuple[int, int, float]:
    """Width, height and opaque fraction of a cut-out."""
    rgba = cutout(path)
    return rgba.shape[1], rgba.shape[0], float((rgba[:, :, 3] > 127).mean())


def _class_context(obj: ObjectSpec) -> list[str]:
    """Words of a class's spec that help place its meaning (attributes, prompt)."""
    return [*obj.attributes, obj.prompt]


def _finish(canvas: np.ndarray, light: float, effects: frozenset[str], blur_sigma: float, noise_sigma: float,
            rng: np.random.Generator) -> np.ndarray:
    """Lighting, style effects, blur and sensor noise on the finished float canvas (never on masks), as uint8."""
    import cv2

    canvas *= np.float32(light)
    if effects:
        canvas = apply_effects(np.clip(canvas, 0, 255).astype(np.uint8), effects, rng).astype(np.float32)
    if blur_sigma > 0:
        canvas = cv2.GaussianBlur(canvas, (0, 0), blur_sigma)
    if noise_sigma > 0:
        height, width = canvas.shape[:2]
        tile = _noise_tile(-(-(height + 64) // 256) * 256, -(-(width + 64) // 256) * 256)
        oy, ox = int(rng.integers(0, 65)), int(rng.integers(0, 65))
        canvas += tile[oy:oy + height, ox:ox + width] * np.float32(noise_sigma)
    np.clip(canvas, 0, 255, out=canvas)
    return canvas.astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _noise_tile(height: int, width: int) -> np.ndarray:
    """Seed-independent unit Gaussian noise; images take random offsets into it (cheaper than fresh noise)."""
    tile = np.random.default_rng(7331).standard_normal((height, width, 3), dtype=np.float32)
    tile.setflags(write=False)
    return tile


def _procedural_cutout(obj: LayoutObject, rng: np.random.Generator) -> np.ndarray:
    """A procedural shape for a class no asset covers (the compositor's class look), as an RGBA cut-out."""
    size = 160
    look = class_look(obj.category)
    mask = shape_mask(look.shape, size, size, rng, look)
    named = attribute_colour(obj.attributes)
    base = np.array(named if named is not None else look.colour, np.float32) + rng.uniform(-20, 20, 3)
    second = np.array(look.secondary, np.float32)
    weights = pattern(look.texture, size, size, rng)
    colours = np.broadcast_to(base, (size, size, 3)).astype(np.float32) if weights is None \
        else base + weights[:, :, None] * (second - base)
    colours = colours * shading(size, size, rng, strength=0.25)
    return np.dstack([np.clip(colours, 0, 255), mask * 255.0]).astype(np.uint8)


def _short_note(coverage: ClassCoverage) -> str:
    """One line of the plan per class: its sources, then short flags (the card has the long form)."""
    if not coverage.exemplars:
        return coverage.message  # says how to give examples
    text = coverage.message.split("; ")[0]
    flags = []
    if coverage.exemplars < 5:
        flags.append("few exemplars, varied by the renderer; more with --assets")
    if coverage.alternatives and coverage.source not in ("user", "coco"):
        flags.append(f"taken as: {coverage.sense}")
    return text + (f" ({'; '.join(flags)})" if flags else "")
