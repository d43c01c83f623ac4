"""The compositor: exact instance maps, depth order, honoured colours, visible objects, stable looks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from synthloop.tools.layout.procedural import ProceduralLayoutSampler
from synthloop.tools.render.compositor import CompositorRenderer
from synthloop.tools.render.compositor_shapes import SHAPES, attribute_colour, class_look, stable_hash
from synthloop.tools.types import Difficulty, Layout, LayoutObject, ObjectSpec, TaskSpec

RENDERER = CompositorRenderer()
SPEC = TaskSpec(
    objects=[
        ObjectSpec(name="cup", attributes=["red"], min_count=1, max_count=2),
        ObjectSpec(name="plate", min_count=1, max_count=2),
    ],
    width=160,
    height=128,
    scene="kitchen counter",
    style="flat illustration",
)


def _layout(seed: int = 3, spec: TaskSpec = SPEC) -> Layout:
    return ProceduralLayoutSampler().sample(spec, seed)


def _pixel_box(layout: Layout, index: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = layout.objects[index].box
    return (
        round(x0 * layout.width),
        round(y0 * layout.height),
        round(x1 * layout.width),
        round(y1 * layout.height),
    )


def test_output_shapes_types_and_provenance() -> None:
    layout = _layout()
    result = RENDERER.render(layout, SPEC, 3)
    assert result.image.shape == (128, 160, 3) and result.image.dtype == np.uint8
    assert result.instance_map is not None and result.instance_map.shape == (128, 160)
    assert np.issubdtype(result.instance_map.dtype, np.integer)
    assert result.backend == {"renderer": "compositor", "model": "procedural-v1"}
    assert len(result.amodal_areas) == len(layout.objects)
    assert "kitchen counter" in result.prompt and "flat illustration" in result.prompt
    assert "red cup" in result.prompt and "plate" in result.prompt


def test_same_inputs_give_identical_bytes_and_seeds_differ() -> None:
    layout = _layout()
    a, b = RENDERER.render(layout, SPEC, 11), RENDERER.render(layout, SPEC, 11)
    assert a.image.tobytes() == b.image.tobytes()
    assert np.array_equal(a.instance_map, b.instance_map) and a.amodal_areas == b.amodal_areas
    c = RENDERER.render(layout, SPEC, 12)
    assert not np.array_equal(a.image, c.image)


def test_every_object_paints_inside_its_box_and_amodal_bounds_visible() -> None:
    for seed in range(10):
        layout = _layout(seed)
        result = RENDERER.render(layout, SPEC, seed)
        labels = set(np.unique(result.instance_map).tolist())
        assert labels <= set(range(len(layout.objects) + 1))
        for k in range(len(layout.objects)):
            x0, y0, x1, y1 = _pixel_box(layout, k)
            mask = result.instance_map == k + 1
            visible = int(mask.sum())
            assert visible == int(mask[y0:y1, x0:x1].sum()), "pixels outside the layout box"
            assert 0 < result.amodal_areas[k] <= (x1 - x0) * (y1 - y0)
            assert visible <= result.amodal_areas[k]


def test_objects_are_painted_back_to_front_by_depth_not_list_order() -> None:
    box = (0.2, 0.2, 0.8, 0.8)
    for front_index in (0, 1):
        objects = [
            LayoutObject(category="cup", box=box, depth=1 if front_index == 0 else 0),
            LayoutObject(category="plate", box=box, depth=0 if front_index == 0 else 1),
        ]
        layout = Layout(width=160, height=128, objects=objects, seed=0)
        result = RENDERER.render(layout, SPEC, 0)
        visible = [int((result.instance_map == k + 1).sum()) for k in range(2)]
        back_index = 1 - front_index
        assert visible[front_index] == result.amodal_areas[front_index], "the front object is fully visible"
        assert visible[back_index] < result.amodal_areas[back_index], "the back object is partly hidden"


def test_blur_and_noise_touch_the_image_only() -> None:
    layout = _layout()
    clean = CompositorRenderer(blur_probability=0.0, noise=False).render(layout, SPEC, 5)
    noisy = CompositorRenderer(blur_probability=1.0, noise=True).render(layout, SPEC, 5)
    assert np.array_equal(clean.instance_map, noisy.instance_map)
    assert clean.amodal_areas == noisy.amodal_areas
    assert not np.array_equal(clean.image, noisy.image)


@pytest.mark.parametrize(("colour", "channel"), [("red", 0), ("green", 1), ("blue", 2)])
def test_colour_attributes_are_honoured(colour: str, channel: int) -> None:
    box = (0.3, 0.3, 0.7, 0.7)
    for seed in range(6):
        layout = Layout(
            width=96,
            height=96,
            objects=[LayoutObject(category="mug", box=box, attributes=[colour])],
            seed=seed,
        )
        result = RENDERER.render(layout, SPEC, seed)
        mean = result.image[result.instance_map == 1].astype(float).mean(axis=0)
        others = [c for c in range(3) if c != channel]
        assert all(mean[channel] > mean[c] + 15 for c in others), (colour, seed, mean)


def test_attribute_colour_parsing() -> None:
    assert attribute_colour(["ceramic", "red"]) == (200, 30, 35)
    light, dark = attribute_colour(["light blue"]), attribute_colour(["dark-blue"])
    assert light is not None and dark is not None and sum(light) > sum(dark)
    assert attribute_colour(["shiny", "round"]) is None


def test_objects_stand_out_from_the_background_around_them() -> None:
    spec = TaskSpec(
        objects=[ObjectSpec(name=n, min_count=1, max_count=3) for n in ("cup", "plate", "apple", "fork")],
        width=256,
        height=256,
        difficulty=Difficulty.hard,
    )
    contrasts = []
    for seed in range(12):
        layout = _layout(seed, spec)
        result = RENDERER.render(layout, spec, seed)
        image = result.image.astype(float)
        for k in range(len(layout.objects)):
            mask = result.instance_map == k + 1
            x0, y0, x1, y1 = _pixel_box(layout, k)
            ring = np.zeros_like(mask)
            ring[max(y0 - 3, 0) : y1 + 3, max(x0 - 3, 0) : x1 + 3] = True
            ring &= result.instance_map == 0
            if mask.sum() and ring.sum() > 20:
                contrasts.append(float(np.linalg.norm(image[mask].mean(0) - image[ring].mean(0))))
    assert len(contrasts) > 50
    assert min(contrasts) > 35.0


def test_hard_layouts_render_with_every_object_mostly_visible() -> None:
    spec = TaskSpec(
        objects=[ObjectSpec(name=n, min_count=2, max_count=5) for n in ("cup", "plate", "apple")],
        width=256,
        height=256,
        difficulty=Difficulty.hard,
    )
    fractions = []
    for seed in range(15):
        layout = _layout(seed, spec)
        result = RENDERER.render(layout, spec, seed)
        counts = np.bincount(result.instance_map.ravel(), minlength=len(layout.objects) + 1)[1:]
        fractions += [v / a for v, a in zip(counts, result.amodal_areas, strict=True)]
    assert min(fractions) > 0.3
    assert min(fractions) < 0.95, "hard layouts should show real occlusion"


def test_class_looks_are_stable_across_processes_and_distinct() -> None:
    code = (
        "import json; from synthloop.tools.render.compositor_shapes import class_look, stable_hash;"
        "l = class_look('cup'); print(json.dumps([stable_hash('cup'), l.shape, list(l.colour)]))"
    )
    outputs = set()
    for salt in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": salt}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(out.stdout.strip())
    look = class_look("cup")
    assert outputs == {json.dumps([stable_hash("cup"), look.shape, list(look.colour)])}
    names = ["cup", "plate", "fork", "knife", "apple", "car", "dog", "tree"]
    looks = {(class_look(n).shape, class_look(n).colour) for n in names}
    assert len(looks) == len(names)
    assert len({class_look(n).shape for n in names}) >= 4
    assert {class_look(f"class {i}").shape for i in range(200)} == set(SHAPES)


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="min_contrast"):
        CompositorRenderer(min_contrast=-1)
    with pytest.raises(ValueError, match="blur_probability"):
        CompositorRenderer(blur_probability=2)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        RENDERER.render(_layout(), SPEC, -1)
