"""The loop makes the language labels the spec asks for, on what is visible, and keeps them true after repairs."""

from __future__ import annotations

import json
from pathlib import Path

from synthloop.agent.config import RunConfig
from synthloop.agent.runner import start_run
from synthloop.tools.export.validate import validate_dataset
from synthloop.tools.types import ObjectSpec, Task, TaskSpec

SPEC = TaskSpec(
    objects=[ObjectSpec(name="cup", attributes=["red"], min_count=1, max_count=3),
             ObjectSpec(name="plate", min_count=1, max_count=2)],
    n_images=6, width=128, height=128, seed=4,
    tasks=[Task.detection, Task.instance_segmentation, Task.captioning, Task.referring_expressions,
           Task.scene_graph],
)


def test_a_run_asking_for_language_tasks_delivers_them(tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = start_run(out, RunConfig(batch_size=3), spec=SPEC, auto_approve=True)
    assert summary.kept == SPEC.n_images
    assert validate_dataset(out) == []
    for line in (out / "manifest.jsonl").read_text().splitlines():
        annotation = json.loads(line)["annotation"]
        visible = [i for i, inst in enumerate(annotation["instances"]) if inst["area"] > 0]
        assert len(annotation["captions"]) == RunConfig().language.captions_per_image
        assert {r["instance"] for r in annotation["referring"]} <= set(visible)
        assert all(r["subject"] in visible and r["object"] in visible for r in annotation["relations"])
    captions = json.loads((out / "annotations" / "captions_train.json").read_text())
    assert captions["annotations"] and all(a["caption"] for a in captions["annotations"])


def test_without_language_tasks_no_language_labels_are_made(tmp_path: Path) -> None:
    spec = SPEC.model_copy(update={"tasks": [Task.detection], "n_images": 2})
    start_run(tmp_path / "out", RunConfig(), spec=spec, auto_approve=True)
    for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines():
        annotation = json.loads(line)["annotation"]
        assert annotation["captions"] == [] and annotation["referring"] == [] and annotation["relations"] == []


def test_captions_and_expressions_are_made_again_after_a_drop_repair(tmp_path: Path) -> None:
    """A judge plugged in through the judge registry asks to drop every plate; the repaired samples' captions
    and expressions describe what is left (no plate), and relations point at instances that exist."""
    from test_repair import DropPlates

    from synthloop.tools.critic.registry import JUDGES

    spec = SPEC.model_copy(update={"objects": [SPEC.objects[0], ObjectSpec(name="plate", min_count=0, max_count=2)],
                                    "n_images": 8})
    JUDGES.register(DropPlates.id, DropPlates)
    try:
        config = RunConfig.model_validate({"judges": [DropPlates.id], "batch_size": 3})
        start_run(tmp_path / "out", config, spec=spec, auto_approve=True)
    finally:
        JUDGES.unregister(DropPlates.id)
    rows = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert any(row["repairs"] for row in rows), "the seeded layouts contain plates: some samples are repaired"
    for row in rows:
        annotation = row["annotation"]
        assert all(inst["category"] == "cup" for inst in annotation["instances"])
        assert not any("plate" in caption for caption in annotation["captions"])
        assert not any("plate" in s for ref in annotation["referring"] for s in ref["sentences"])
        n = len(annotation["instances"])
        assert all(r["subject"] < n and r["object"] < n for r in annotation["relations"])
    assert validate_dataset(tmp_path / "out") == []
