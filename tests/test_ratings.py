"""Elo and Bradley–Terry ratings: recovery of known strengths, order (in)dependence, ties, intervals, speed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthloop.tools.critic.ratings import (
    bradley_terry,
    elo_ratings,
    encode_matches,
    records,
    win_probability,
)
from synthloop.tools.types import Match

POINTS = 400 / math.log(10)  # Elo points per natural-log unit of strength
TRUE_THETA = np.array([-1.1, -0.45, 0.05, 0.5, 1.0])
NAMES = [f"p{i}" for i in range(len(TRUE_THETA))]


def true_points() -> dict[str, float]:
    centred = TRUE_THETA - TRUE_THETA.mean()
    return {n: 1000 + POINTS * t for n, t in zip(NAMES, centred, strict=True)}


def simulate(n: int, seed: int, tie_rate: float = 0.0) -> list[Match]:
    """Matches between random pairs, outcomes drawn from the Bradley–Terry model with TRUE_THETA.

    Ties (when asked) replace a decided outcome at random, which keeps P(a) + ½ P(tie) = σ(θa − θb)."""
    rng = np.random.default_rng(seed)
    matches = []
    for _ in range(n):
        i, j = rng.choice(len(NAMES), size=2, replace=False)
        p = 1 / (1 + math.exp(TRUE_THETA[j] - TRUE_THETA[i]))
        if rng.random() < tie_rate:
            winner = "tie" if rng.random() < 2 * min(p, 1 - p) else ("a" if p > 0.5 else "b")
        else:
            winner = "a" if rng.random() < p else "b"
        matches.append(Match(a=NAMES[i], b=NAMES[j], winner=winner, judge="sim"))
    return matches


def ranking(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=scores.__getitem__)


def spearman(x: dict[str, float], y: dict[str, float]) -> float:
    names = sorted(x)
    rx = np.argsort(np.argsort([x[n] for n in names]))
    ry = np.argsort(np.argsort([y[n] for n in names]))
    return float(np.corrcoef(rx, ry)[0, 1])


@pytest.mark.parametrize("l2", [0.0, 1e-2])
def test_bradley_terry_recovers_known_strengths(l2: float) -> None:
    ratings = bradley_terry(simulate(2000, seed=1), l2=l2)
    assert ratings.method == "bradley_terry" and ratings.n_matches == 2000
    assert ranking(ratings.scores) == NAMES  # perfect order (Kendall τ = Spearman ρ = 1)
    truth = true_points()
    errors = [ratings.scores[n] - truth[n] for n in NAMES]
    assert max(abs(e) for e in errors) < 45  # ≈ 2 standard errors at 800 games per player
    assert abs(np.mean(list(ratings.scores.values())) - 1000) < 1e-6  # centred on the base


def test_bradley_terry_matches_a_direct_logistic_regression_fit() -> None:
    """Reference: Newton–Raphson on the per-match Bernoulli likelihood with an explicit design matrix."""
    matches = simulate(600, seed=2)
    data = encode_matches(matches)
    k = len(data.names)
    design = np.zeros((data.n, k))
    design[np.arange(data.n), data.a] = 1.0
    design[np.arange(data.n), data.b] = -1.0
    design = design[:, 1:]  # player 0 is the reference (θ0 = 0)
    y = data.score
    beta = np.zeros(k - 1)
    for _ in range(50):
        p = 1 / (1 + np.exp(-design @ beta))
        beta += np.linalg.solve(design.T @ (design * (p * (1 - p))[:, None]), design.T @ (y - p))
    reference = np.concatenate([[0.0], beta])
    reference = 1000 + POINTS * (reference - reference.mean())
    ours = bradley_terry(matches, l2=0.0)
    assert np.allclose([ours.scores[n] for n in data.names], reference, atol=1e-6)


def test_two_players_closed_form_with_ties_as_half_wins() -> None:
    matches = ([Match(a="x", b="y", winner="a", judge="j")] * 6 + [Match(a="y", b="x", winner="a", judge="j")] * 2
               + [Match(a="x", b="y", winner="tie", judge="j")] * 4)
    scores = bradley_terry(matches, l2=0.0).scores
    p = (6 + 0.5 * 4) / 12  # x's share with ties counted half
    assert scores["x"] - scores["y"] == pytest.approx(400 * math.log10(p / (1 - p)), abs=1e-6)
    assert win_probability(scores["x"], scores["y"]) == pytest.approx(p)
    table = records(matches)
    assert sorted(table) == ["x", "y"]
    assert (table["x"].wins, table["x"].losses, table["x"].ties) == (6, 2, 4)
    assert (table["y"].wins, table["y"].losses, table["y"].ties, table["y"].matches) == (2, 6, 4, 12)


def test_all_ties_give_equal_ratings() -> None:
    ratings = bradley_terry([Match(a="x", b="y", winner="tie", judge="j")] * 5, l2=0.0)
    assert ratings.scores["x"] == pytest.approx(1000) and ratings.scores["y"] == pytest.approx(1000)


def test_bradley_terry_does_not_depend_on_match_order_or_sides() -> None:
    matches = simulate(1000, seed=3, tie_rate=0.2)
    rng = np.random.default_rng(0)
    shuffled = [matches[i] for i in rng.permutation(len(matches))]
    flip = {"a": "b", "b": "a", "tie": "tie"}
    mirrored = [Match(a=m.b, b=m.a, winner=flip[m.winner], judge=m.judge) for m in matches]
    base = bradley_terry(matches).scores
    for other in (shuffled, mirrored):
        scores = bradley_terry(other).scores
        assert all(scores[n] == pytest.approx(base[n], abs=1e-9) for n in NAMES)


def test_elo_is_order_dependent_but_close_to_bradley_terry() -> None:
    matches = simulate(2000, seed=4)
    forward = elo_ratings(matches, k=4).scores
    backward = elo_ratings(matches[::-1], k=4).scores
    assert forward != backward  # online Elo depends on the order
    bt = bradley_terry(matches).scores
    for elo in (forward, backward):
        assert spearman(elo, bt) >= 0.9
        assert max(abs(elo[n] - bt[n]) for n in NAMES) < 60
        assert sum(elo.values()) == pytest.approx(1000 * len(NAMES))  # zero-sum updates


def test_elo_single_match_update() -> None:
    ratings = elo_ratings([Match(a="x", b="y", winner="a", judge="j")], k=32).scores
    assert ratings == {"x": pytest.approx(1016.0), "y": pytest.approx(984.0)}
    tie = elo_ratings([Match(a="x", b="y", winner="tie", judge="j")], k=32).scores
    assert tie == {"x": pytest.approx(1000.0), "y": pytest.approx(1000.0)}


def test_bootstrap_intervals_cover_the_truth_and_are_seeded() -> None:
    matches = simulate(2000, seed=5, tie_rate=0.1)
    ratings = bradley_terry(matches, n_bootstrap=300, seed=7)
    truth = true_points()
    covered = sum(lo <= truth[n] <= hi for n, (lo, hi) in ratings.intervals.items())
    assert covered >= 4  # 95% intervals: all 5 expected, one miss tolerated
    for n in NAMES:
        lo, hi = ratings.intervals[n]
        assert lo < ratings.scores[n] < hi and 10 < hi - lo < 120
    assert bradley_terry(matches, n_bootstrap=300, seed=7).intervals == ratings.intervals
    assert bradley_terry(matches, n_bootstrap=300, seed=8).intervals != ratings.intervals
    elo = elo_ratings(matches, n_bootstrap=20, seed=1)
    assert set(elo.intervals) == set(NAMES)


def test_an_undefeated_player_needs_the_prior() -> None:
    matches = [Match(a="x", b="y", winner="a", judge="j")] * 3 + [Match(a="y", b="z", winner="tie", judge="j")]
    with pytest.raises(ValueError, match="no finite Bradley–Terry MLE"):
        bradley_terry(matches, l2=0.0)
    scores = bradley_terry(matches, n_bootstrap=50).scores  # default weak prior: finite, x on top
    assert ranking(scores)[-1] == "x" and all(math.isfinite(v) for v in scores.values())


def test_ten_thousand_matches_with_bootstrap_recover_the_order() -> None:
    matches = simulate(10_000, seed=6, tie_rate=0.1)
    ratings = bradley_terry(matches, n_bootstrap=200, seed=0)
    assert ranking(ratings.scores) == NAMES
    assert all(lo <= ratings.scores[name] <= hi for name, (lo, hi) in ratings.intervals.items())


def test_bad_matches_are_refused() -> None:
    with pytest.raises(ValueError, match="two different players"):
        bradley_terry([Match(a="x", b="x", winner="a", judge="j")])
    with pytest.raises(ValueError, match="confidence"):
        bradley_terry(simulate(50, seed=0), n_bootstrap=5, confidence=1.5)
