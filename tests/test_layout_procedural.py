"""The procedural layout sampler: counts, sizes by difficulty, occlusion limits, relations, determinism."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from synthloop.tools.layout.procedural import (
    MAX_RELATIONS_PER_OBJECT,
    PROFILES,
    ProceduralLayoutSampler,
    occluded_fraction,
)
from synthloop.tools.types import Difficulty, Layout, ObjectSpec, Task, TaskSpec

SAMPLER = ProceduralLayoutSampler()


def _spec(**overrides: object) -> TaskSpec:
    values: dict[str, object] = {
        "objects": [
            ObjectSpec(name="cup", attributes=["red", "ceramic"], min_count=1, max_count=3),
            ObjectSpec(name="plate", min_count=0, max_count=2),
            ObjectSpec(name="fork", min_count=1, max_count=1),
        ],
        "width": 320,
        "height": 240,
    }
    values.update(overrides)
    return TaskSpec(**values)


def _pixel_boxes(layout: Layout) -> list[tuple[float, ...]]:
    w, h = layout.width, layout.height
    return [(o.box[0] * w, o.box[1] * h, o.box[2] * w, o.box[3] * h) for o in layout.objects]


def test_same_seed_same_layout_and_seeds_differ() -> None:
    spec = _spec()
    assert SAMPLER.sample(spec, 7) == SAMPLER.sample(spec, 7)
    assert SAMPLER.sample(spec, 7) != SAMPLER.sample(spec, 8)
    assert SAMPLER.sample(spec, 7) != SAMPLER.sample(_spec(seed=1), 7), "the spec's seed must matter too"


def test_counts_stay_in_range_and_attributes_are_copied() -> None:
    spec = _spec()
    seen_counts: dict[str, set[int]] = {o.name: set() for o in spec.objects}
    for seed in range(40):
        layout = SAMPLER.sample(spec, seed)
        assert (layout.width, layout.height, layout.seed, layout.source) == (320, 240, seed, "procedural")
        counts = Counter(o.category for o in layout.objects)
        for obj in spec.objects:
            assert obj.min_count <= counts[obj.name] <= obj.max_count, (seed, counts)
            seen_counts[obj.name].add(counts[obj.name])
        for o in layout.objects:
            assert o.attributes == (["red", "ceramic"] if o.category == "cup" else [])
    assert seen_counts["cup"] == {1, 2, 3} and seen_counts["plate"] == {0, 1, 2}, "counts must vary per image"


def test_boxes_are_pixel_aligned_in_bounds_and_depth_is_the_stacking_order() -> None:
    for seed in range(20):
        layout = SAMPLER.sample(_spec(), seed)
        assert [o.depth for o in layout.objects] == list(range(len(layout.objects)))
        for x0, y0, x1, y1 in _pixel_boxes(layout):
            assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
            for v in (x0, y0, x1, y1):
                assert abs(v - round(v)) < 1e-6
            assert x1 - x0 >= 8 and y1 - y0 >= 8


def test_never_empty_when_every_count_may_be_zero() -> None:
    spec = _spec(objects=[ObjectSpec(name="cup", min_count=0, max_count=1)])
    sizes = {len(SAMPLER.sample(spec, seed).objects) for seed in range(60)}
    assert sizes == {1}


@pytest.mark.parametrize("difficulty", list(Difficulty))
def test_no_object_is_hidden_beyond_the_difficulty_limit(difficulty: Difficulty) -> None:
    spec = _spec(
        objects=[
            ObjectSpec(name="cup", min_count=2, max_count=8),
            ObjectSpec(name="box", min_count=2, max_count=8),
        ],
        difficulty=difficulty,
    )
    limit = PROFILES[difficulty].max_occlusion
    worst = 0.0
    for seed in range(15):
        boxes = _pixel_boxes(SAMPLER.sample(spec, seed))
        for i, back in enumerate(boxes):
            worst = max(worst, occluded_fraction(back, boxes[i + 1 :]))
    assert worst <= limit
    if difficulty != Difficulty.easy:
        assert worst > 0.0, "medium and hard layouts should contain some occlusion"


def test_difficulty_changes_object_size_and_clutter() -> None:
    objects = [
        ObjectSpec(name="cup", min_count=1, max_count=4),
        ObjectSpec(name="box", min_count=1, max_count=4),
    ]
    sides: dict[Difficulty, float] = {}
    counts: dict[Difficulty, float] = {}
    for difficulty in Difficulty:
        spec = _spec(objects=objects, difficulty=difficulty, width=512, height=512)
        layouts = [SAMPLER.sample(spec, seed) for seed in range(30)]
        sides[difficulty] = float(
            np.median(
                [np.sqrt((x1 - x0) * (y1 - y0)) for lay in layouts for x0, y0, x1, y1 in _pixel_boxes(lay)]
            )
        )
        counts[difficulty] = float(np.mean([len(lay.objects) for lay in layouts]))
    assert sides[Difficulty.easy] > 1.3 * sides[Difficulty.medium] > 1.3 * 1.3 * sides[Difficulty.hard]
    assert counts[Difficulty.hard] > counts[Difficulty.easy]


def test_objects_that_do_not_fit_are_dropped_but_minimums_are_kept() -> None:
    spec = _spec(
        objects=[
            ObjectSpec(name="cup", min_count=3, max_count=40),
            ObjectSpec(name="fork", min_count=2, max_count=2),
        ],
        difficulty=Difficulty.easy,
    )
    for seed in range(5):
        layout = SAMPLER.sample(spec, seed)
        counts = Counter(o.category for o in layout.objects)
        assert counts["cup"] >= 3 and counts["fork"] == 2
        assert len(layout.objects) < 42, "an easy 320×240 image cannot hold 40 large, barely overlapping cups"


def test_scene_graph_relations_follow_the_rules() -> None:
    spec = _spec(tasks=[Task.detection, Task.scene_graph], difficulty=Difficulty.hard)
    predicates: set[str] = set()
    for seed in range(30):
        layout = SAMPLER.sample(spec, seed)
        per_subject = Counter(r.subject for r in layout.relations)
        assert all(n <= MAX_RELATIONS_PER_OBJECT for n in per_subject.values())
        if len(layout.objects) > 1:
            assert layout.relations, "objects in the same image should be related"
        for r in layout.relations:
            a, b = layout.objects[r.subject], layout.objects[r.object]
            assert r.subject != r.object
            predicates.add(r.predicate)
            centre_a = ((a.box[0] + a.box[2]) / 2, (a.box[1] + a.box[3]) / 2)
            centre_b = ((b.box[0] + b.box[2]) / 2, (b.box[1] + b.box[3]) / 2)
            overlap = a.box[0] < b.box[2] and b.box[0] < a.box[2] and a.box[1] < b.box[3] and b.box[1] < a.box[3]
            if r.predicate == "left of":
                assert centre_a[0] < b.box[0] and centre_b[0] > a.box[2]
            elif r.predicate == "right of":
                assert centre_a[0] > b.box[2] and centre_b[0] < a.box[0]
            elif r.predicate == "above":
                assert centre_a[1] < b.box[1] and centre_b[1] > a.box[3]
            elif r.predicate == "below":
                assert centre_a[1] > b.box[3] and centre_b[1] < a.box[1]
            elif r.predicate in ("in front of", "inside"):
                assert overlap and a.depth > b.depth
            elif r.predicate == "behind":
                assert overlap and a.depth < b.depth
            elif r.predicate in ("on", "under"):
                assert (a.box[1] < b.box[1]) == (r.predicate == "on")
            elif r.predicate == "near":
                assert not overlap
            else:
                raise AssertionError(f"unexpected predicate {r.predicate!r}")
    assert {"left of", "right of", "above", "below", "in front of", "behind", "near"} <= predicates


def test_no_relations_without_the_scene_graph_task() -> None:
    assert all(not SAMPLER.sample(_spec(), seed).relations for seed in range(10))


def test_invalid_max_tries_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_tries"):
        ProceduralLayoutSampler(max_tries=0)
