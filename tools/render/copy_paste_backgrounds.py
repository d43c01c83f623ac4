"""Backgrounds for the copy_paste renderer: the user's folder, else photographs installed locally (Tux Paint's
photo templates, scikit-learn's and scikit-image's sample images), else procedural (compositor_scene).

Photographs that show objects of their own (a sheep, a lighthouse, a cup of coffee) are left out: an
unlabelled object of a requested class would teach a model to ignore it. Each photograph carries scene tags
(surface, city, water, nature, sky, aerial, stone, night); a spec's scene picks the photographs sharing its
tags, and each image takes a random crop, flip and colour jitter of one.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from synthloop.tools.render.compositor_scene import background as procedural_background

TUXPAINT_TEMPLATES = "/usr/share/tuxpaint/templates"
TUXPAINT_STARTERS = "/usr/share/tuxpaint/starters"
# file name → scene tags; photographs not listed here are not used (they show objects).
CATALOGUE: dict[str, frozenset[str]] = {
    "burnt_bark.jpg": frozenset({"surface", "nature", "stone"}),
    "cliff.jpg": frozenset({"stone", "nature", "water"}),
    "corn_maze.jpg": frozenset({"aerial", "nature"}),
    "mossy_bark.jpg": frozenset({"nature"}),
    "mossy_log.jpg": frozenset({"nature"}),
    "mudstone.jpg": frozenset({"surface", "stone"}),
    "ocean_splash.jpg": frozenset({"water"}),
    "ocean_waves.jpg": frozenset({"water", "aerial"}),
    "redwoods_above.jpg": frozenset({"nature"}),
    "rocks.jpg": frozenset({"stone", "surface", "water"}),
    "sun_behind_clouds.jpg": frozenset({"sky"}),
    "sun_behind_leaves.jpg": frozenset({"nature", "sky"}),
    "trees_above.jpg": frozenset({"nature", "aerial"}),
    "trees_at_dusk.jpg": frozenset({"nature", "night"}),
    "skyline-sf-dusk-back.jpeg": frozenset({"city", "night", "sky"}),
    "china.jpg": frozenset({"city", "nature"}),
    "brick.png": frozenset({"surface", "city"}),
    "grass.png": frozenset({"nature", "aerial"}),
    "gravel.png": frozenset({"stone", "surface", "city", "aerial"}),
    "rough-wall.png": frozenset({"surface", "city"}),
}
MAX_SIDE = 768


@dataclass(frozen=True)
class BackgroundPhoto:
    """One background photograph and its scene tags."""

    path: str
    tags: frozenset[str]
    source: str


def installed_photos() -> list[BackgroundPhoto]:
    """The catalogued photographs found on this machine."""
    folders = [(Path(TUXPAINT_TEMPLATES), "tuxpaint"), (Path(TUXPAINT_STARTERS), "tuxpaint")]
    for package, sub, source in (("sklearn", "datasets/images", "scikit-learn"), ("skimage", "data", "scikit-image")):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            folders.append((Path(next(iter(spec.submodule_search_locations))) / sub, source))
    found = []
    for folder, source in folders:
        for name, tags in CATALOGUE.items():
            if (folder / name).is_file():
                found.append(BackgroundPhoto(str(folder / name), tags, source))
    return sorted(found, key=lambda p: p.path)


def user_photos(folder: str) -> list[BackgroundPhoto]:
    """Every image in the user's backgrounds folder (tagged by the words of its file name)."""
    paths = sorted(p for p in Path(folder).expanduser().rglob("*")
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"))
    return [BackgroundPhoto(str(p), frozenset(p.stem.lower().replace("-", "_").split("_")), "user") for p in paths]


def choose_photos(photos: list[BackgroundPhoto], scene_tags: frozenset[str]) -> list[BackgroundPhoto]:
    """The photographs that fit the scene (all of them when none shares a tag or the scene names none)."""
    if not scene_tags:
        return photos
    fitting = [p for p in photos if p.tags & scene_tags]
    return fitting or photos


@functools.lru_cache(maxsize=64)
def _load(path: str) -> np.ndarray:
    """A photograph as RGB, longer side ≤ MAX_SIDE (read once)."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        if max(image.size) > MAX_SIDE:
            image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        array = np.array(image)
    array.setflags(write=False)
    return array


def render_background(photo: BackgroundPhoto | None, width: int, height: int, rng: np.random.Generator,
                      aerial: bool = False, defocus: float = 0.0) -> np.ndarray:
    """A width×height RGB background: a random crop (flipped, rotated for aerial views, colour-jittered and,
    with `defocus` > 0, blurred by a Gaussian of up to that many pixels, like a photograph focused on the
    objects) of `photo`, or a procedural one when `photo` is None or unreadable."""
    if photo is None:
        return np.array(procedural_background(width, height, rng))
    try:
        source = _load(photo.path)
    except (OSError, UnidentifiedImageError):
        return np.array(procedural_background(width, height, rng))
    if aerial and rng.random() < 0.5:
        source = np.rot90(source, int(rng.integers(1, 4)))
    src_h, src_w = source.shape[:2]
    # Crop a window of the output's aspect covering 45–100% of the photo's shorter side, then resize.
    scale = float(rng.uniform(0.45, 1.0))
    crop_w = min(src_w, max(8, round(min(src_w, src_h * width / height) * scale)))
    crop_h = min(src_h, max(8, round(crop_w * height / width)))
    x0 = int(rng.integers(0, src_w - crop_w + 1))
    y0 = int(rng.integers(0, src_h - crop_h + 1))
    import cv2

    crop = source[y0:y0 + crop_h, x0:x0 + crop_w]
    out = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        out = cv2.flip(out, 1)
    # Contrast around mid-grey, then a gain per channel, as one lookup table per channel.
    gain = rng.uniform(0.85, 1.15, 3) * rng.uniform(0.85, 1.1)
    contrast = rng.uniform(0.8, 1.05)
    levels = (np.arange(256, dtype=np.float64) - 128.0) * contrast + 128.0
    lut = np.clip(levels[:, None] * gain[None, :], 0, 255).astype(np.uint8).reshape(256, 1, 3)
    out = cv2.LUT(np.ascontiguousarray(out), lut)
    if defocus > 0:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.5, 1.0)) * defocus)
    return out
