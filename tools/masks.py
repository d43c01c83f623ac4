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


def rle_counts(counts: str) -> np.ndarray:
    """Run lengths of a compressed COCO RLE string (pycocotools' `rleFrString`, vectorised)."""
    codes = np.frombuffer(counts.encode("ascii"), np.uint8).astype(np.int64) - 48
    ends = np.flatnonzero((codes & 0x20) == 0)  # a character without the continuation bit ends a number
    firsts = np.empty_like(ends)
    firsts[0], firsts[1:] = 0, ends[:-1] + 1
    position = np.arange(codes.size) - np.repeat(firsts, ends - firsts + 1)
    values = np.add.reduceat((codes & 0x1F) << (5 * position), firsts)
    negative = (codes[ends] & 0x10) != 0
    values[negative] |= -1 << (5 * (position[ends[negative]] + 1))
    runs = values.copy()  # from the fourth run on, each is stored as a delta to the run two before it
    runs[3::2] = np.cumsum(values[1::2])[1:]
    runs[4::2] = np.cumsum(values[2::2])[1:]
    return runs


def decode_rle_crop(rle: RLE, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """The boolean (y1 - y0, x1 - x0) window of an RLE mask, without decoding the whole image."""
    height = rle.size[0]
    runs = rle_counts(rle.counts) if rle.counts else np.zeros(0, np.int64)
    low, high = x0 * height, x1 * height  # column-major: the window's columns are one contiguous range
    ends = np.clip(np.cumsum(runs), low, high)
    starts = np.empty_like(ends)
    if ends.size:
        starts[0], starts[1:] = low, ends[:-1]
    values = np.zeros(runs.size, bool)
    values[1::2] = True
    flat = np.repeat(values, ends - starts)
    if flat.size < high - low:  # counts that stop short of the image end are zeros
        flat = np.concatenate([flat, np.zeros(high - low - flat.size, bool)])
    return flat.reshape(x1 - x0, height)[:, y0:y1].T
