"""Spatial relation rules: table tests with hand-made boxes, masks and depths; bounds; requested relations."""

from __future__ import annotations

import numpy as np
import pytest
from language_scenes import Thing, scene

from synthloop.tools.annotate.language import add_language_labels
from synthloop.tools.annotate.language.describe import Region
from synthloop.tools.annotate.language.labels import LanguageOptions
from synthloop.tools.annotate.language.relations import predicates, rule_relations
from synthloop.tools.masks import encode_rle
from synthloop.tools.types import Relation, Task

SIZE = 200


def box_region(box: tuple[float, float, float, float], depth: int | None = None, **kw) -> Region:
    """A region without a mask."""
    return Region(box=box, depth=depth, extent=kw.pop("extent", box), **kw)


def mask_region(rects: list[tuple[int, int, int, int]], depth: int | None = None,
                extent: tuple[float, float, float, float] | None = None,
                visible_fraction: float | None = None) -> Region:
    """A region whose visible mask is the union of `rects` (x0, y0, x1, y1); its box is the mask's."""
    mask = np.zeros((SIZE, SIZE), bool)
    for x0, y0, x1, y1 in rects:
        mask[y0:y1, x0:x1] = True
    ys, xs = np.nonzero(mask)
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    return Region(box=box, depth=depth, extent=extent or box, mask=encode_rle(mask),
                  visible_fraction=visible_fraction)


# (name, subject, object, predicate, expected)
BOX_CASES = [
    ("side by side", box_region((10, 10, 30, 30)), box_region((50, 10, 70, 30)), "left of", True),
    ("side by side, mirrored", box_region((50, 10, 70, 30)), box_region((10, 10, 30, 30)), "right of", True),
    ("touching edges still left of", box_region((10, 10, 30, 30)), box_region((30, 12, 50, 32)), "left of", True),
    ("overlapping by 30% is not left of", box_region((10, 10, 30, 30)), box_region((24, 10, 44, 30)), "left of",
     False),
    ("diagonal: neither left of", box_region((10, 10, 30, 30)), box_region((45, 45, 65, 65)), "left of", False),
    ("diagonal: neither above", box_region((10, 10, 30, 30)), box_region((45, 45, 65, 65)), "above", False),
    ("stacked vertically", box_region((10, 10, 30, 30)), box_region((12, 60, 32, 80)), "above", True),
    ("stacked vertically, mirrored", box_region((12, 60, 32, 80)), box_region((10, 10, 30, 30)), "below", True),
    ("not left of when right", box_region((50, 10, 70, 30)), box_region((10, 10, 30, 30)), "left of", False),
    ("small gap is near", box_region((10, 10, 30, 30)), box_region((35, 10, 55, 30)), "near", True),
    ("large gap is not near", box_region((10, 10, 30, 30)), box_region((40, 10, 60, 30)), "near", False),
    ("overlapping boxes are not near", box_region((10, 10, 30, 30)), box_region((25, 10, 45, 30)), "near", False),
    ("inside, in front", box_region((40, 40, 50, 50), depth=1), box_region((20, 20, 100, 100), depth=0), "inside",
     True),
    ("inside but behind", box_region((40, 40, 50, 50), depth=0), box_region((20, 20, 100, 100), depth=1), "inside",
     False),
    ("contained but more than half the area", box_region((20, 20, 90, 90), depth=1),
     box_region((20, 20, 100, 100), depth=0), "inside", False),
    ("no masks: big box overlap, higher depth", box_region((10, 10, 50, 50), depth=2),
     box_region((30, 30, 70, 70), depth=1), "in front of", True),
    ("no masks: sliver of overlap", box_region((10, 10, 50, 50), depth=2), box_region((48, 48, 90, 90), depth=1),
     "in front of", False),
    ("no masks: equal depth", box_region((10, 10, 50, 50), depth=1), box_region((30, 30, 70, 70), depth=1),
     "in front of", False),
    ("no masks: behind is the inverse", box_region((30, 30, 70, 70), depth=1), box_region((10, 10, 50, 50), depth=2),
     "behind", True),
    ("no depth: no depth relation", box_region((10, 10, 50, 50)), box_region((30, 30, 70, 70)), "in front of",
     False),
    ("resting on: sticks out above, bottom in the upper band, in front", box_region((40, 20, 60, 45), depth=1),
     box_region((20, 40, 100, 80), depth=0), "on", True),
    ("under is the inverse of on", box_region((20, 40, 100, 80), depth=0), box_region((40, 20, 60, 45), depth=1),
     "under", True),
    ("bottom too deep in the object is not on", box_region((40, 20, 60, 70), depth=1),
     box_region((20, 40, 100, 80), depth=0), "on", False),
    ("wider than the object is not on", box_region((10, 20, 110, 45), depth=1),
     box_region((20, 40, 100, 80), depth=0), "on", False),
    ("hanging over the side is not on", box_region((90, 20, 120, 45), depth=1),
     box_region((20, 40, 100, 80), depth=0), "on", False),
    ("touching from above without depth", box_region((40, 20, 60, 40)), box_region((20, 40, 100, 80)), "on", True),
]


@pytest.mark.parametrize(("a", "b", "predicate", "expected"), [c[1:] for c in BOX_CASES],
                         ids=[c[0] for c in BOX_CASES])
def test_box_rules(a: Region, b: Region, predicate: str, expected: bool) -> None:
    assert (predicate in predicates(a, b)) is expected


def test_occlusion_with_masks_needs_real_contact_and_a_hidden_object() -> None:
    back_extent = (60.0, 60.0, 120.0, 120.0)
    front = mask_region([(100, 100, 150, 150)], depth=2)
    back = mask_region([(60, 60, 120, 100), (60, 100, 100, 120)], depth=1, extent=back_extent, visible_fraction=0.89)
    assert "in front of" in predicates(front, back)
    assert "behind" in predicates(back, front)
    assert "in front of" not in predicates(back, front)

    # the same boxes, but the back object is not hidden at all: no occlusion to speak of
    unhidden = mask_region([(60, 60, 120, 100), (60, 100, 100, 120)], depth=1, extent=back_extent,
                           visible_fraction=1.0)
    assert "in front of" not in predicates(front, unhidden)

    # boxes overlap, but the masks are far apart (a thin L-shape and a small blob): no contact
    thin = mask_region([(60, 60, 120, 64), (60, 60, 64, 120)], depth=1, extent=back_extent, visible_fraction=0.5)
    blob = mask_region([(110, 110, 150, 150)], depth=2)
    assert "in front of" not in predicates(blob, thin)


def test_near_uses_the_masks_when_there_are_masks() -> None:
    left = mask_region([(10, 10, 30, 30)])
    right = mask_region([(34, 10, 54, 30)])
    assert "near" in predicates(left, right)
    # a thin object: the box gap is tiny but its pixels are far
    sliver = mask_region([(10, 10, 12, 60), (10, 10, 30, 12)])  # box 10..30 × 10..60, pixels at the left/top
    post = mask_region([(33, 40, 40, 60)])
    assert sliver.box[2] + 3 == post.box[0]
    assert "near" in predicates(box_region(sliver.box), box_region(post.box))
    assert "near" not in predicates(sliver, post)


def test_resting_on_needs_the_masks_to_touch() -> None:
    table = mask_region([(20, 40, 100, 80)], depth=0, visible_fraction=0.9)
    cup = mask_region([(40, 20, 60, 45)], depth=1)
    assert "on" in predicates(cup, table) and "under" in predicates(table, cup)
    # touching from above: a flat bottom on the table top is on it; one pixel of a stem is not
    standing = mask_region([(40, 20, 60, 40)])
    on_a_stem = mask_region([(40, 20, 60, 36), (49, 36, 50, 40)])
    assert standing.box == on_a_stem.box == (40.0, 20.0, 60.0, 40.0)
    assert "on" in predicates(standing, mask_region([(20, 40, 100, 80)]))
    assert "on" not in predicates(on_a_stem, mask_region([(20, 40, 100, 80)]))


def test_rule_relations_are_bounded_per_subject_and_in_total() -> None:
    regions = [box_region((x, y, x + 20, y + 20)) for x in range(10, 170, 40) for y in range(10, 170, 40)]
    everything = rule_relations(regions)
    assert len(everything) > 40
    per_subject = rule_relations(regions, max_per_subject=2)
    assert max(np.bincount([r.subject for r in per_subject])) == 2
    assert len(rule_relations(regions, max_relations=7)) == 7
    # nearest pairs first: with a total bound, every kept pair is at most as far apart as any dropped one
    kept = rule_relations(regions, max_relations=10)
    centre = [((r.box[0] + r.box[2]) / 2, (r.box[1] + r.box[3]) / 2) for r in regions]

    def dist(rel: Relation) -> float:
        (ax, ay), (bx, by) = centre[rel.subject], centre[rel.object]
        return float(np.hypot(ax - bx, ay - by))

    dropped = [r for r in everything if r not in kept]
    assert max(dist(r) for r in kept) <= min(dist(r) for r in dropped)


def test_scene_graph_of_an_annotation_uses_instance_indices_and_skips_hidden_objects() -> None:
    things = [
        Thing("table", (20, 100, 180, 180), depth=0),
        Thing("cup", (60, 70, 90, 120), depth=1),
        Thing("plate", (120, 80, 160, 110), depth=2),
        Thing("fork", (130, 85, 150, 105), depth=1),  # entirely behind the plate: hidden
    ]
    layout, annotation, spec = scene(things, tasks=[Task.scene_graph])
    assert annotation.instances[3].area == 0
    labelled = add_language_labels(layout, annotation, spec, seed=0)
    triples = {(r.subject, r.predicate, r.object) for r in labelled.relations}
    assert (1, "on", 0) in triples and (0, "under", 1) in triples
    assert (1, "left of", 2) in triples
    assert all(3 not in (r.subject, r.object) for r in labelled.relations)
    assert all(r.source == "rule" and r.score is None for r in labelled.relations)
    assert labelled.instances == annotation.instances


def test_requested_relations_are_kept_only_when_the_rules_confirm_them() -> None:
    things = [Thing("cup", (20, 20, 60, 60)), Thing("plate", (120, 20, 160, 60))]
    requested = [
        Relation(subject=0, predicate="left of", object=1, source="layout"),
        Relation(subject=0, predicate="to the right of", object=1, source="layout"),  # false
        Relation(subject=1, predicate="next to", object=0, source="layout"),  # too far apart
        Relation(subject=0, predicate="holding", object=1, source="layout"),  # no model to check it
    ]
    layout, annotation, spec = scene(things, tasks=[Task.scene_graph], relations=requested)
    labelled = add_language_labels(layout, annotation, spec, seed=0)
    kept = {(r.subject, r.predicate, r.object): r.source for r in labelled.relations}
    assert kept[(0, "left of", 1)] == "layout"
    assert (0, "right of", 1) not in kept and (1, "near", 0) not in kept and (0, "holding", 1) not in kept
    assert kept[(1, "right of", 0)] == "rule"


def test_max_relations_bounds_the_scene_graph() -> None:
    things = [Thing("cup", (x, y, x + 20, y + 20)) for x in range(10, 170, 45) for y in range(10, 170, 45)]
    layout, annotation, spec = scene(things, tasks=[Task.scene_graph])
    labelled = add_language_labels(layout, annotation, spec, seed=0, options=LanguageOptions(max_relations=5))
    assert len(labelled.relations) == 5
    options = LanguageOptions(max_relations=1000, max_relations_per_object=100)
    unbounded = add_language_labels(layout, annotation, spec, seed=0, options=options)
    assert len(unbounded.relations) > 5
