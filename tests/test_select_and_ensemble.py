"""Best-of-n selection inside the loop, and the configured ensemble rule deciding what is kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthloop.agent.config import RunConfig
from synthloop.agent.nodes import candidate_seed
from synthloop.agent.runner import start_run
from synthloop.tools.critic.base import BaseJudge, JudgeInput
from synthloop.tools.critic.pairwise import PairwiseResult
from synthloop.tools.render.compositor import CompositorRenderer
from synthloop.tools.types import Decision, ObjectSpec, Sample, TaskSpec, Verdict

SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=1, max_count=2)], n_images=5, width=96, height=96, seed=2)


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


class PreferLaterCandidate:
    """Scripted pairwise judge: the candidate with the higher index always wins."""

    id = "test.prefer_later"

    def compare_items(self, a: JudgeInput, b: JudgeInput, *, a_id: str, b_id: str) -> PairwiseResult:
        return PairwiseResult(a=a_id, b=b_id, judge=self.id, matches=[], p_a=1.0 if a_id > b_id else 0.0)


def test_best_of_n_keeps_the_winner_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("synthloop.agent.runner.make_pairwise_judge", lambda config, dup: PreferLaterCandidate())
    summary = start_run(tmp_path / "out", RunConfig(renderer="compositor", best_of_n=3, batch_size=2), spec=SPEC,
                        auto_approve=True)
    assert summary.kept == 5
    renderer = CompositorRenderer()
    for row in _manifest(tmp_path / "out"):
        sample = Sample.model_validate(row)
        selection = sample.verdicts[0]
        assert selection.judge == "select.best_of_n" and selection.scores["candidate"] == 2.0
        assert "candidate 2 of 3 won 2 of 3 comparisons" in selection.reasons[0]
        base = sample.model_copy(update={"seed": derive_base_seed(sample)})
        assert sample.seed == candidate_seed(base, 2) != base.seed
        expected = renderer.render(sample.layout, SPEC, sample.seed).image
        written = np.asarray(Image.open(tmp_path / "out" / sample.image_path).convert("RGB"))
        assert np.array_equal(written, expected)


def derive_base_seed(sample: Sample) -> int:
    from synthloop.tools.seeding import derive_seed

    return derive_seed(SPEC.seed, sample.index, sample.attempt)


def test_best_of_n_with_the_embedded_rule_judge_is_deterministic(tmp_path: Path) -> None:
    config = RunConfig(best_of_n=2, batch_size=3)
    start_run(tmp_path / "a", config, spec=SPEC, auto_approve=True)
    start_run(tmp_path / "b", config, spec=SPEC, auto_approve=True)
    first, second = _manifest(tmp_path / "a"), _manifest(tmp_path / "b")
    assert first == second and all(r["verdicts"][0]["judge"] == "select.best_of_n" for r in first)


class AlwaysObjects(BaseJudge):
    id = "test.objects"

    def judge(self, item: JudgeInput) -> Verdict:
        return Verdict(judge=self.id, decision=Decision.reject, reasons=["I object"])


def test_weighted_vote_lets_an_advisory_judge_be_outvoted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from synthloop.agent import backends

    original = backends.make_judges
    monkeypatch.setattr("synthloop.agent.runner.make_judges",
                        lambda config, dup, **kw: [*original(config, dup, **kw), AlwaysObjects()])
    advisory = RunConfig(ensemble={"rule": "weighted_vote", "weights": {"test.objects": 0.0}})
    summary = start_run(tmp_path / "advisory", advisory, spec=SPEC, auto_approve=True)
    assert summary.kept == 5 and summary.rejected == 0
    combined = _manifest(tmp_path / "advisory")[0]["verdicts"][-1]
    assert combined["judge"] == "ensemble.weighted_vote" and "accepted over test.objects" in combined["reasons"][-1]

    strict = start_run(tmp_path / "strict", RunConfig(), spec=SPEC.model_copy(update={"n_images": 2}),
                       auto_approve=True)
    assert strict.kept == 0 and strict.rejected == 6  # any_reject: every attempt rejected, budget 3 × 2

