"""A run anchored on the user's COCO data: the plan names classes the reference lacks, and the finished
dataset carries the layout report (distances to the reference, before and after) in its card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_reference import SPEC, write_reference

from synthloop.agent.backends import with_user_data
from synthloop.agent.config import RunConfig
from synthloop.agent.errors import UserInputError
from synthloop.agent.runner import start_run


def test_reference_layouts_are_reported_in_the_plan_and_the_card(tmp_path: Path) -> None:
    coco, images = write_reference(tmp_path / "ref")
    config = with_user_data(RunConfig(renderer="compositor", batch_size=4), reference_coco=coco,
                            reference_images=images)
    assert config.layout.backend == "reference"
    spec = SPEC.model_copy(update={"n_images": 4, "width": 96, "height": 96})
    start_run(tmp_path / "out", config, spec=spec, auto_approve=True)
    written = json.loads((tmp_path / "out" / "spec.json").read_text())
    assert "fork: not in the reference data, procedural layout" in written["plan_notes"]
    report = json.loads((tmp_path / "out" / "layout_prior.json").read_text())
    assert set(report["after"]["classes"]) >= {"cup", "car"}
    card = (tmp_path / "out" / "card.md").read_text()
    assert "card_layout_prior.png" in card and (tmp_path / "out" / "card_layout_prior.png").is_file()


def test_a_bad_reference_is_one_line_before_anything_runs(tmp_path: Path) -> None:
    coco, images = write_reference(tmp_path / "ref")
    (images / "ref_000.png").unlink()
    with pytest.raises(UserInputError, match=r"ref_000\.png"):
        with_user_data(RunConfig(), reference_coco=coco, reference_images=images)
    with pytest.raises(UserInputError, match="go together"):
        with_user_data(RunConfig(), reference_coco=coco)
