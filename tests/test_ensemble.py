"""Ensemble rules: any_reject reuses the embedded rule, weighted_vote weighs judges against a threshold."""

from __future__ import annotations

import pytest

from synthloop.tools.critic.base import BaseJudge, Judge, combine_any_reject
from synthloop.tools.critic.ensemble import EnsembleConfig, EnsembleJudge, combine
from synthloop.tools.types import Decision, Verdict


def v(judge: str, decision: str, *reasons: str, fix: str | None = None, **scores: float) -> Verdict:
    return Verdict(judge=judge, decision=Decision(decision), reasons=list(reasons), fix=fix, scores=scores)


VERDICTS = [
    v("rules.geometry", "accept", min_box_side_px=12.0),
    v("rules.occlusion", "reject", "instance 1 (cup): 80% hidden (limit 75%)", min_visible_fraction=0.2),
    v("vlm.pointwise", "edit", "cup 1 is cut off", fix="move cup 1 into view", realism=4.0),
]


class Fixed(BaseJudge):
    def __init__(self, verdict: Verdict) -> None:
        self.id = verdict.judge
        self.verdict = verdict
        self.calls = 0

    def judge(self, item: object) -> Verdict:
        self.calls += 1
        return self.verdict


@pytest.mark.parametrize("decisions", [["accept"], ["accept", "edit"], ["edit", "reject", "accept"], ["reject"]])
def test_any_reject_agrees_with_the_embedded_rule(decisions: list[str]) -> None:
    verdicts = [v(f"j{i}", d, *(["why"] if d != "accept" else []), fix="f" if d == "edit" else None)
                for i, d in enumerate(decisions)]
    combined = combine(verdicts, EnsembleConfig(rule="any_reject"))
    assert combined.decision == combine_any_reject(verdicts) and combined.judge == "ensemble.any_reject"


def test_any_reject_collects_the_rejecting_reasons_and_namespaced_scores() -> None:
    combined = combine(VERDICTS)
    assert combined.decision == Decision.reject
    assert combined.reasons == ["rules.occlusion: instance 1 (cup): 80% hidden (limit 75%)"]  # rejecters only
    assert combined.fix is None
    assert combined.scores["rules.occlusion.min_visible_fraction"] == 0.2
    assert combined.scores["vlm.pointwise.realism"] == 4.0
    assert combined.scores["reject_share"] == pytest.approx(1 / 3)
    assert combined.scores["edit_share"] == pytest.approx(2 / 3)


def test_weighted_vote_thresholds() -> None:
    heavy_vlm = EnsembleConfig(rule="weighted_vote", weights={"vlm.pointwise": 2.0}, threshold=0.5)
    combined = combine(VERDICTS, heavy_vlm)  # reject 1/4 < 0.5, reject+edit 3/4 ≥ 0.5 → edit
    assert combined.decision == Decision.edit and combined.judge == "ensemble.weighted_vote"
    assert combined.fix == "move cup 1 into view"
    assert combined.scores["reject_share"] == pytest.approx(0.25)

    heavy_rules = EnsembleConfig(rule="weighted_vote", weights={"rules.occlusion": 3.0}, threshold=0.5)
    assert combine(VERDICTS, heavy_rules).decision == Decision.reject  # 3/5 reject

    lenient = EnsembleConfig(rule="weighted_vote", threshold=0.9)
    accepted = combine(VERDICTS, lenient)
    assert accepted.decision == Decision.accept and accepted.fix is None
    assert accepted.reasons == ["accepted over rules.occlusion, vlm.pointwise: objecting vote share 0.67 "
                                "< threshold 0.9"]


def test_advisory_judges_and_all_zero_weights() -> None:
    advisory = EnsembleConfig(rule="weighted_vote", weights={"rules.occlusion": 0.0, "vlm.pointwise": 0.0})
    combined = combine(VERDICTS, advisory)
    assert combined.decision == Decision.accept and combined.scores["reject_share"] == 0.0
    nobody = EnsembleConfig(rule="weighted_vote", default_weight=0.0)
    assert combine(VERDICTS, nobody).decision == Decision.accept


def test_ensemble_judge_asks_every_member_once() -> None:
    members = [Fixed(verdict) for verdict in VERDICTS]
    ensemble = EnsembleJudge(members, EnsembleConfig(rule="weighted_vote", threshold=0.3))
    assert isinstance(ensemble, Judge) and ensemble.id == "ensemble.weighted_vote"
    combined, individual = ensemble.judge_all(object())
    assert combined.decision == Decision.reject and individual == VERDICTS
    assert [m.calls for m in members] == [1, 1, 1]


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(ValueError):
        EnsembleConfig(rule="majority")
    with pytest.raises(ValueError):
        EnsembleConfig(threshold=0.0)
    with pytest.raises(ValueError, match="negative"):
        combine(VERDICTS, EnsembleConfig(rule="weighted_vote", weights={"vlm.pointwise": -1.0}))
    with pytest.raises(ValueError, match="at least one"):
        combine([])
    with pytest.raises(ValueError, match="at least one"):
        EnsembleJudge([])
