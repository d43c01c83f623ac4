"""Contracts every layout sampler, renderer and annotator backend keeps; new backends join the lists below."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from synthloop.tools.annotate.base import Annotator
from synthloop.tools.annotate.exact import ExactAnnotator
from synthloop.tools.layout.base import LayoutSampler
from synthloop.tools.layout.procedural import ProceduralLayoutSampler
from synthloop.tools.masks import decode_rle, mask_bbox, rle_area, rle_bbox
from synthloop.tools.render.base import Renderer
from synthloop.tools.render.compositor import CompositorRenderer
from synthloop.tools.types import Difficulty, ObjectSpec, Task, TaskSpec

SAMPLERS = [ProceduralLayoutSampler()]
RENDERERS = [CompositorRenderer()]
ANNOTATORS = [ExactAnnotator()]  # annotators that read exact masks off the render
SEEDS = range(6)

SPEC = TaskSpec(
    objects=[
        ObjectSpec(name="cup", attributes=["blue"], min_count=1, max_count=3),
        ObjectSpec(name="plate", min_count=0, max_count=2),
        ObjectSpec(name="fork", min_count=1, max_count=2),
    ],
    width=192,
    height=160,
    tasks=[Task.detection, Task.instance_segmentation, Task.scene_graph],
    difficulty=Difficulty.hard,
)


def _ids(backend: object) -> str:
    return backend.id  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("backend", "protocol"),
    [
        *((s, LayoutSampler) for s in SAMPLERS),
        *((r, Renderer) for r in RENDERERS),
        *((a, Annotator) for a in ANNOTATORS),
    ],
    ids=lambda v: getattr(v, "id", getattr(v, "__name__", "")),
)
def test_backend_implements_its_protocol(backend: object, protocol: type) -> None:
    assert isinstance(backend, protocol)
    assert isinstance(backend.id, str) and backend.id  # type: ignore[attr-defined]


@pytest.mark.parametrize("sampler", SAMPLERS, ids=_ids)
def test_layout_contract(sampler: LayoutSampler) -> None:
    layouts = [sampler.sample(SPEC, seed) for seed in SEEDS]
    assert [sampler.sample(SPEC, seed) for seed in SEEDS] == layouts, (
        "same spec + seed must give the same layout"
    )
    assert len({lay.model_dump_json() for lay in layouts}) == len(layouts), "different seeds must differ"
    for lay in layouts:
        assert (lay.width, lay.height) == (SPEC.width, SPEC.height)
        assert lay.objects, "a layout must place at least one object"
        for obj in lay.objects:
            x0, y0, x1, y1 = obj.box
            assert 0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0
        counts = Counter(o.category for o in lay.objects)
        for spec_obj in SPEC.objects:
            assert spec_obj.min_count <= counts[spec_obj.name] <= spec_obj.max_count
        assert all(r.subject < len(lay.objects) and r.object < len(lay.objects) for r in lay.relations)


@pytest.mark.parametrize("sampler", SAMPLERS, ids=_ids)
def test_difficulty_changes_object_sizes(sampler: LayoutSampler) -> None:
    def median_area(difficulty: Difficulty) -> float:
        spec = SPEC.model_copy(update={"difficulty": difficulty})
        areas = [
            (o.box[2] - o.box[0]) * (o.box[3] - o.box[1])
            for s in range(20)
            for o in sampler.sample(spec, s).objects
        ]
        return float(np.median(areas))

    assert (
        median_area(Difficulty.easy)
        > 1.5 * median_area(Difficulty.medium)
        > 1.5 * median_area(Difficulty.hard)
    )


@pytest.mark.parametrize("renderer", RENDERERS, ids=_ids)
@pytest.mark.parametrize("sampler", SAMPLERS, ids=_ids)
def test_render_contract(sampler: LayoutSampler, renderer: Renderer) -> None:
    layout = sampler.sample(SPEC, 1)
    first, again = renderer.render(layout, SPEC, 1), renderer.render(layout, SPEC, 1)
    assert first.image.shape == (SPEC.height, SPEC.width, 3) and first.image.dtype == np.uint8
    assert first.image.tobytes() == again.image.tobytes(), (
        "same layout + spec + seed must give the same pixels"
    )
    assert not np.array_equal(first.image, renderer.render(layout, SPEC, 2).image), "seeds must matter"
    assert first.backend.get("renderer") == renderer.id and first.backend.get("model")
    if first.instance_map is not None:
        assert first.instance_map.shape == (SPEC.height, SPEC.width)
        assert np.array_equal(first.instance_map, again.instance_map)
        assert int(first.instance_map.min()) >= 0 and int(first.instance_map.max()) <= len(layout.objects)
        assert len(first.amodal_areas) == len(layout.objects)


@pytest.mark.parametrize("annotator", ANNOTATORS, ids=_ids)
@pytest.mark.parametrize("renderer", RENDERERS, ids=_ids)
@pytest.mark.parametrize("sampler", SAMPLERS, ids=_ids)
def test_annotation_contract(sampler: LayoutSampler, renderer: Renderer, annotator: Annotator) -> None:
    for seed in SEEDS:
        layout = sampler.sample(SPEC, seed)
        render = renderer.render(layout, SPEC, seed)
        annotation = annotator.annotate(layout, render, SPEC)
        assert len(annotation.instances) == len(layout.objects)
        for k, inst in enumerate(annotation.instances):
            assert inst.layout_index == k and inst.category == layout.objects[k].category
            truth = render.instance_map == k + 1
            assert inst.segmentation is not None
            mask = decode_rle(inst.segmentation)
            assert np.array_equal(mask, truth), "the mask must be exactly the object's visible pixels"
            assert inst.area == int(truth.sum()) == rle_area(inst.segmentation)
            assert inst.bbox == mask_bbox(truth)
            if inst.area:
                assert inst.bbox == rle_bbox(inst.segmentation)
                x, y, w, h = inst.bbox
                assert x >= 0 and y >= 0 and x + w <= SPEC.width and y + h <= SPEC.height
            assert inst.visible_fraction is not None and 0.25 < inst.visible_fraction <= 1.0
        assert annotation.relations == layout.relations
