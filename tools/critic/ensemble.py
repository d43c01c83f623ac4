"""Combining judges into one verdict by a user-configured rule.

Rules (`EnsembleConfig.rule`):
- `any_reject`: reject if any judge rejects, else edit if any asks for an edit, else accept
  (`combine_any_reject` from `base.py`, the embedded critic's rule).
- `weighted_vote`: each judge votes with its weight (`weights[judge id]`, else `default_weight`; weight 0 makes
  a judge advisory). With W the total weight, reject when the rejecting weight / W ≥ `threshold`; else edit when
  (rejecting + editing weight) / W ≥ `threshold`; else accept.

The combined verdict has judge id `ensemble.<rule>`; its reasons are those of the judges that voted for the
decision taken ("<judge id>: <reason>"), and when it accepts over some judge's objection it says so. Its scores
are the vote shares plus every judge's scores under "<judge id>.<score name>".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from synthloop.tools.backend import Capabilities
from synthloop.tools.critic.base import BaseJudge, Judge, JudgeInput, combine_any_reject
from synthloop.tools.types import Decision, Sample, Verdict


class EnsembleConfig(BaseModel):
    """How to combine judges: the rule, and for `weighted_vote` the weights and the threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: Literal["any_reject", "weighted_vote"] = "any_reject"
    weights: dict[str, float] = Field(default_factory=dict, description="Weight per judge id.")
    default_weight: float = Field(default=1.0, ge=0.0)
    threshold: float = Field(default=0.5, gt=0.0, le=1.0, description="Vote share needed to reject / edit.")

    def weight(self, judge_id: str) -> float:
        """The weight of a judge's vote."""
        value = self.weights.get(judge_id, self.default_weight)
        if value < 0:
            raise ValueError(f"weight of judge '{judge_id}' is negative ({value})")
        return value


def _share(verdicts: Sequence[Verdict], config: EnsembleConfig, decisions: set[Decision]) -> float:
    total = sum(config.weight(v.judge) for v in verdicts)
    if total <= 0:
        return 0.0
    return sum(config.weight(v.judge) for v in verdicts if v.decision in decisions) / total


def combine(verdicts: Sequence[Verdict], config: EnsembleConfig | None = None) -> Verdict:
    """One verdict from many, by `config.rule` (see the module docstring)."""
    config = config or EnsembleConfig()
    if not verdicts:
        raise ValueError("combine needs at least one verdict")
    reject_share = _share(verdicts, config, {Decision.reject})
    edit_share = _share(verdicts, config, {Decision.reject, Decision.edit})
    if config.rule == "any_reject":
        decision = combine_any_reject(list(verdicts))
    elif reject_share >= config.threshold:
        decision = Decision.reject
    elif edit_share >= config.threshold:
        decision = Decision.edit
    else:
        decision = Decision.accept

    voters = {Decision.reject: {Decision.reject}, Decision.edit: {Decision.reject, Decision.edit}}
    backing = voters.get(decision, set())
    reasons = [f"{v.judge}: {r}" for v in verdicts if v.decision in backing for r in v.reasons]
    if decision == Decision.accept:
        objecting = [v.judge for v in verdicts if v.decision != Decision.accept]
        if objecting:
            reasons.append(f"accepted over {', '.join(objecting)}: objecting vote share {edit_share:.2f} "
                           f"< threshold {config.threshold:g}")
    fixes = [v.fix for v in verdicts if v.decision == Decision.edit and v.fix]
    scores = {"reject_share": reject_share, "edit_share": edit_share}
    for v in verdicts:
        scores.update({f"{v.judge}.{name}": value for name, value in v.scores.items()})
    return Verdict(
        judge=f"ensemble.{config.rule}",
        decision=decision,
        reasons=reasons,
        scores=scores,
        fix="; ".join(fixes) if decision == Decision.edit and fixes else None,
    )


class EnsembleJudge(BaseJudge):
    """A judge that asks every member judge and combines their verdicts with `combine`; stateful when any
    member is, and then it passes every kept sample on to its members."""

    def __init__(self, judges: Sequence[Judge], config: EnsembleConfig | None = None) -> None:
        if not judges:
            raise ValueError("an ensemble needs at least one judge")
        self.judges = list(judges)
        self.config = config or EnsembleConfig()
        self.id = f"ensemble.{self.config.rule}"
        self.capabilities = Capabilities(stateful=any(j.capabilities.stateful for j in self.judges))

    def observe(self, sample: Sample) -> None:
        """Tell every stateful member about a kept sample."""
        for judge in self.judges:
            if judge.capabilities.stateful:
                judge.observe(sample)

    def judge_all(self, item: JudgeInput) -> tuple[Verdict, list[Verdict]]:
        """The combined verdict and the members' verdicts (in member order), for provenance."""
        verdicts = [judge.judge(item) for judge in self.judges]
        return combine(verdicts, self.config), verdicts

    def judge(self, item: JudgeInput) -> Verdict:
        """The combined verdict."""
        return self.judge_all(item)[0]
