"""Pairwise judging: the protocol, the result of one comparison, and a model-free fallback judge.

A pairwise judge compares two samples made for the same spec and returns a `PairwiseResult`: every vote as a
`Match` (with `swapped=True` when b was shown first), P(a is better) with ties counting half, and how often the
two presentation orders disagreed (position inconsistency), the usual failure of LLM/VLM judges.

`RulePairwiseJudge` is the fallback used when no VLM endpoint is configured. It is a **heuristic**, not a
judgement of realism: it prefers the sample that passes more rule checks and, between equals, the one whose
least visible object is more visible and whose masks fit their boxes better. It only sees what the rule
judges see (annotations and trivial pixel statistics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from synthloop.tools.critic.base import Judge, JudgeInput
from synthloop.tools.critic.rules import ContentJudge, GeometryJudge, MaskBoxJudge, OcclusionJudge
from synthloop.tools.types import Decision, Match

Position = Literal["first", "second", "tie"]


@dataclass(frozen=True)
class Vote:
    """One answer of a pairwise judge: which position won, and whether b was shown first."""

    position: Position
    swapped: bool
    reasons: tuple[str, ...] = ()

    @property
    def winner(self) -> Literal["a", "b", "tie"]:
        """The winner by content (a or b), undoing the presentation order."""
        if self.position == "tie":
            return "tie"
        first_is_a = not self.swapped
        return "a" if (self.position == "first") == first_is_a else "b"


@dataclass
class PairwiseResult:
    """The outcome of comparing a with b.

    - `p_a`: P(a better) = (votes for a + ½ ties) / votes.
    - `n_pairs` / `inconsistent_pairs`: the k-th (a, b) vote and the k-th (b, a) vote form a pair; a pair is
      inconsistent when the two orders name different winners by content.
    - `first_position_rate`: share of non-tie votes that picked whatever was shown first (0.5 = no bias);
      None unless both orders were asked.
    """

    a: str
    b: str
    judge: str
    matches: list[Match]
    p_a: float
    n_pairs: int = 0
    inconsistent_pairs: int = 0
    first_position_rate: float | None = None
    reasons: list[str] = field(default_factory=list)
    prompt_hash: str | None = None

    @property
    def position_inconsistency(self) -> float:
        """Share of order pairs whose two orders disagree (0 when no pair was asked)."""
        return self.inconsistent_pairs / self.n_pairs if self.n_pairs else 0.0

    @property
    def winner(self) -> Literal["a", "b", "tie"]:
        """The overall winner by preference probability."""
        return "a" if self.p_a > 0.5 else "b" if self.p_a < 0.5 else "tie"


def result_from_votes(
    a: str, b: str, judge: str, votes: Sequence[Vote], *, prompt_hash: str | None = None
) -> PairwiseResult:
    """Aggregate votes (in any mix of orders) into a `PairwiseResult`."""
    if not votes:
        raise ValueError("no votes to aggregate")
    matches = [Match(a=a, b=b, winner=v.winner, swapped=v.swapped, judge=judge) for v in votes]
    p_a = sum(1.0 if m.winner == "a" else 0.5 if m.winner == "tie" else 0.0 for m in matches) / len(matches)
    straight = [v for v in votes if not v.swapped]
    swapped = [v for v in votes if v.swapped]
    pairs = list(zip(straight, swapped, strict=False))
    decisive = [v for v in votes if v.position != "tie"]
    both_orders = bool(straight and swapped)
    first_rate = sum(v.position == "first" for v in decisive) / len(decisive) if decisive and both_orders else None
    reasons = [r for v in votes for r in v.reasons]
    return PairwiseResult(
        a=a, b=b, judge=judge, matches=matches, p_a=p_a, n_pairs=len(pairs),
        inconsistent_pairs=sum(x.winner != y.winner for x, y in pairs), first_position_rate=first_rate,
        reasons=reasons, prompt_hash=prompt_hash,
    )


@runtime_checkable
class PairwiseJudge(Protocol):
    """Compares two samples made for the same spec. `id` is recorded in every `Match`."""

    id: str

    def compare_items(self, a: JudgeInput, b: JudgeInput, *, a_id: str, b_id: str) -> PairwiseResult:
        """Compare sample a with sample b."""
        ...


class RulePairwiseJudge:
    """Fallback pairwise judge from the rule judges' verdicts and scores (a heuristic; see the module docstring).

    quality = (share of rule judges that accept) + `soft_weight` · mean(min visible fraction, min mask–box IoU);
    qualities within `tie_margin` tie. One deterministic vote per comparison (no position to be biased by).
    """

    id = "rules.pairwise"

    def __init__(self, judges: Sequence[Judge] | None = None, *, soft_weight: float = 0.25,
                 tie_margin: float = 0.01) -> None:
        self.judges = list(judges) if judges is not None else [
            GeometryJudge(), MaskBoxJudge(), OcclusionJudge(), ContentJudge(),
        ]
        self.soft_weight = soft_weight
        self.tie_margin = tie_margin

    def quality(self, item: JudgeInput) -> float:
        """The heuristic quality of one sample."""
        verdicts = [judge.judge(item) for judge in self.judges]
        passed = sum(v.decision == Decision.accept for v in verdicts) / len(verdicts)
        scores = {k: val for v in verdicts for k, val in v.scores.items()}
        soft = [min(1.0, max(0.0, scores[k])) for k in ("min_visible_fraction", "min_mask_box_iou") if k in scores]
        return passed + self.soft_weight * (sum(soft) / len(soft) if soft else 0.0)

    def compare_items(self, a: JudgeInput, b: JudgeInput, *, a_id: str, b_id: str) -> PairwiseResult:
        """One vote for the sample of higher quality (a tie within `tie_margin`)."""
        qa, qb = self.quality(a), self.quality(b)
        position: Position = "tie" if abs(qa - qb) <= self.tie_margin else "first" if qa > qb else "second"
        reason = f"rule quality {qa:.3f} vs {qb:.3f}"
        return result_from_votes(a_id, b_id, self.id, [Vote(position, swapped=False, reasons=(reason,))])
