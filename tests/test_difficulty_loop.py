"""Each sample records the difficulty its renderer measured, and the spec's difficulty moves it."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from synthloop.agent.config import RunConfig
from synthloop.agent.runner import start_run
from synthloop.tools.types import Difficulty, ObjectSpec, TaskSpec

SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=1, max_count=3), ObjectSpec(name="plate", max_count=2)],
                n_images=8, width=128, height=128, seed=2)


def _scores(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert all(row["difficulty_score"] == row["render_info"]["difficulty_score"] for row in rows)
    return [row["difficulty_score"] for row in rows]


def test_samples_record_the_measured_difficulty_and_hard_specs_measure_harder(tmp_path: Path) -> None:
    medians = {}
    for level in (Difficulty.easy, Difficulty.hard):
        out = tmp_path / level.value
        start_run(out, RunConfig(renderer="copy_paste", batch_size=4), spec=SPEC.model_copy(
            update={"difficulty": level}), auto_approve=True)
        medians[level] = statistics.median(_scores(out))
    assert 0.0 <= medians[Difficulty.easy] < medians[Difficulty.hard] <= 1.0
