"""Scene and style words for the copy_paste renderer: which background tags a scene asks for, and which
lighting / weather / camera effects the style asks for; `unsupported_style_terms` names the rest so the plan
can say what this renderer cannot render.

Effects are applied to the finished image (lighting, colour temperature, fog, rain streaks, snow flakes);
they never move a mask. `aerial` / `top-down` also pick aerial backgrounds and let objects turn freely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from synthloop.tools.types import TaskSpec

# Scene words → background tags (see copy_paste_backgrounds.CATALOGUE).
SCENE_TAGS: dict[str, str] = {
    **dict.fromkeys(("kitchen", "table", "counter", "countertop", "desk", "office", "indoor", "indoors", "room",
                     "living", "bedroom", "restaurant", "dining", "shelf", "workshop", "studio", "floor", "home",
                     "house", "tabletop", "bench", "factory", "warehouse", "store", "shop"), "surface"),
    **dict.fromkeys(("street", "road", "city", "town", "urban", "parking", "highway", "traffic", "sidewalk",
                     "intersection", "downtown", "building", "buildings", "station"), "city"),
    **dict.fromkeys(("beach", "sea", "ocean", "coast", "harbor", "harbour", "lake", "river", "water", "shore",
                     "port", "pond"), "water"),
    **dict.fromkeys(("forest", "park", "garden", "field", "farm", "grass", "meadow", "nature", "outdoor",
                     "outdoors", "wood", "woods", "countryside", "savanna", "savannah", "zoo", "jungle", "yard",
                     "backyard", "mountain", "mountains", "hill", "trail", "camp"), "nature"),
    **dict.fromkeys(("sky", "air", "clouds", "airport"), "sky"),
    **dict.fromkeys(("aerial", "overhead", "satellite", "drone", "top-down", "topdown", "bird's-eye"), "aerial"),
    **dict.fromkeys(("rock", "rocks", "stone", "cliff", "desert", "quarry", "cave"), "stone"),
}
STYLE_EFFECTS: dict[str, str] = {
    **dict.fromkeys(("night", "nighttime", "dark", "low-light", "dim", "moonlight", "midnight"), "night"),
    **dict.fromkeys(("dusk", "sunset", "sunrise", "dawn", "evening", "golden", "twilight", "warm"), "warm"),
    **dict.fromkeys(("cold", "cool", "blue", "winter", "icy"), "cool"),
    **dict.fromkeys(("rain", "rainy", "raining", "storm", "stormy", "wet", "drizzle"), "rain"),
    **dict.fromkeys(("fog", "foggy", "mist", "misty", "haze", "hazy", "smog", "smoky"), "fog"),
    **dict.fromkeys(("snow", "snowy", "snowing", "blizzard", "snowfall"), "snow"),
    **dict.fromkeys(("aerial", "overhead", "top-down", "topdown", "satellite", "drone", "bird's-eye"), "aerial"),
    **dict.fromkeys(("bright", "sunny", "daylight", "day", "daytime", "midday", "noon", "morning", "afternoon",
                     "clear", "overcast", "cloudy", "indoor", "outdoor", "natural", "realistic", "photo",
                     "photographic", "photorealistic", "real", "soft", "harsh", "studio"), "neutral"),
    **dict.fromkeys(("blur", "blurry", "blurred", "motion", "defocused", "out-of-focus"), "blur"),
    **dict.fromkeys(("grayscale", "greyscale", "monochrome", "black-and-white", "b&w"), "gray"),
    **dict.fromkeys(("sepia", "vintage", "old"), "sepia"),
    **dict.fromkeys(("noisy", "grainy", "grain", "noise"), "noise"),
    **dict.fromkeys(("cluttered", "busy", "messy", "crowded"), "clutter"),
}
_FILLER = frozenset({"a", "an", "the", "and", "with", "of", "in", "at", "light", "lighting", "view", "shot", "scene",
                     "weather", "time", "style", "look", "photo", "image", "images", "camera", "angle", "very",
                     "slightly", "lit", "from", "above", "eye", "bird", "s", "conditions", "sky"})


@dataclass(frozen=True)
class StyleEffects:
    """The effects a spec's scene and style ask for."""

    effects: frozenset[str]
    scene_tags: frozenset[str]

    @property
    def aerial(self) -> bool:
        """Top-down view: aerial backgrounds and freely rotated objects."""
        return "aerial" in self.effects or "aerial" in self.scene_tags


def _terms(text: str) -> list[str]:
    """Comma / 'and' separated terms of a style text ('night, light rain and fog' → 3 terms)."""
    parts = re.split(r",|;|\band\b|\bwith\b", text.lower())
    return [p.strip() for p in parts if p.strip()]


def _words(term: str) -> list[str]:
    term = term.replace("top down", "top-down").replace("black and white", "black-and-white")
    term = term.replace("bird's eye", "bird's-eye").replace("low light", "low-light").replace("out of focus",
                                                                                               "out-of-focus")
    return re.findall(r"[a-z&'\-]+", term)


def style_effects(spec: TaskSpec) -> StyleEffects:
    """What this renderer does for the spec's scene and style words."""
    effects = {STYLE_EFFECTS[w] for term in _terms(spec.style) for w in _words(term) if w in STYLE_EFFECTS}
    scene_words = [w for term in _terms(f"{spec.scene}, {spec.style}") for w in _words(term)]
    tags = {SCENE_TAGS[w] for w in scene_words if w in SCENE_TAGS}
    effects |= {STYLE_EFFECTS[w] for w in _words(spec.scene) if w in STYLE_EFFECTS and STYLE_EFFECTS[w] != "neutral"}
    return StyleEffects(frozenset(effects - {"neutral"}), frozenset(tags))


def unsupported_style_terms(spec: TaskSpec) -> list[str]:
    """The spec's style terms this renderer cannot render (none of their words is a known effect), in order."""
    unsupported = []
    for term in _terms(spec.style):
        words = [w for w in _words(term) if w not in _FILLER]
        if words and not any(w in STYLE_EFFECTS or w in SCENE_TAGS for w in words):
            unsupported.append(term)
    return unsupported


def apply_effects(image: np.ndarray, effects: frozenset[str], rng: np.random.Generator) -> np.ndarray:
    """The image (H, W, 3 uint8) with lighting, colour and weather effects applied."""
    out = image.astype(np.float32)
    height, width = out.shape[:2]
    if "night" in effects:
        out = 255.0 * (out / 255.0) ** rng.uniform(1.6, 2.2) * rng.uniform(0.45, 0.65)
        out *= np.array([0.8, 0.9, 1.15], np.float32)
    if "warm" in effects:
        out *= np.array([1.12, 1.0, 0.8], np.float32) * rng.uniform(0.9, 1.0)
    if "cool" in effects:
        out *= np.array([0.88, 0.97, 1.12], np.float32)
    if "gray" in effects:
        out[:] = (out @ np.array([0.299, 0.587, 0.114], np.float32))[:, :, None]
    if "sepia" in effects:
        gray = out @ np.array([0.299, 0.587, 0.114], np.float32)
        out = gray[:, :, None] * np.array([1.07, 0.94, 0.74], np.float32)
    if "fog" in effects:
        haze = _smooth_noise(width, height, rng) * rng.uniform(0.35, 0.6)
        out = out * (1 - haze[:, :, None]) + 215.0 * haze[:, :, None]
    if "rain" in effects:
        out = out * 0.8 + _rain(width, height, rng)[:, :, None] * 0.7
    if "snow" in effects:
        out = out * 0.92 + 20.0
        flakes = _snow(width, height, rng)
        out = out * (1 - flakes[:, :, None]) + 245.0 * flakes[:, :, None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _smooth_noise(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    small = rng.random((6, 6)).astype(np.float32)
    field = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((width, height),
                                                                              Image.Resampling.BICUBIC))
    return 0.5 + 0.5 * field.astype(np.float32) / 255.0


def _rain(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Thin slanted streaks of light (brightness 0..255), slightly blurred."""
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    slant = float(rng.uniform(-0.3, 0.3))
    count = int(width * height / 1500)
    xs, ys = rng.uniform(0, width, count), rng.uniform(0, height, count)
    lengths = rng.uniform(0.03, 0.08, count) * height
    levels = rng.integers(90, 200, count)
    for x, y, length, level in zip(xs, ys, lengths, levels, strict=True):
        draw.line([(x, y), (x + slant * length, y + length)], fill=int(level), width=1)
    return np.asarray(layer.filter(ImageFilter.GaussianBlur(0.6)), np.float32)


def _snow(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Soft white flakes as an opacity map in [0, 1]."""
    pixels = np.zeros((height, width), np.uint8)
    count = int(width * height / 700)
    pixels[rng.integers(0, height, count), rng.integers(0, width, count)] = 255
    flakes = Image.fromarray(pixels).filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.GaussianBlur(1.0))
    return np.asarray(flakes, np.float32) / 255.0
