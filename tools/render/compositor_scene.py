"""Scene-level parts of the compositor: backgrounds, unlabelled clutter and image-only domain randomisation.

Nothing here touches the instance map: clutter is drawn before objects (so objects cover it), and
photometric jitter, blur and sensor noise are applied to the finished image only.
"""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from synthloop.tools.types import Difficulty

_CLUTTER = {Difficulty.easy: (0, 3), Difficulty.medium: (2, 7), Difficulty.hard: (8, 20)}
_NOISE_SIGMAS = (0.0, 2.0, 4.0, 6.0)
_NOISE_MARGIN = 64


def background(width: int, height: int, rng: np.random.Generator, light: bool | None = None) -> Image.Image:
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


def clutter(image: Image.Image, difficulty: Difficulty, rng: np.random.Generator) -> None:
    """Draw unlabelled low-contrast marks (lines, specks, patches) onto a background `image` in place."""
    lo, hi = _CLUTTER[difficulty]
    count = int(rng.integers(lo, hi + 1))
    if count == 0:
        return
    width, height = image.size
    side = min(width, height)
    draw = ImageDraw.Draw(image)
    pixels = image.load()
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


def domain_randomise(
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
        # Tile sizes are rounded up so a handful of cached tiles serve every image size in a run.
        tile = _sensor_noise(
            sigma, -(-(width + _NOISE_MARGIN) // 256) * 256, -(-(height + _NOISE_MARGIN) // 256) * 256
        )
        ox, oy = int(rng.integers(0, _NOISE_MARGIN + 1)), int(rng.integers(0, _NOISE_MARGIN + 1))
        image = ImageChops.add(image, tile.crop((ox, oy, ox + width, oy + height)), scale=1.0, offset=-128)
    return np.array(image)


@lru_cache(maxsize=6)
def _sensor_noise(sigma: float, width: int, height: int) -> Image.Image:
    """A seed-independent Gaussian noise image centred on 128; renders take random offsets into it."""
    rng = np.random.default_rng(7331)
    values = rng.normal(128.0, sigma, (height, width, 3))
    return Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8))
