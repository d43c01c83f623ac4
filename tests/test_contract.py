"""The run's contract: what the chosen backends cannot deliver is named back before approval; under --yes an
undeliverable task stops the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthloop.agent.config import RunConfig
from synthloop.agent.errors import UserInputError
from synthloop.agent.runner import start_run
from synthloop.tools.annotate.base import BaseAnnotator
from synthloop.tools.annotate.registry import ANNOTATORS
from synthloop.tools.backend import Capabilities
from synthloop.tools.types import Annotation, Instance, ObjectSpec, Task, TaskSpec

SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=1, max_count=2)], n_images=2, width=64, height=64,
                style="night, rain")


class BoxesOnly(BaseAnnotator):
    """Layout boxes as labels, no masks (a box detector's capabilities)."""

    id = "boxes_only"
    capabilities = Capabilities()

    def annotate(self, layout, render, spec):  # type: ignore[no-untyped-def]
        instances = [Instance(category=o.category, area=1, bbox=(o.box[0] * layout.width, o.box[1] * layout.height,
                                                                  (o.box[2] - o.box[0]) * layout.width,
                                                                  (o.box[3] - o.box[1]) * layout.height))
                     for o in layout.objects]
        return Annotation(instances=instances)


def test_style_words_the_renderer_cannot_draw_are_named_back_and_sources_noted(tmp_path: Path) -> None:
    start_run(tmp_path / "out", RunConfig(renderer="compositor"), spec=SPEC, auto_approve=True)
    spec = json.loads((tmp_path / "out" / "spec.json").read_text())
    named = {(n["kind"], n["text"], n["about"]) for n in spec["notices"]}
    assert {("cannot_deliver", "night", "style"), ("cannot_deliver", "rain", "style")} <= named
    assert spec["plan_notes"] == ["cup: procedural shapes, not real objects (the copy_paste renderer pastes real "
                                  "cut-outs)"]


def test_copy_paste_draws_weather_and_names_back_what_it_cannot(tmp_path: Path) -> None:
    spec = SPEC.model_copy(update={"style": "night, rain, watercolor", "n_images": 1})
    start_run(tmp_path / "out", RunConfig(renderer="copy_paste"), spec=spec, auto_approve=True)
    written = json.loads((tmp_path / "out" / "spec.json").read_text())
    assert [(n["text"], n["about"]) for n in written["notices"] if n["kind"] == "cannot_deliver"] == \
        [("watercolor", "style")]
    assert len(written["plan_notes"]) == 1 and written["plan_notes"][0].startswith("cup: ")


def test_a_mask_task_with_a_box_only_annotator_stops_an_unattended_run(tmp_path: Path) -> None:
    ANNOTATORS.register(BoxesOnly.id, BoxesOnly)
    try:
        spec = SPEC.model_copy(update={"tasks": [Task.detection, Task.instance_segmentation]})
        with pytest.raises(UserInputError, match=r"cannot deliver instance segmentation .*boxes only"):
            start_run(tmp_path / "masks", RunConfig(annotator="boxes_only"), spec=spec, auto_approve=True)
        assert not list((tmp_path / "masks").glob("images/**/*.png"))
        summary = start_run(tmp_path / "boxes", RunConfig(annotator="boxes_only"), spec=SPEC, auto_approve=True)
        assert summary.attempts >= SPEC.n_images  # only boxes were asked: the run is not refused
    finally:
        ANNOTATORS.unregister(BoxesOnly.id)
