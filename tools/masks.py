"""Pure mask helpers: COCO RLE encode/decode, areas, tight boxes and tight-box crops (pycocotools underneath)."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from synthloop.tools.types import RLE

MaskSize = tuple[int, int] | list[int]  # (height, width), as in COCO RLE
MaskCrop = tuple[np.ndarray, int, int]  # (C-contiguous bool pixels of a tight box, x0, y0); (0, 0) pixels if empty


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


def tight_crop(mask: np.ndarray) -> MaskCrop:
    """(C-contiguous bool crop of a mask to its tight box, x0, y0); a (0, 0) crop at (0, 0) for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.zeros((0, 0), dtype=bool), 0, 0
    cols = np.flatnonzero(mask.any(axis=0))
    y0, x0 = int(rows[0]), int(cols[0])
    crop = np.ascontiguousarray(mask[y0 : rows[-1] + 1, x0 : cols[-1] + 1], dtype=bool)
    return crop, x0, y0


def _fallback_crops(size: MaskSize, raws: list[bytes]) -> list[MaskCrop]:
    """pycocotools' decoder, mask by mask (for strings the vectorised decoder does not accept)."""
    height, width = int(size[0]), int(size[1])
    return [tight_crop(mask_utils.decode({"size": [height, width], "counts": raw}).astype(bool)) for raw in raws]


def rle_crops(size: MaskSize, counts: list[str] | list[bytes]) -> list[MaskCrop]:
    """Decode compressed COCO RLE masks of one image size, each only inside its tight box.

    A vectorised form of pycocotools' rleFrString + rleDecode over all masks at once: each count is 5-bit
    groups (least significant first) written as characters from '0', 0x20 meaning "more follows" and 0x10 in
    the last group the sign; from the third count of a mask on, a count is stored as the difference to the
    count two places earlier. Counts alternate background / foreground runs in column-major order. Pixels
    are exactly pycocotools' (tested against it); strings it would not produce fall back to it.
    """
    height, width = int(size[0]), int(size[1])
    raws = [c.encode("ascii") if isinstance(c, str) else bytes(c) for c in counts]
    empty: MaskCrop = (np.zeros((0, 0), dtype=bool), 0, 0)
    if not raws:
        return []
    lengths = np.array([len(r) for r in raws], dtype=np.int64)
    if lengths.min() == 0:
        return _fallback_crops(size, raws)
    chars = np.frombuffer(b"".join(raws), dtype=np.uint8).astype(np.int64) - 48
    done = (chars & 0x20) == 0  # the last character of a count
    string_ends = np.cumsum(lengths) - 1
    if chars.min() < 0 or chars.max() > 63 or not done[string_ends].all():
        return _fallback_crops(size, raws)
    last = np.flatnonzero(done)
    first = np.concatenate(([0], last[:-1] + 1))
    groups = last - first + 1
    if groups.max() > 12:
        return _fallback_crops(size, raws)
    shifts = 5 * (np.arange(chars.size) - np.repeat(first, groups))
    values = np.add.reduceat((chars & 0x1F) << shifts, first)
    values -= ((chars[last] & 0x10) != 0) * np.left_shift(1, 5 * groups)  # sign: x | (-1 << 5k) == x - 2^5k
    per_mask = np.diff(np.searchsorted(last, string_ends, side="right"), prepend=0)  # counts per mask
    mask_of = np.repeat(np.arange(len(raws)), per_mask)
    m = np.arange(values.size) - np.repeat(np.cumsum(per_mask) - per_mask, per_mask)  # index within its mask
    for parity in (0, 1):  # undo the delta coding: a cumulative sum per mask over every other count
        idx = np.flatnonzero(((m & 1) == parity) & (m >= 2 - parity))
        if idx.size:
            chain = values[idx]
            total = np.cumsum(chain)
            head = m[idx] == 2 - parity
            values[idx] = total - (total[head] - chain[head])[np.cumsum(head) - 1]
    area = height * width
    sums = np.add.reduceat(values, np.cumsum(per_mask) - per_mask)
    if values.min() < 0 or not np.all(sums == area):
        return _fallback_crops(size, raws)
    ends = np.cumsum(values) - mask_of * area  # run ends within each mask's column-major pixel order
    fg = ((m & 1) == 1) & (values > 0)
    starts, ends, owner = (ends - values)[fg], ends[fg], mask_of[fg]
    crops = [empty] * len(raws)
    if starts.size == 0:
        return crops
    first_col, last_col = starts // height, (ends - 1) // height
    first_row, last_row = starts % height, (ends - 1) % height
    heads = np.flatnonzero(np.diff(owner, prepend=-1))  # first run of each non-empty mask
    tails = np.append(heads[1:], owner.size) - 1
    wraps = np.maximum.reduceat(last_col - first_col, heads) > 0  # a run continues into the next column
    x0, x1 = first_col[heads], last_col[tails]
    y0 = np.where(wraps, 0, np.minimum.reduceat(first_row, heads))
    y1 = np.where(wraps, height - 1, np.maximum.reduceat(last_row, heads))
    crop_w, crop_h = x1 - x0 + 1, y1 - y0 + 1
    offset = np.cumsum(crop_w * crop_h) - crop_w * crop_h
    # Every crop column-major, one after the other in one buffer: a run stays contiguous (within one column,
    # or it wraps and then its mask spans every row, so its crop is `height` rows high).
    crop = np.repeat(np.arange(heads.size), tails - heads + 1)
    local = offset[crop] + (first_col - x0[crop]) * crop_h[crop] + (first_row - y0[crop])
    bounds = np.empty(2 * starts.size + 2, dtype=np.int64)
    bounds[0], bounds[1:-1:2], bounds[2:-1:2], bounds[-1] = (
        0,
        local,
        local + ends - starts,
        offset[-1] + crop_w[-1] * crop_h[-1],
    )
    fill = np.zeros(bounds.size - 1, dtype=bool)
    fill[1::2] = True
    flat = np.repeat(fill, np.diff(bounds))
    for k, at, w, h, x, y in zip(
        owner[heads].tolist(), offset.tolist(), crop_w.tolist(), crop_h.tolist(), x0.tolist(), y0.tolist(), strict=True
    ):
        crops[k] = (np.ascontiguousarray(flat[at : at + w * h].reshape(w, h).T), x, y)
    return crops
