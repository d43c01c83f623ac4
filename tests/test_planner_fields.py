"""Planner fields added for issue 3: splits, seed, typos, object boxes/masks, count conflicts, style, prompts."""

from __future__ import annotations

import pytest

from synthloop.agent.planner import plan_request
from synthloop.tools.types import Task, TaskSpec


def plan(request: str) -> TaskSpec:
    return plan_request(request, None)


@pytest.mark.parametrize(
    ("request_text", "splits"),
    [
        ("1000 images of cats, split 70/20/10", (0.7, 0.2, 0.1)),
        ("500 pictures of forklifts, 10% validation", (0.9, 0.1, 0.0)),
        ("80/10/10 split, 200 images of dogs", (0.8, 0.1, 0.1)),
        ("dogs, 90/10 train/val", (0.9, 0.1, 0.0)),
        ("eggs, 20% test", (0.6, 0.2, 0.2)),
        ("cats, 60% train, 20% val, 20% test", (0.6, 0.2, 0.2)),
        ("cats", (0.8, 0.2, 0.0)),
        ("2-4 cups per image", (0.8, 0.2, 0.0)),  # a count range is not a split
    ],
)
def test_splits(request_text: str, splits: tuple[float, float, float]) -> None:
    spec = plan(request_text)
    assert (spec.splits.train, spec.splits.val, spec.splits.test) == pytest.approx(splits)


@pytest.mark.parametrize(("request_text", "seed"), [("300 drones, seed 42", 42), ("random seed=7 cats", 7),
                                                    ("seed: 3, 20 images of dogs", 3), ("cats", 0)])
def test_seed_is_read_and_not_taken_for_a_count(request_text: str, seed: int) -> None:
    spec = plan(request_text)
    assert spec.seed == seed
    assert spec.n_images != seed or seed == 0


def test_typos_in_keywords_and_class_nouns() -> None:
    spec = plan("500 imgaes of oranges with boudning boxes in yolo formt, captoins")
    assert spec.n_images == 500 and spec.tasks == [Task.detection, Task.captioning]
    assert [f.value for f in spec.formats] == ["yolo"]
    assert plan("photos of cupps and platess").class_names == ["cup", "plate"]
    assert plan("I need tasks done: 20 images of cats").tasks == [Task.detection]  # "tasks" is not "masks"


@pytest.mark.parametrize(
    ("request_text", "classes", "tasks"),
    [
        ("150 images of cardboard boxes on pallets with bounding boxes", ["cardboard box", "pallet"],
         [Task.detection]),
        ("people wearing face masks, detect the face masks", ["person", "face mask"], [Task.detection]),
        ("600 images of stacked boxes and crates, boxes and masks", ["box", "crate"],
         [Task.detection, Task.instance_segmentation]),
        ("cups with boxes and masks", ["cup"], [Task.detection, Task.instance_segmentation]),
        ("cereal boxes on shelves, box annotations", ["cereal box"], [Task.detection]),
    ],
)
def test_boxes_and_masks_as_objects_or_tasks(request_text: str, classes: list[str], tasks: list[Task]) -> None:
    spec = plan(request_text)
    assert spec.class_names == classes and spec.tasks == tasks


@pytest.mark.parametrize(
    ("request_text", "classes", "scene_word"),
    [
        ("license plates on cars", ["license plate", "car"], ""),
        ("helmets on construction workers", ["helmet", "construction worker"], ""),
        ("laptops on desks", ["laptop"], "desk"),
        ("a cat on a couch", ["cat"], "couch"),
        ("challenging desk scenes with pens", ["pen"], "desk"),
        ("a training set for a robot arm: screwdrivers", ["screwdriver"], ""),
        ("semantic segmentation of roads, cars and trees", ["road", "car", "tree"], ""),
    ],
)
def test_places_and_things(request_text: str, classes: list[str], scene_word: str) -> None:
    spec = plan(request_text)
    assert spec.class_names == classes
    assert scene_word in spec.scene


@pytest.mark.parametrize(
    ("request_text", "n_images", "asks"),
    [
        ("Generate 200 images of apples. I need exactly 350 images of apples.", 200, True),
        ("500 images of cars and also 1000 images of cars", 500, True),
        ("500 images of cars, but make it 300", 300, False),
        ("Images with 2-4 cups each, 200 of them", 200, False),
        ("captioned images of children in a park, 300", 300, False),
        ("half a dozen images of a teddy bear", 6, False),
    ],
)
def test_image_count_forms_and_conflicts(request_text: str, n_images: int, asks: bool) -> None:
    spec = plan(request_text)
    assert spec.n_images == n_images
    assert bool(spec.questions) == asks
    if asks:
        assert "more than one image count" in spec.questions[0].text


def test_weather_time_and_camera_go_to_style() -> None:
    spec = plan("200 rainy night street scenes with cars from a dashcam, wide-angle")
    for word in ("rainy", "night", "dashcam", "wide-angle"):
        assert word in spec.style
    assert spec.scene == "street"


def test_per_class_render_prompts_use_only_request_words() -> None:
    spec = plan("photorealistic images of red apples and pears in a basket")
    assert spec.objects[0].prompt == "a red apple, in a basket, photorealistic"
    assert spec.objects[1].prompt == "a pear, in a basket, photorealistic"


def test_a_single_object_is_one_per_image() -> None:
    spec = plan("50 images of a single red ball on a white table")
    assert [(o.name, o.min_count, o.max_count, o.attributes) for o in spec.objects] == [("ball", 1, 1, ["red"])]


@pytest.mark.parametrize(
    ("request_text", "part"),
    [("generate 5 billion images of cats", "5,000,000,000 images"),
     ("a trillion photos of dogs", "1,000,000,000,000 images"),
     ("100 images of cats at 100000x100000", "100000x100000"),
     ("cats, 1000000px", "1000000x1000000")],
)
def test_huge_counts_and_sizes_are_questions_not_guesses(request_text: str, part: str) -> None:
    spec = plan(request_text)
    assert spec.questions and part in spec.questions[0].text
    assert spec.n_images == 100 and spec.width == spec.height == 512
