"""Placing one cut-out: per-instance variation (flip, small rotation, perspective, crop, colour and hue
jitter), fitting inside a layout box with its aspect kept, and compositing onto the canvas (feathered alpha,
optional Poisson blending and soft shadow) while the instance map records the pixels the object now owns.

The label mask of an object is where its (feathered) alpha is at least one half: those pixels show mostly the
object, so the exact annotator's masks follow what is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Blending = Literal["alpha", "feather", "poisson", "mixed"]


@dataclass(frozen=True)
class Variation:
    """How much one instance may differ from its cut-out."""

    flip: bool = True
    max_rotation: float = 12.0  # degrees either way
    hue_shift: float = 0.03  # fraction of the hue circle either way (plausible recolouring)
    saturation: tuple[float, float] = (0.8, 1.2)
    brightness: tuple[float, float] = (0.8, 1.15)
    perspective: float = 0.0  # largest corner displacement as a fraction of the size
    crop_probability: float = 0.0  # chance of cutting up to 25% off one side


@dataclass(frozen=True)
class Placed:
    """Where a pasted object landed: its full (amodal) area and the part of it outside the image."""

    amodal_area: int
    outside_area: int
    box: tuple[int, int, int, int]  # pixel xyxy of the pasted cut-out, may extend past the image


def prescale(rgba: np.ndarray, side: int) -> np.ndarray:
    """A cut-out shrunk so its longer side is about `side` (variation then works on few pixels)."""
    import cv2

    height, width = rgba.shape[:2]
    scale = side / max(height, width)
    if scale >= 1.0:
        return rgba
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgba, size, interpolation=cv2.INTER_AREA)


def vary(rgba: np.ndarray, variation: Variation, rng: np.random.Generator, *, allow_flip: bool) -> np.ndarray:
    """A varied float32 RGBA copy of a cut-out (alpha in 0..1)."""
    import cv2

    out = rgba.astype(np.float32)
    out[:, :, 3] *= np.float32(1.0 / 255.0)
    if variation.crop_probability and rng.random() < variation.crop_probability:
        out = _crop_side(out, rng)
    if variation.flip and allow_flip and rng.random() < 0.5:
        out = out[:, ::-1]
    rgb = out[:, :, :3]
    if variation.hue_shift:
        hsv = cv2.cvtColor(np.ascontiguousarray(rgb / 255.0), cv2.COLOR_RGB2HSV)
        hsv[:, :, 0] = (hsv[:, :, 0] + 360.0 * rng.uniform(-variation.hue_shift, variation.hue_shift)) % 360.0
        hsv[:, :, 1] = np.clip(hsv[:, :, 1] * rng.uniform(*variation.saturation), 0.0, 1.0)
        rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0
    gain = np.float32(rng.uniform(*variation.brightness)) * rng.uniform(0.94, 1.06, 3).astype(np.float32)
    out = np.ascontiguousarray(out)
    out[:, :, :3] = np.minimum(rgb * gain, 255.0)
    if variation.perspective > 0:
        out = _perspective(out, variation.perspective, rng)
    angle = float(rng.uniform(-variation.max_rotation, variation.max_rotation))
    if abs(angle) > 0.5:
        out = _rotate(out, angle)
    return _trim(out)


def fit(rgba: np.ndarray, box_w: int, box_h: int, fill: tuple[float, float], rng: np.random.Generator, *,
        keep_area: bool = False, max_w: int | None = None, max_h: int | None = None) -> np.ndarray:
    """Scale a cut-out, aspect kept, to a box_w × box_h box times `fill`: inside the box, or with
    `keep_area` to the box's area (the box gives the object's size, the cut-out its own shape), no wider than
    `max_w` and no taller than `max_h`."""
    import cv2

    height, width = rgba.shape[:2]
    if keep_area:
        scale = float(np.sqrt(box_w * box_h / (width * height)))
        scale = min(scale, (max_w or np.inf) / width, (max_h or np.inf) / height)
    else:
        scale = min(box_w / width, box_h / height)
    scale *= float(rng.uniform(*fill))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(rgba, size, interpolation=interpolation)


def paste(canvas: np.ndarray, instance_map: np.ndarray | None, label: int, rgba: np.ndarray, x: int, y: int, *,
          feather: float, blending: str, shadow: float, rng: np.random.Generator) -> Placed:
    """Composite `rgba` (float32, alpha 0..1) with its top-left at (x, y) onto `canvas` (float32 RGB) in place;
    label its visible pixels `label` in `instance_map` (None for unlabelled distractors)."""
    import cv2

    height, width = canvas.shape[:2]
    h, w = rgba.shape[:2]
    alpha = rgba[:, :, 3]
    if feather > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), feather) * (alpha > 0.02)
    solid = alpha >= 0.5
    amodal = int(solid.sum())
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x1 <= x0 or y1 <= y0:
        return Placed(amodal, amodal, (x, y, x + w, y + h))
    sx0, sy0 = x0 - x, y0 - y
    sx1, sy1 = sx0 + (x1 - x0), sy0 + (y1 - y0)
    part_alpha = alpha[sy0:sy1, sx0:sx1, None]
    part_solid = solid[sy0:sy1, sx0:sx1]
    region = canvas[y0:y1, x0:x1]
    if shadow > 0:
        _shadow(canvas, alpha, x, y, shadow, rng)
    inside = x >= 1 and y >= 1 and x + w <= width - 1 and y + h <= height - 1
    poisson = blending == "poisson" or (blending == "mixed" and rng.random() < 0.3)
    if poisson and inside and part_solid.sum() > 64:
        region[:] = _poisson(canvas, rgba[:, :, :3], part_solid, x, y)[y0:y1, x0:x1]
        edge = part_alpha * (~part_solid[:, :, None])
        region[:] = edge * rgba[sy0:sy1, sx0:sx1, :3] + (1 - edge) * region
    else:
        region[:] = part_alpha * rgba[sy0:sy1, sx0:sx1, :3] + (1 - part_alpha) * region
    if instance_map is not None:
        instance_map[y0:y1, x0:x1][part_solid] = label
    return Placed(amodal, amodal - int(part_solid.sum()), (x, y, x + w, y + h))


def _poisson(canvas: np.ndarray, rgb: np.ndarray, mask: np.ndarray, x: int, y: int) -> np.ndarray:
    """OpenCV seamless cloning of the object into the canvas (mixed gradients keep the object's texture)."""
    import cv2

    h, w = mask.shape
    src = np.clip(rgb, 0, 255).astype(np.uint8)[:, :, ::-1]
    dst = np.clip(canvas, 0, 255).astype(np.uint8)[:, :, ::-1].copy()
    mask_u8 = mask.astype(np.uint8) * 255
    ys, xs = np.nonzero(mask)
    bx0, bx1, by0, by1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    center = (int(x + (bx0 + bx1) // 2), int(y + (by0 + by1) // 2))
    # seamlessClone centres the mask's bounding box on `center`: pass the cropped source and mask.
    cloned = cv2.seamlessClone(np.ascontiguousarray(src[by0:by1, bx0:bx1]), dst,
                               np.ascontiguousarray(mask_u8[by0:by1, bx0:bx1]), center, cv2.NORMAL_CLONE)
    out = canvas.copy()
    region = out[y:y + h, x:x + w]
    cloned_region = cloned[y:y + h, x:x + w, ::-1].astype(np.float32)
    region[mask] = cloned_region[mask]
    return out


def _shadow(canvas: np.ndarray, alpha: np.ndarray, x: int, y: int, strength: float, rng: np.random.Generator) -> None:
    """Darken the canvas under a blurred, offset copy of the object's alpha (a soft contact shadow)."""
    import cv2

    height, width = canvas.shape[:2]
    h, w = alpha.shape
    size = max(h, w)
    dx, dy = round(float(size * rng.uniform(-0.05, 0.05))), round(float(size * rng.uniform(0.02, 0.07)))
    blurred = cv2.GaussianBlur(alpha, (0, 0), max(1.0, size * 0.03)) * np.float32(strength)
    sx, sy = x + dx, y + dy
    x0, y0, x1, y1 = max(sx, 0), max(sy, 0), min(sx + w, width), min(sy + h, height)
    if x1 <= x0 or y1 <= y0:
        return
    part = blurred[y0 - sy:y1 - sy, x0 - sx:x1 - sx, None]
    canvas[y0:y1, x0:x1] *= 1.0 - part


def _rotate(rgba: np.ndarray, angle: float) -> np.ndarray:
    import cv2

    h, w = rgba.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(np.ceil(h * sin + w * cos)), int(np.ceil(h * cos + w * sin))
    matrix[0, 2] += new_w / 2 - w / 2
    matrix[1, 2] += new_h / 2 - h / 2
    return cv2.warpAffine(rgba, matrix, (new_w, new_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0, 0))


def _perspective(rgba: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    import cv2

    h, w = rgba.shape[:2]
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    moved = corners + rng.uniform(-amount, amount, (4, 2)).astype(np.float32) * np.float32([w, h])
    moved -= moved.min(axis=0)
    size = (int(np.ceil(moved[:, 0].max())) + 1, int(np.ceil(moved[:, 1].max())) + 1)
    matrix = cv2.getPerspectiveTransform(corners, moved)
    return cv2.warpPerspective(rgba, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=(0, 0, 0, 0))


def _crop_side(rgba: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = rgba.shape[:2]
    cut = float(rng.uniform(0.08, 0.25))
    side = int(rng.integers(4))
    if side == 0:
        return rgba[int(h * cut):]
    if side == 1:
        return rgba[: max(1, int(h * (1 - cut)))]
    if side == 2:
        return rgba[:, int(w * cut):]
    return rgba[:, : max(1, int(w * (1 - cut)))]


def _trim(rgba: np.ndarray) -> np.ndarray:
    """Crop to the pixels with visible alpha."""
    visible = rgba[:, :, 3] > 0.02
    rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
    if rows.size == 0:
        return rgba
    return np.ascontiguousarray(rgba[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
