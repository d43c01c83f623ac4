"""Property tests (hypothesis) of the TaskSpec contract: every valid spec survives a JSON round trip unchanged,
and anything else is refused with a pydantic ValidationError, never another exception."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from synthloop.tools.types import (
    MAX_IMAGES,
    MAX_OBJECTS_PER_IMAGE,
    MAX_SIDE,
    MIN_SIDE,
    Difficulty,
    ExportFormat,
    Task,
    TaskSpec,
)

SETTINGS = settings(max_examples=100, deadline=None)

class_names = st.from_regex(r"[a-z0-9][a-z0-9 \-]{0,20}", fullmatch=True)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)  # any Unicode but lone surrogates


@st.composite
def objects(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(st.lists(class_names, min_size=1, max_size=6, unique=True))
    budget = MAX_OBJECTS_PER_IMAGE
    result = []
    for i, name in enumerate(names):
        high = draw(st.integers(min_value=1 if i == 0 else 0, max_value=min(budget, 30)))
        budget -= high
        low = draw(st.integers(min_value=0, max_value=high))
        result.append({"name": name, "min_count": low, "max_count": high,
                       "attributes": draw(st.lists(st.text(max_size=40).filter(_unicode), max_size=3)),
                       "prompt": draw(texts)})
    return result


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@st.composite
def splits(draw: st.DrawFn) -> dict[str, float]:
    train = draw(st.integers(min_value=0, max_value=100))
    val = draw(st.integers(min_value=0, max_value=100 - train))
    return {"train": train / 100, "val": val / 100, "test": (100 - train - val) / 100}


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "objects": draw(objects()),
        "n_images": draw(st.integers(min_value=1, max_value=MAX_IMAGES)),
        "width": draw(st.integers(min_value=MIN_SIDE, max_value=MAX_SIDE)),
        "height": draw(st.integers(min_value=MIN_SIDE, max_value=MAX_SIDE)),
        "tasks": draw(st.lists(st.sampled_from(list(Task)), min_size=1, unique=True)),
        "formats": draw(st.lists(st.sampled_from(list(ExportFormat)), min_size=1, unique=True)),
        "scene": draw(texts), "style": draw(texts),
        "difficulty": draw(st.sampled_from(list(Difficulty))),
        "splits": draw(splits()),
        "seed": draw(st.integers(min_value=0, max_value=2**32 - 1)),
        "budgets": {"max_attempts_per_image": draw(st.integers(1, 20)),
                    "max_total_attempts_factor": draw(st.floats(1.0, 20.0))},
        "request": draw(texts),
        "questions": draw(st.lists(texts.filter(bool), max_size=3)),
        "defaults_used": draw(st.lists(texts, max_size=3)),
    }


@SETTINGS
@given(valid_specs())
def test_valid_specs_round_trip_through_json(data: dict[str, Any]) -> None:
    spec = TaskSpec.model_validate(data)
    assert TaskSpec.model_validate_json(spec.model_dump_json()) == spec
    assert TaskSpec.model_validate(json.loads(json.dumps(spec.model_dump(mode="json")))) == spec
    assert spec.class_names == [o["name"] for o in data["objects"]]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
FIELDS = [*TaskSpec.model_fields, "objects.0.name", "objects.0.max_count", "splits.train", "budgets.extra"]


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    target: Any = data
    *parents, last = path.split(".")
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


@SETTINGS
@given(valid_specs(), st.sampled_from(FIELDS), json_values)
def test_a_spec_with_any_field_replaced_validates_or_raises_validation_error(data: dict[str, Any], field: str,
                                                                          value: Any) -> None:
    broken = _set(data, field, value)
    try:
        spec = TaskSpec.model_validate(broken)
    except ValidationError:
        return
    assert TaskSpec.model_validate_json(spec.model_dump_json()) == spec  # what validates is a real spec


@SETTINGS
@given(json_values)
def test_arbitrary_json_is_a_spec_or_a_validation_error(value: Any) -> None:
    try:
        spec = TaskSpec.model_validate(value)
    except ValidationError as exc:
        assert exc.errors()  # it names what is wrong
        return
    assert isinstance(value, dict) and spec.objects


@SETTINGS
@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_arbitrary_bytes_are_a_spec_or_a_validation_error(raw: bytes) -> None:
    try:
        spec = TaskSpec.model_validate_json(raw)
    except ValidationError as exc:
        assert exc.errors()
        return
    assert spec.objects


def test_a_lone_surrogate_is_a_validation_error() -> None:
    with_surrogate = {"objects": [{"name": "cup"}], "request": "cups \udcff"}
    try:
        TaskSpec.model_validate(with_surrogate)
    except ValidationError:
        return
    raise AssertionError("a request holding a lone surrogate was accepted")
