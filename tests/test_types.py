"""Core types validate on construction: impossible values cannot be built."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from synthloop.tools.types import (
    Budgets,
    Decision,
    ExportFormat,
    Instance,
    Layout,
    LayoutObject,
    Match,
    ObjectSpec,
    Ratings,
    Relation,
    Sample,
    Splits,
    Task,
    TaskSpec,
    Verdict,
)


def _spec(**kw: object) -> TaskSpec:
    return TaskSpec(objects=[ObjectSpec(name="cup")], **kw)


def test_defaults_are_a_runnable_spec() -> None:
    spec = _spec()
    assert spec.n_images == 100 and (spec.width, spec.height) == (512, 512)
    assert spec.tasks == [Task.detection] and spec.formats == [ExportFormat.coco]
    assert spec.class_names == ["cup"]
    assert spec.splits.names() == ["train", "val"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_images": 0},
        {"n_images": -5},
        {"n_images": 10_000_000},
        {"width": 8},
        {"height": 100_000},
        {"formats": ["png"]},
        {"tasks": ["detection", "detection"]},
        {"splits": {"train": 0.5, "val": 0.2, "test": 0.0}},
        {"seed": -1},
    ],
)
def test_impossible_specs_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValidationError):
        _spec(**kwargs)


def test_object_counts_and_classes_are_checked() -> None:
    with pytest.raises(ValidationError, match="max_count"):
        ObjectSpec(name="cup", min_count=3, max_count=1)
    with pytest.raises(ValidationError, match="duplicate object classes"):
        TaskSpec(objects=[ObjectSpec(name="cup"), ObjectSpec(name="cup")])
    with pytest.raises(ValidationError, match="at most 100"):
        TaskSpec(objects=[ObjectSpec(name="cup", max_count=60), ObjectSpec(name="plate", max_count=60)])
    with pytest.raises(ValidationError):
        ObjectSpec(name="Cups!")
    with pytest.raises(ValidationError, match="empty"):
        TaskSpec(objects=[ObjectSpec(name="cup", min_count=0, max_count=0)])


def test_render_prompt_falls_back_to_attributes_and_name() -> None:
    assert ObjectSpec(name="car", attributes=["red"]).render_prompt == "red car"
    assert ObjectSpec(name="car", prompt="a vintage car").render_prompt == "a vintage car"


def test_spec_round_trips_through_json() -> None:
    spec = _spec(n_images=7, difficulty="hard", splits=Splits(train=0.7, val=0.2, test=0.1),
                 budgets=Budgets(max_attempts_per_image=5))
    assert TaskSpec.model_validate_json(spec.model_dump_json()) == spec


def test_layout_boxes_must_be_normalised_and_relations_in_range() -> None:
    with pytest.raises(ValidationError, match="normalised"):
        LayoutObject(category="cup", box=(0.5, 0.5, 0.4, 0.9))
    with pytest.raises(ValidationError, match="normalised"):
        LayoutObject(category="cup", box=(0.1, 0.1, 1.2, 0.9))
    obj = LayoutObject(category="cup", box=(0.1, 0.1, 0.4, 0.5))
    with pytest.raises(ValidationError, match="object index"):
        Layout(width=64, height=64, objects=[obj], relations=[Relation(subject=0, predicate="left of", object=1)],
               seed=0)


def test_instance_and_sample_validation() -> None:
    with pytest.raises(ValidationError):
        Instance(category="cup", bbox=(0, 0, -1, 5), area=3)
    with pytest.raises(ValidationError):
        Instance(category="cup", bbox=(0, 0, 1, 5), area=-3)
    layout = Layout(width=64, height=64, objects=[], seed=1)
    with pytest.raises(ValidationError):
        Sample(id="../etc", index=0, attempt=0, seed=0, split="train", image_path="x.png", width=64, height=64,
               layout=layout)


def test_verdict_match_ratings() -> None:
    verdict = Verdict(judge="rules.geometry", decision="reject", reasons=["box leaves image"])
    assert verdict.decision is Decision.reject
    with pytest.raises(ValidationError):
        Verdict(judge="x", decision="maybe")
    with pytest.raises(ValidationError):
        Match(a="1", b="2", winner="c", judge="vlm")
    ratings = Ratings(method="elo", scores={"a": 1010.0}, n_matches=3)
    assert ratings.intervals == {}
