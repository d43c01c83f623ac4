"""Zoomed detector views (`tools/critic/views.py`) and the recognisability judge's `zoom` mode, with a detector
that, like a fixed-input network, misses objects that are small in its input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers_judges import judge_input

from synthloop.tools.critic.detector import Detection
from synthloop.tools.critic.recognisability import CALIBRATION, RecognisabilityJudge, measure
from synthloop.tools.critic.views import detect_in, object_window, tiles
from synthloop.tools.types import Instance, ObjectSpec, TaskSpec

SIZE = 512


class FixedInputDetector:
    """Finds each bright blob as "ball", but only when the blob spans at least `min_side` pixels once the image is
    resized to `input_side` (a 416-input YOLO shrinks a 512² image and loses its small objects)."""

    id = "fixed-input"
    vocabulary = frozenset({"ball"})

    def __init__(self, input_side: int = 416, min_side: float = 30.0) -> None:
        self.input_side, self.min_side = input_side, min_side
        self.calls = 0

    def detect(self, image: np.ndarray, class_names: list[str]) -> list[Detection]:
        self.calls += 1
        if "ball" not in class_names:
            return []
        scale = self.input_side / max(image.shape[:2])
        count, _, stats, _ = cv2.connectedComponentsWithStats((image[:, :, 0] > 128).astype(np.uint8))
        found = []
        for x, y, w, h, _ in stats[1:count]:
            if max(w, h) * scale >= self.min_side:
                found.append(Detection("ball", (float(x), float(y), float(w), float(h)), 0.9))
        return found


def _image(*squares: tuple[int, int, int]) -> np.ndarray:
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    for x, y, side in squares:
        image[y:y + side, x:x + side] = 255
    return image


def _ball(x: int, y: int, side: int) -> Instance:
    return Instance(category="ball", bbox=(float(x), float(y), float(side), float(side)), area=side * side)


def test_tiles_cover_the_image_with_overlapping_squares() -> None:
    windows = tiles(SIZE, SIZE)
    assert len(windows) == 4
    covered = np.zeros((SIZE, SIZE), bool)
    for x0, y0, x1, y1 in windows:
        assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE
        assert x1 - x0 == y1 - y0 == round(SIZE / 1.75), "two tiles overlap by a quarter of a tile"
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert len(tiles(SIZE, SIZE, grid=3)) == 9 and tiles(SIZE, SIZE, grid=1) == []


def test_object_windows_are_centred_squares_inside_the_image() -> None:
    assert object_window((200.0, 200.0, 20.0, 10.0), SIZE, SIZE) == (162, 157, 258, 253), "min side 96"
    assert object_window((200.0, 200.0, 60.0, 40.0), SIZE, SIZE) == (170, 160, 290, 280), "twice the longer side"
    assert object_window((0.0, 490.0, 30.0, 22.0), SIZE, SIZE) == (0, 416, 96, SIZE), "moved inside at the corner"
    assert object_window((100.0, 100.0, 250.0, 250.0), SIZE, SIZE) is None, "the whole image is that view"


def test_detections_in_a_window_come_back_in_image_pixels_and_cut_ones_are_dropped() -> None:
    # a ball inside the window, one cut by the window's right side, one at the image's left border
    image = _image((40, 40, 30), (180, 100, 40), (0, 150, 30))
    window = (0, 20, 200, 220)
    kept = detect_in(FixedInputDetector(min_side=1), image, window, ["ball"], drop_cut=True)
    assert sorted(d.bbox for d in kept) == [(0.0, 150.0, 30.0, 30.0), (40.0, 40.0, 30.0, 30.0)]
    every = detect_in(FixedInputDetector(min_side=1), image, window, ["ball"], drop_cut=False)
    assert (180.0, 100.0, 20.0, 40.0) in [d.bbox for d in every], "kept, clipped to the window, when asked"


def test_zoom_finds_a_small_object_that_one_whole_image_pass_misses() -> None:
    image = _image((300, 300, 20))  # 16 px at the detector's input: below its 30
    instances = [_ball(300, 300, 20)]
    plain = measure(FixedInputDetector(), image, instances, ["ball"])
    zoomed = measure(FixedInputDetector(), image, instances, ["ball"], zoom=True)
    assert plain.instances[0].recognisability == 0.0
    assert zoomed.instances[0].recognisability == pytest.approx(0.9), "its box window enlarges it 4.3×"


def test_zoom_finds_an_unannotated_small_object_in_the_tiles_but_not_a_part_of_an_annotated_one() -> None:
    image = _image((60, 60, 32), (300, 300, 150))  # 26 px at the input whole, 45 px in a tile
    annotated_big = [_ball(300, 300, 150)]
    assert measure(FixedInputDetector(), image, annotated_big, ["ball"]).unannotated == []
    found = measure(FixedInputDetector(), image, annotated_big, ["ball"], zoom=True).unannotated
    assert [d.bbox for d in found] == [(60.0, 60.0, 32.0, 32.0)]


def test_the_judge_uses_each_view_modes_calibrated_thresholds_and_zoom_costs_more_passes() -> None:
    spec = TaskSpec(objects=[ObjectSpec(name="ball", max_count=2)], width=SIZE, height=SIZE)
    plain, zoomed = FixedInputDetector(), FixedInputDetector()
    assert RecognisabilityJudge(plain).missing_score == CALIBRATION["image"]["missing_score"]
    judge = RecognisabilityJudge(zoomed, zoom=True)
    assert (judge.relabel_margin, judge.missing_score) == (CALIBRATION["zoom"]["relabel_margin"],
                                                           CALIBRATION["zoom"]["missing_score"])
    item = judge_input(spec, [_ball(300, 300, 20)], _image((300, 300, 20), (60, 60, 32)))
    verdict = judge.judge(item)
    assert verdict.decision.value == "reject" and "unannotated ball detected at (60, 60, 32, 32)" in verdict.reasons[0]
    assert RecognisabilityJudge(plain).judge(item).decision.value == "accept", "one pass sees neither ball"
    assert (plain.calls, zoomed.calls) == (1, 6), "whole image + 4 tiles + 1 box window"
