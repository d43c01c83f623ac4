"""Reading cut-outs: PNG (or other raster) with alpha, SVG through cairosvg when it and the cairo library are
installed; the alpha quality measure; cropping to the object and bounding the size."""

from __future__ import annotations

import functools
import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from synthloop.tools.assets.types import AssetError

logger = logging.getLogger(__name__)
RASTER_SUFFIXES = frozenset({".png", ".webp", ".tif", ".tiff", ".gif"})
MIN_OBJECT_SIDE = 12


@functools.cache
def svg_supported() -> bool:
    """Whether SVG stamps can be rasterised here (cairosvg and the system cairo library); logged once if not."""
    try:
        import cairosvg  # noqa: F401
    except (ImportError, OSError) as exc:
        logger.info("SVG stamps skipped: cairosvg or the cairo library is missing (%s)", exc)
        return False
    return True


def read_rgba(path: str | Path, *, max_side: int = 512) -> np.ndarray:
    """The image at `path` as (H, W, 4) uint8 RGBA, cropped to its non-transparent pixels and scaled so its
    longer side is at most `max_side`. Raises AssetError for unreadable files and images without alpha."""
    path = Path(path)
    if path.suffix.lower() == ".svg":
        image = _read_svg(path, max_side)
    else:
        try:
            with Image.open(path) as opened:
                opened.load()
                image = opened
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise AssetError(path, f"not a readable image ({exc.__class__.__name__})") from exc
    if "A" not in image.getbands() and not (image.mode == "P" and "transparency" in image.info):
        raise AssetError(path, "has no transparency (alpha channel): a cut-out needs a transparent background")
    rgba = np.array(image.convert("RGBA"))
    alpha = rgba[:, :, 3]
    if alpha.min() == 255:
        raise AssetError(path, "has no transparent pixels: a cut-out needs a transparent background")
    rows, cols = np.flatnonzero((alpha > 8).any(axis=1)), np.flatnonzero((alpha > 8).any(axis=0))
    if rows.size == 0:
        raise AssetError(path, "is fully transparent: nothing to cut out")
    rgba = rgba[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    height, width = rgba.shape[:2]
    if max(height, width) > max_side:
        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgba = np.array(Image.fromarray(rgba).resize(size, Image.Resampling.LANCZOS))
    return rgba


def _read_svg(path: Path, max_side: int) -> Image.Image:
    if not svg_supported():
        raise AssetError(path, "SVG needs cairosvg and the cairo library (pip install cairosvg; apt-get install "
                               "libcairo2)")
    import cairosvg

    try:
        data = cairosvg.svg2png(url=str(path), output_width=max_side)
        return Image.open(io.BytesIO(data))
    except Exception as exc:  # cairosvg raises many kinds of parse errors
        raise AssetError(path, f"SVG could not be rasterised ({exc.__class__.__name__})") from exc


def alpha_quality(rgba: np.ndarray) -> float:
    """How usable a (cropped) cut-out's alpha is, in [0, 1]: 0 when the object is tiny; lower when its opaque
    part runs along the crop's border (cut off, or a rectangular object) or its edge is mostly half-transparent
    (a soft, hazy matte)."""
    alpha = rgba[:, :, 3]
    height, width = alpha.shape
    if min(height, width) < MIN_OBJECT_SIDE:
        return 0.0
    opaque = alpha > 127
    border = np.concatenate([opaque[0], opaque[-1], opaque[:, 0], opaque[:, -1]])
    border_touch = float(border.mean())
    soft = float(((alpha > 8) & (alpha < 247)).sum()) / max(1.0, float(opaque.sum()))
    quality = 1.0 - 0.6 * max(0.0, border_touch - 0.25) - 0.3 * min(1.0, max(0.0, soft - 0.2))
    return round(max(0.0, min(1.0, quality)), 3)
