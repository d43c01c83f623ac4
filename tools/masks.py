"""Pure mask helpers: COCO RLE encode/decode, areas and tight boxes (pycocotools underneath)."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from synthloop.tools.types import RLE


def encode_rle(mask: np.ndarray) -> RLE:
    """Encode a boolean (H, W) mask as COCO RLE with string counts."""
    fortran = np.asfortranarray(mask.astype(np.uint8, copy=False))
    encoded = mask_utils.encode(fortran)
    return RLE(size=(int(encoded["size"][0]), int(encoded["size"][1])), counts=encoded["counts"].decode("ascii"))


def decode_rle(rle: RLE) -> np.ndarray:
    """Decode COCO RLE to a boolean (H, W) mask."""
    return mask_utils.decode({"size": list(rle.size), "counts": rle.counts.encode("ascii")}).astype(bool)


def rle_area(rle: RLE) -> int:
    """Pixel area of an RLE mask."""
    return int(mask_utils.area({"size": list(rle.size), "counts": rle.counts.encode("ascii")}))


def mask_bbox(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Tight pixel xywh box around a boolean mask; (0, 0, 0, 0) for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return (0.0, 0.0, 0.0, 0.0)
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def rle_bbox(rle: RLE) -> tuple[float, float, float, float]:
    """Tight pixel xywh box of an RLE mask (as pycocotools computes it)."""
    x, y, w, h = mask_utils.toBbox({"size": list(rle.size), "counts": rle.counts.encode("ascii")})
    return (float(x), float(y), float(w), float(h))
