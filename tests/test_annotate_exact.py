"""The exact annotator on hand-made instance maps: boxes, areas, visible fractions, hidden objects, errors."""

from __future__ import annotations

import numpy as np
import pytest

from synthloop.tools.annotate.exact import ExactAnnotator
from synthloop.tools.masks import decode_rle
from synthloop.tools.render.base import RenderResult
from synthloop.tools.types import Layout, LayoutObject, ObjectSpec, Relation, Task, TaskSpec

H, W = 40, 50
SPEC = TaskSpec(objects=[ObjectSpec(name="cup"), ObjectSpec(name="plate")], width=W, height=H)
ANNOTATOR = ExactAnnotator()


def _layout(relations: list[Relation] | None = None) -> Layout:
    objects = [
        LayoutObject(category="cup", box=(0.1, 0.1, 0.5, 0.6), depth=0),  # px x 5..25, y 4..24
        LayoutObject(category="plate", box=(0.3, 0.3, 0.7, 0.9), depth=1),  # px x 15..35, y 12..36
        LayoutObject(category="cup", box=(0.8, 0.1, 0.9, 0.3), depth=0),  # px x 40..45, y 4..12
    ]
    return Layout(width=W, height=H, objects=objects, relations=relations or [], seed=0)


def _render(amodal: list[int] | None = None) -> tuple[RenderResult, np.ndarray]:
    instance_map = np.zeros((H, W), dtype=np.int32)
    instance_map[5:20, 6:24] = 1
    instance_map[12:35, 15:34] = 2  # in front of object 1, hides part of it
    # object 3 is fully hidden: no label 3 anywhere
    image = np.zeros((H, W, 3), dtype=np.uint8)
    return RenderResult(image=image, instance_map=instance_map, amodal_areas=amodal or []), instance_map


def test_one_instance_per_layout_object_with_exact_geometry() -> None:
    render, instance_map = _render(amodal=[15 * 18, 23 * 19, 20])
    annotation = ANNOTATOR.annotate(_layout(), render, SPEC)
    assert [i.category for i in annotation.instances] == ["cup", "plate", "cup"]
    assert [i.layout_index for i in annotation.instances] == [0, 1, 2]
    assert all(i.source == "exact" for i in annotation.instances)

    cup, plate, hidden = annotation.instances
    cup_mask = instance_map == 1
    assert cup.area == int(cup_mask.sum()) == 15 * 18 - 8 * 9
    assert cup.bbox == (6.0, 5.0, 18.0, 15.0)
    assert cup.visible_fraction == pytest.approx(cup.area / (15 * 18))
    assert np.array_equal(decode_rle(cup.segmentation), cup_mask)

    assert plate.bbox == (15.0, 12.0, 19.0, 23.0) and plate.area == 23 * 19
    assert plate.visible_fraction == 1.0

    assert hidden.area == 0 and hidden.bbox == (0.0, 0.0, 0.0, 0.0) and hidden.visible_fraction == 0.0
    assert hidden.segmentation is not None and not decode_rle(hidden.segmentation).any()


def test_visible_fraction_is_one_when_amodal_areas_are_unknown() -> None:
    render, _ = _render(amodal=None)
    annotation = ANNOTATOR.annotate(_layout(), render, SPEC)
    assert [i.visible_fraction for i in annotation.instances] == [1.0, 1.0, 1.0]


def test_pixels_outside_the_layout_box_are_still_found() -> None:
    render, instance_map = _render()
    instance_map[38, 0] = 1  # a stray pixel far from object 1's box
    annotation = ANNOTATOR.annotate(_layout(), render, SPEC)
    cup = annotation.instances[0]
    assert cup.area == int((instance_map == 1).sum())
    assert cup.bbox == (0.0, 5.0, 24.0, 34.0)
    assert np.array_equal(decode_rle(cup.segmentation), instance_map == 1)


def test_relations_are_kept_only_for_scene_graphs() -> None:
    relations = [Relation(subject=1, predicate="in front of", object=0)]
    render, _ = _render()
    plain = ANNOTATOR.annotate(_layout(relations), render, SPEC)
    assert plain.relations == []
    graph_spec = SPEC.model_copy(update={"tasks": [Task.detection, Task.scene_graph]})
    graph = ANNOTATOR.annotate(_layout(relations), render, graph_spec)
    assert graph.relations == relations


def test_a_render_without_masks_is_a_clear_error() -> None:
    render = RenderResult(image=np.zeros((H, W, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="SAM annotator"):
        ANNOTATOR.annotate(_layout(), render, SPEC)


def test_a_map_of_the_wrong_size_is_a_clear_error() -> None:
    render = RenderResult(image=np.zeros((H, W, 3), np.uint8), instance_map=np.zeros((H, W + 1), np.int32))
    with pytest.raises(ValueError, match="instance map is 51x40"):
        ANNOTATOR.annotate(_layout(), render, SPEC)
