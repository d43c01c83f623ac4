"""Best-of-n selection: render n candidates for one layout, compare them pairwise, keep the winner.

`pick_best(candidates, compare)` takes candidate ids and a function giving P(a is better than b):
- n ≤ `round_robin_max` (default 4, i.e. at most 6 comparisons): **round robin**. Every pair is compared once;
  each candidate scores the sum of its preference probabilities; the highest score wins, ties going to the
  earlier candidate. Uses every comparison, so one noisy vote matters less.
- larger n: **knockout**. Candidates meet in order (1 v 2, 3 v 4, …; an odd one out gets a bye), the one with
  P ≥ 0.5 goes on (a tie keeps the earlier one), until one is left: n − 1 comparisons.

Each comparison is recorded as a `Match` (winner "a" / "b" / "tie" for P > / < / = 0.5).
`pairwise_compare` adapts a `PairwiseJudge` and the candidates' `JudgeInput`s into such a function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations

from synthloop.tools.critic.base import JudgeInput
from synthloop.tools.critic.pairwise import PairwiseJudge
from synthloop.tools.types import Match

CompareFn = Callable[[str, str], float]
ROUND_ROBIN_MAX = 4


def _match(a: str, b: str, p_a: float, judge: str) -> Match:
    if not 0.0 <= p_a <= 1.0:
        raise ValueError(f"compare({a!r}, {b!r}) returned {p_a}, not a probability")
    return Match(a=a, b=b, winner="a" if p_a > 0.5 else "b" if p_a < 0.5 else "tie", judge=judge)


def pick_best(
    candidates: Sequence[str],
    compare: CompareFn,
    *,
    round_robin_max: int = ROUND_ROBIN_MAX,
    judge: str = "best_of_n",
) -> tuple[str, list[Match]]:
    """The best candidate and the matches played (round robin for small n, knockout above; see the module)."""
    ids = list(candidates)
    if not ids:
        raise ValueError("pick_best needs at least one candidate")
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate candidate ids: {ids}")
    matches: list[Match] = []
    if len(ids) <= round_robin_max:
        score = dict.fromkeys(ids, 0.0)
        for a, b in combinations(ids, 2):
            p_a = float(compare(a, b))
            matches.append(_match(a, b, p_a, judge))
            score[a] += p_a
            score[b] += 1.0 - p_a
        best = max(score.values())
        return next(c for c in ids if score[c] == best), matches
    alive = ids
    while len(alive) > 1:
        survivors = []
        for i in range(0, len(alive) - 1, 2):
            a, b = alive[i], alive[i + 1]
            p_a = float(compare(a, b))
            matches.append(_match(a, b, p_a, judge))
            survivors.append(a if p_a >= 0.5 else b)
        if len(alive) % 2:
            survivors.append(alive[-1])
        alive = survivors
    return alive[0], matches


def pairwise_compare(judge: PairwiseJudge, items: Mapping[str, JudgeInput]) -> CompareFn:
    """A `compare(a, b) -> P(a better)` over candidates `items` (id → JudgeInput) using `judge`."""

    def compare(a: str, b: str) -> float:
        return judge.compare_items(items[a], items[b], a_id=a, b_id=b).p_a

    return compare
