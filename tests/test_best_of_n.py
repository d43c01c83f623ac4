"""Best-of-n: round robin for small n, knockout above, with every comparison recorded."""

from __future__ import annotations

import pytest

from synthloop.tools.critic.best_of_n import pairwise_compare, pick_best
from synthloop.tools.critic.pairwise import RulePairwiseJudge

QUALITY = {"c0": 0.2, "c1": 0.9, "c2": 0.5, "c3": 0.7, "c4": 0.1, "c5": 0.6, "c6": 0.3}


def by_quality(a: str, b: str) -> float:
    return 1.0 if QUALITY[a] > QUALITY[b] else 0.0 if QUALITY[a] < QUALITY[b] else 0.5


def test_round_robin_for_small_n() -> None:
    calls: list[tuple[str, str]] = []

    def compare(a: str, b: str) -> float:
        calls.append((a, b))
        return by_quality(a, b)

    winner, matches = pick_best(["c0", "c1", "c2", "c3"], compare)
    assert winner == "c1" and len(matches) == len(calls) == 6
    assert {(m.a, m.b) for m in matches} == {tuple(sorted(p)) for p in calls}
    assert all(m.judge == "best_of_n" for m in matches)


def test_knockout_for_larger_n_uses_n_minus_one_comparisons() -> None:
    winner, matches = pick_best(list(QUALITY), by_quality)
    assert winner == "c1" and len(matches) == len(QUALITY) - 1
    assert [(m.a, m.b, m.winner) for m in matches[:3]] == [("c0", "c1", "b"), ("c2", "c3", "b"), ("c4", "c5", "b")]


def test_soft_preferences_and_ties() -> None:
    # A beats B narrowly, B beats C, C beats A: round robin sums the probabilities.
    p = {("A", "B"): 0.55, ("A", "C"): 0.2, ("B", "C"): 0.9}
    winner, matches = pick_best(["A", "B", "C"], lambda a, b: p[a, b])
    assert winner == "B"  # B: 0.45 + 0.9 = 1.35 > C: 0.8 + 0.1 > A: 0.75
    assert [m.winner for m in matches] == ["a", "b", "a"]
    winner, matches = pick_best(["x", "y"], lambda a, b: 0.5)
    assert winner == "x" and matches[0].winner == "tie"  # ties keep the earlier candidate
    assert pick_best(["only"], by_quality) == ("only", [])


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        pick_best([], by_quality)
    with pytest.raises(ValueError, match="duplicate"):
        pick_best(["a", "a"], by_quality)
    with pytest.raises(ValueError, match="not a probability"):
        pick_best(["a", "b"], lambda a, b: 2.0)


def test_pairwise_compare_adapts_a_pairwise_judge() -> None:
    from test_vlm_judge import item

    clean, occluded = item(), item()
    hidden = occluded.sample.annotation.instances[0].model_copy(update={"visible_fraction": 0.1})
    occluded.sample = occluded.sample.model_copy(
        update={"annotation": occluded.sample.annotation.model_copy(update={"instances": [hidden]})})
    compare = pairwise_compare(RulePairwiseJudge(), {"clean": clean, "occluded": occluded})
    assert compare("clean", "occluded") == 1.0 and compare("occluded", "clean") == 0.0
    assert pick_best(["occluded", "clean"], compare)[0] == "clean"
