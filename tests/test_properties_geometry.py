"""Property tests (hypothesis) of the pure helpers: box geometry (tools/geometry.py) against pixel counting, and
COCO RLE (tools/masks.py) against numpy: encode/decode, area, tight box, windows and crops."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from synthloop.tools.geometry import (
    box_area,
    intersection,
    iou,
    normalise_box,
    scale_box,
    xywh_to_xyxy,
    xyxy_to_xywh,
)
from synthloop.tools.masks import (
    decode_rle,
    decode_rle_crop,
    encode_rle,
    mask_bbox,
    rle_area,
    rle_bbox,
    rle_counts,
    rle_crops,
    tight_crop,
)

SETTINGS = settings(max_examples=200, deadline=None)
GRID = 64


@st.composite
def pixel_boxes(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """An integer xyxy box inside a GRID×GRID image (possibly empty)."""
    x0, x1 = sorted(draw(st.lists(st.integers(0, GRID), min_size=2, max_size=2)))
    y0, y1 = sorted(draw(st.lists(st.integers(0, GRID), min_size=2, max_size=2)))
    return (x0, y0, x1, y1)


def _raster(box: tuple[float, float, float, float]) -> np.ndarray:
    mask = np.zeros((GRID, GRID), bool)
    x0, y0, x1, y1 = (int(v) for v in box)
    mask[y0:y1, x0:x1] = True
    return mask


coordinates = st.floats(-1e4, 1e4, allow_nan=False)
float_boxes = st.tuples(coordinates, coordinates, coordinates, coordinates)


@SETTINGS
@given(pixel_boxes(), pixel_boxes())
def test_areas_and_overlaps_count_pixels(a: tuple, b: tuple) -> None:
    mask_a, mask_b = _raster(a), _raster(b)
    assert box_area(a) == mask_a.sum()
    assert intersection(a, b) == (mask_a & mask_b).sum() == intersection(b, a)
    union = (mask_a | mask_b).sum()
    expected = (mask_a & mask_b).sum() / union if union else 0.0
    assert iou(a, b) == expected == iou(b, a)


@SETTINGS
@given(float_boxes, float_boxes)
def test_iou_is_a_fraction_and_one_with_itself(a: tuple, b: tuple) -> None:
    assert 0.0 <= iou(a, b) <= 1.0 + 1e-12
    assert box_area(a) >= 0.0 and intersection(a, b) <= min(box_area(a), box_area(b)) + 1e-6
    if box_area(a) > 1e-9:
        assert iou(a, a) == 1.0


@SETTINGS
@given(float_boxes, st.floats(1.0, 8192.0), st.floats(1.0, 8192.0))
def test_box_conversions_invert_each_other(box: tuple, width: float, height: float) -> None:
    assert np.allclose(xywh_to_xyxy(xyxy_to_xywh(box)), box, atol=1e-9 * (1 + max(map(abs, box))))
    assert np.allclose(normalise_box(scale_box(box, width, height), width, height), box, rtol=1e-12, atol=1e-9)


@st.composite
def masks(draw: st.DrawFn) -> np.ndarray:
    """Boolean masks of 1–40 × 1–40 pixels: noise, blobs of rectangles, empty and full."""
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    kind = draw(st.sampled_from(["noise", "rectangles", "empty", "full"]))
    if kind == "noise":
        return draw(arrays(bool, (height, width)))
    mask = np.full((height, width), kind == "full")
    if kind == "rectangles":
        for _ in range(draw(st.integers(1, 4))):
            y0, y1 = sorted(draw(st.lists(st.integers(0, height), min_size=2, max_size=2)))
            x0, x1 = sorted(draw(st.lists(st.integers(0, width), min_size=2, max_size=2)))
            mask[y0:y1, x0:x1] = True
    return mask


@SETTINGS
@given(masks())
def test_rle_round_trip_area_and_box(mask: np.ndarray) -> None:
    rle = encode_rle(mask)
    assert rle.size == mask.shape
    assert np.array_equal(decode_rle(rle), mask)
    assert rle_area(rle) == int(mask.sum())
    assert rle_bbox(rle) == mask_bbox(mask)
    runs = rle_counts(rle.counts)
    assert runs.sum() == mask.size and (runs[1:] > 0).all()  # only the first (background) run may be empty
    assert runs[1::2].sum() == mask.sum()


@SETTINGS
@given(masks(), st.data())
def test_rle_windows_and_tight_crops(mask: np.ndarray, data: st.DataObject) -> None:
    rle = encode_rle(mask)
    height, width = mask.shape
    y0, y1 = sorted(data.draw(st.lists(st.integers(0, height), min_size=2, max_size=2)))
    x0, x1 = sorted(data.draw(st.lists(st.integers(0, width), min_size=2, max_size=2)))
    assert np.array_equal(decode_rle_crop(rle, x0, y0, x1, y1), mask[y0:y1, x0:x1])
    ((crop, cx, cy),) = rle_crops(rle.size, [rle.counts])
    expected, ex, ey = tight_crop(mask)
    assert np.array_equal(crop, expected) and (cx, cy) == (ex, ey)
    if mask.any():
        x, y, w, h = mask_bbox(mask)
        assert crop.shape == (h, w) and (cx, cy) == (x, y)


@SETTINGS
@given(st.lists(masks(), min_size=1, max_size=5), st.integers(1, 40), st.integers(1, 40))
def test_rle_crops_of_many_masks_match_one_by_one(shapes: list[np.ndarray], height: int, width: int) -> None:
    same_size = [np.resize(m, (height, width)) for m in shapes]
    rles = [encode_rle(m) for m in same_size]
    crops = rle_crops((height, width), [r.counts for r in rles])
    for (crop, x, y), mask in zip(crops, same_size, strict=True):
        expected, ex, ey = tight_crop(mask)
        assert np.array_equal(crop, expected) and (x, y) == (ex, ey)
