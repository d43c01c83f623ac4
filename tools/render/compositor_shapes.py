"""Procedural object looks for the compositor: class looks, shape masks, colours and textures.

Everything here works on one object's box-sized crop. A class's look (shape family, palette, preferred
texture) comes from a stable hash of its name, so a class looks the same in every run and process; each
instance then varies (rotation, proportions, colour jitter, texture, lighting).
"""

from __future__ import annotations

import colorsys
import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

SHAPES = (
    "ellipse",
    "rounded_rect",
    "polygon",
    "blob",
    "star",
    "triangle",
    "ring",
    "cross",
    "diamond",
    "half_disc",
)
TEXTURES = ("plain", "stripes", "checker", "dots", "noise", "gradient")

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 35),
    "green": (40, 160, 60),
    "blue": (35, 75, 200),
    "yellow": (235, 205, 40),
    "orange": (240, 130, 30),
    "purple": (125, 50, 165),
    "violet": (140, 80, 200),
    "pink": (240, 120, 170),
    "magenta": (205, 40, 170),
    "brown": (125, 75, 40),
    "black": (25, 25, 28),
    "white": (240, 240, 236),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "silver": (185, 188, 195),
    "gold": (215, 170, 40),
    "cyan": (40, 190, 210),
    "teal": (30, 130, 130),
    "turquoise": (60, 205, 190),
    "navy": (25, 35, 110),
    "maroon": (115, 25, 35),
    "olive": (120, 125, 35),
    "lime": (150, 215, 50),
    "beige": (220, 200, 160),
    "tan": (200, 165, 115),
}
_LIGHTER = {"light", "pale", "pastel", "bright"}
_DARKER = {"dark", "deep"}


def stable_hash(text: str) -> int:
    """A 64-bit hash of `text` that is the same in every process (unlike the salted built-in hash)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class ClassLook:
    """How every instance of one class is drawn, before per-instance variation."""

    shape: str
    colour: tuple[int, int, int]
    secondary: tuple[int, int, int]
    texture: str
    sides: int  # polygon sides / star points
    max_rotation: float  # degrees of per-instance rotation either way


@lru_cache(maxsize=1024)
def class_look(name: str) -> ClassLook:
    """The deterministic look of class `name`."""
    h = stable_hash(name)
    hue = (h >> 8 & 0xFFFF) / 0x10000
    sat = 0.55 + 0.4 * ((h >> 24 & 0xFF) / 255)
    val = 0.45 + 0.5 * ((h >> 32 & 0xFF) / 255)
    colour = _hsv(hue, sat, val)
    secondary = _hsv((hue + 0.08 + 0.3 * ((h >> 40 & 0xFF) / 255)) % 1.0, sat * 0.8, min(1.0, val * 1.2))
    return ClassLook(
        shape=SHAPES[h % len(SHAPES)],
        colour=colour,
        secondary=secondary,
        texture=TEXTURES[(h >> 48) % len(TEXTURES)],
        sides=5 + (h >> 52) % 4,
        max_rotation=10.0 + 35.0 * ((h >> 56 & 0xFF) / 255),
    )


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def attribute_colour(attributes: list[str]) -> tuple[int, int, int] | None:
    """The colour named in `attributes` ("red", "light blue", "dark-green"), or None if none names one."""
    for attribute in attributes:
        words = attribute.lower().replace("-", " ").split()
        base = next((COLOURS[w] for w in words if w in COLOURS), None)
        if base is None:
            continue
        rgb = np.array(base, dtype=np.float32)
        if _LIGHTER & set(words):
            rgb = rgb + (255 - rgb) * 0.45
        elif _DARKER & set(words):
            rgb = rgb * 0.6
        return (int(rgb[0]), int(rgb[1]), int(rgb[2]))
    return None


def shape_mask(shape: str, w: int, h: int, rng: np.random.Generator, look: ClassLook) -> np.ndarray:
    """A boolean (h, w) mask of `shape` that touches all four sides of the w×h box."""
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    box = (0, 0, w - 1, h - 1)
    if shape == "ellipse":
        draw.ellipse(box, fill=1)
    elif shape == "rounded_rect":
        radius = int(min(w, h) * rng.uniform(0.1, 0.35))
        draw.rounded_rectangle(box, radius=radius, fill=1)
    elif shape == "ring":
        draw.ellipse(box, fill=1)
        t = rng.uniform(0.22, 0.32)
        inner = (w * t, h * t, (w - 1) * (1 - t), (h - 1) * (1 - t))
        if inner[2] - inner[0] >= 2 and inner[3] - inner[1] >= 2:
            draw.ellipse(inner, fill=0)
    elif shape == "half_disc":
        if rng.random() < 0.5:
            draw.pieslice((0, 0, w - 1, 2 * h - 1), 180, 360, fill=1)
        else:
            draw.pieslice((0, -h, w - 1, h - 1), 0, 180, fill=1)
    else:
        draw.polygon(_fit(_unit_polygon(shape, rng, look), w, h), fill=1)
    mask = np.asarray(img, dtype=bool)
    if not mask.any():  # a box too small for the shape: fall back to filling it
        mask = np.ones((h, w), dtype=bool)
    return mask


def _unit_polygon(shape: str, rng: np.random.Generator, look: ClassLook) -> np.ndarray:
    """Vertices (n, 2) of a polygon shape around the origin, rotated per instance."""
    if shape == "polygon":
        angles = np.linspace(0, 2 * np.pi, look.sides, endpoint=False)
        pts = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    elif shape == "blob":
        n = 14
        angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
        radii = 1.0 + 0.25 * np.sin(angles * 2 + rng.uniform(0, 6.3)) + rng.uniform(-0.12, 0.12, n)
        pts = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
    elif shape == "star":
        n = look.sides * 2
        angles = np.linspace(0, 2 * np.pi, n, endpoint=False) - np.pi / 2
        radii = np.where(np.arange(n) % 2 == 0, 1.0, rng.uniform(0.42, 0.55))
        pts = np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
    elif shape == "triangle":
        pts = np.array([[0.0, -1.0], [0.95 + rng.uniform(-0.1, 0.1), 0.8], [-0.95, 0.8]])
    elif shape == "cross":
        t = rng.uniform(0.3, 0.42)
        arm = np.array([[-t, -1.0], [t, -1.0], [t, -t]])  # one arm; the others are its quarter turns
        quarter = np.array([[0.0, 1.0], [-1.0, 0.0]])
        pts = np.concatenate([arm @ np.linalg.matrix_power(quarter, k) for k in range(4)])
    elif shape == "diamond":
        pts = np.array([[0.0, -1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")
    theta = np.deg2rad(rng.uniform(-look.max_rotation, look.max_rotation))
    c, s = np.cos(theta), np.sin(theta)
    return pts @ np.array([[c, s], [-s, c]])


def _fit(pts: np.ndarray, w: int, h: int) -> list[tuple[float, float]]:
    """Scale vertices so their extent spans the pixel box [0, w-1] × [0, h-1] exactly."""
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = np.maximum(hi - lo, 1e-6)
    fitted = (pts - lo) / span * np.array([w - 1, h - 1])
    return [(float(x), float(y)) for x, y in fitted]


@lru_cache(maxsize=4)
def _noise_tile(size: int = 256) -> np.ndarray:
    """A seed-independent smooth noise tile in [-1, 1]; callers take random offsets into it."""
    rng = np.random.default_rng(20240)
    coarse = Image.fromarray((rng.random((size // 8, size // 8)) * 255).astype(np.uint8))
    smooth = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    fine = rng.random((size, size), dtype=np.float32)
    tile = 0.7 * (smooth / 127.5 - 1.0) + 0.3 * (fine * 2.0 - 1.0)
    tile.setflags(write=False)
    return tile


def pattern(texture: str, w: int, h: int, rng: np.random.Generator) -> np.ndarray | None:
    """A (h, w) float32 map in [0, 1]: the weight of the secondary colour; None for a plain look."""
    if texture == "plain":
        return None
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    if texture == "stripes":
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(6, 16)
        phase = (xs * np.cos(theta) + ys * np.sin(theta)) / period
        return ((phase % 1.0) < 0.5).astype(np.float32)
    if texture == "checker":
        cell = int(rng.integers(5, 14))
        return (((xs // cell) + (ys // cell)) % 2).astype(np.float32)
    if texture == "dots":
        cell = rng.uniform(7, 14)
        dx = (xs % cell) / cell - 0.5
        dy = (ys % cell) / cell - 0.5
        return ((dx * dx + dy * dy) < 0.09).astype(np.float32)
    if texture == "noise":
        tile = _noise_tile()
        size = tile.shape[0]
        if h > size or w > size:
            tile = np.tile(tile, (h // size + 1, w // size + 1))
        oy = int(rng.integers(0, tile.shape[0] - h + 1))
        ox = int(rng.integers(0, tile.shape[1] - w + 1))
        return np.clip(tile[oy : oy + h, ox : ox + w] * 0.5 + 0.5, 0.0, 1.0)
    if texture == "gradient":
        theta = rng.uniform(0, 2 * np.pi)
        ramp = xs / max(w - 1, 1) * np.cos(theta) + ys / max(h - 1, 1) * np.sin(theta)
        return (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    raise ValueError(f"unknown texture {texture!r}; known: {TEXTURES}")


def shading(w: int, h: int, rng: np.random.Generator, strength: float = 0.25) -> np.ndarray:
    """A (h, w, 1) float32 lighting gradient around 1.0, brighter towards a random light direction."""
    theta = rng.uniform(0, 2 * np.pi)
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    light = 1.0 + strength * (xs * np.float32(np.cos(theta)) + ys * np.float32(np.sin(theta)))
    return light[:, :, None]
