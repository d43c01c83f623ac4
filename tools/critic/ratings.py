"""Ratings from pairwise matches: online Elo, and Bradley–Terry by maximum likelihood with bootstrap intervals.

Both put ratings on the familiar Elo scale: `base` (1000) is the average player, and a difference of `scale`
(400) points means 10:1 odds, i.e. P(a beats b) = 1 / (1 + 10 ** ((R_b - R_a) / scale)). Ties count as half a
win for each side.

- `elo_ratings` is the online update (everyone starts at `base`; after each match the winner takes
  K · (outcome − expected) points from the loser). It is **order-dependent**: the same matches in another
  order give other ratings, and recent matches weigh more. Use it for a quick view of a stream of matches.
- `bradley_terry` fits the strengths θ that maximise the likelihood of all matches at once (Newton's method on
  the logistic log-likelihood, a few iterations for any number of matches, because matches are first
  aggregated into a players × players win-count matrix). It does not depend on match order, and is what a
  leaderboard should rank by (FastChat's `elo_analysis.py` does the same). Points = base + scale · log10(e) · θ
  with θ centred on 0.
- Bootstrap intervals (`n_bootstrap > 0`): the matches are resampled with replacement `n_bootstrap` times with
  a seeded generator, the ratings are refitted on each resample, and the percentile interval of each player's
  rating is reported. For Bradley–Terry the resample is drawn as multinomial counts over the distinct
  (pair, outcome) cells, which has exactly the distribution of resampling the matches themselves and costs
  nothing per match.

A player who won (or lost) every match has no finite maximum-likelihood strength. `l2` adds a weak Gaussian
prior on θ (precision `l2`, in natural-log units) that keeps such ratings finite; with `l2=0` the plain
maximum-likelihood estimate is returned and data without one is refused with a `ValueError`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from synthloop.tools.types import Match, Ratings

BASE = 1000.0
SCALE = 400.0
ELO_K = 32.0
BT_L2 = 1e-2


@dataclass(frozen=True)
class MatchArrays:
    """Matches as arrays: player names (sorted), index of a and b per match, a's score (1, 0.5 or 0)."""

    names: list[str]
    a: np.ndarray
    b: np.ndarray
    score: np.ndarray

    @property
    def n(self) -> int:
        """Number of matches."""
        return int(self.a.size)


def encode_matches(matches: Iterable[Match]) -> MatchArrays:
    """Turn `Match` records into arrays; players are indexed in sorted name order (independent of match order)."""
    rows = list(matches)
    names = sorted({m.a for m in rows} | {m.b for m in rows})
    index = {name: i for i, name in enumerate(names)}
    a = np.fromiter((index[m.a] for m in rows), dtype=np.int64, count=len(rows))
    b = np.fromiter((index[m.b] for m in rows), dtype=np.int64, count=len(rows))
    value = {"a": 1.0, "b": 0.0, "tie": 0.5}
    score = np.fromiter((value[m.winner] for m in rows), dtype=np.float64, count=len(rows))
    if np.any(a == b):
        raise ValueError("a match needs two different players")
    return MatchArrays(names=names, a=a, b=b, score=score)


@dataclass(frozen=True)
class Record:
    """A player's wins, losses and ties."""

    wins: int = 0
    losses: int = 0
    ties: int = 0

    @property
    def matches(self) -> int:
        """Matches played."""
        return self.wins + self.losses + self.ties


def records(matches: Iterable[Match]) -> dict[str, Record]:
    """Wins / losses / ties per player."""
    counts: dict[str, list[int]] = {}
    for m in matches:
        ca, cb = counts.setdefault(m.a, [0, 0, 0]), counts.setdefault(m.b, [0, 0, 0])
        if m.winner == "a":
            ca[0] += 1
            cb[1] += 1
        elif m.winner == "b":
            ca[1] += 1
            cb[0] += 1
        else:
            ca[2] += 1
            cb[2] += 1
    return {name: Record(*c) for name, c in sorted(counts.items())}


def win_probability(rating_a: float, rating_b: float, *, scale: float = SCALE) -> float:
    """P(a beats b) for two ratings on the Elo scale (ties counted as half)."""
    return 1.0 / (1.0 + 10.0 ** ((rating_b - rating_a) / scale))


# -- online Elo -------------------------------------------------------------------------------------------


def _online_elo(n_players: int, a: Sequence[int], b: Sequence[int], score: Sequence[float], k: float,
                base: float, scale: float) -> np.ndarray:
    ratings = [base] * n_players
    for i, j, s in zip(a, b, score, strict=True):
        expected = 1.0 / (1.0 + 10.0 ** ((ratings[j] - ratings[i]) / scale))
        delta = k * (s - expected)
        ratings[i] += delta
        ratings[j] -= delta
    return np.asarray(ratings)


def elo_ratings(
    matches: Iterable[Match] | MatchArrays,
    *,
    k: float = ELO_K,
    base: float = BASE,
    scale: float = SCALE,
    n_bootstrap: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
) -> Ratings:
    """Online Elo over the matches in the order given (order-dependent: see the module docstring).

    With `n_bootstrap > 0`, intervals come from replaying resampled (hence reshuffled) matches.
    """
    data = matches if isinstance(matches, MatchArrays) else encode_matches(matches)
    n_players = len(data.names)
    a, b, score = data.a.tolist(), data.b.tolist(), data.score.tolist()
    scores = _online_elo(n_players, a, b, score, k, base, scale)
    intervals: dict[str, tuple[float, float]] = {}
    if n_bootstrap > 0 and data.n:
        rng = np.random.default_rng(seed)
        samples = np.empty((n_bootstrap, n_players))
        for r in range(n_bootstrap):
            idx = rng.integers(0, data.n, data.n)
            samples[r] = _online_elo(n_players, data.a[idx].tolist(), data.b[idx].tolist(),
                                     data.score[idx].tolist(), k, base, scale)
        intervals = _percentile_intervals(data.names, samples, confidence)
    return Ratings(method="elo", scores=_as_dict(data.names, scores), intervals=intervals, n_matches=data.n)


# -- Bradley–Terry ----------------------------------------------------------------------------------------


def win_matrix(data: MatchArrays) -> np.ndarray:
    """W[i, j] = wins of i over j, a tie counting half for each side."""
    n_players = len(data.names)
    wins = np.zeros((n_players, n_players))
    np.add.at(wins, (data.a, data.b), data.score)
    np.add.at(wins, (data.b, data.a), 1.0 - data.score)
    return wins


def _log_likelihood(theta: np.ndarray, wins: np.ndarray, l2: float) -> float:
    diff = theta[:, None] - theta[None, :]
    # log σ(d) = −log(1 + e^(−d)), stable for any d.
    return float(-(wins * np.logaddexp(0.0, -diff)).sum() - 0.5 * l2 * theta @ theta)


def _reachable_all(adjacency: np.ndarray) -> bool:
    seen = np.zeros(adjacency.shape[0], dtype=bool)
    seen[0] = True
    frontier = seen.copy()
    while frontier.any():
        new = adjacency[frontier].any(axis=0) & ~seen
        seen |= new
        frontier = new
    return bool(seen.all())


def mle_exists(wins: np.ndarray) -> bool:
    """Whether the unregularised Bradley–Terry MLE exists (Zermelo / Ford): the directed graph "i won at
    least part of a match against j" is strongly connected."""
    beat = wins > 0
    return _reachable_all(beat) and _reachable_all(beat.T)


def fit_bradley_terry(
    wins: np.ndarray,
    *,
    l2: float = BT_L2,
    theta0: np.ndarray | None = None,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> np.ndarray:
    """Strengths θ (natural-log units, mean 0) maximising the Bradley–Terry likelihood of a win matrix.

    Damped Newton iterations on the (concave) log-likelihood; `l2` is the precision of a Gaussian prior on θ.
    Raises `ValueError` when `l2 == 0` and the maximum-likelihood estimate does not exist.
    """
    n_players = wins.shape[0]
    if n_players == 0:
        return np.zeros(0)
    if l2 <= 0 and n_players > 1 and not mle_exists(wins):
        raise ValueError("no finite Bradley–Terry MLE: some group of players never lost (or never won) against "
                         "the rest, or the comparison graph is not connected; use l2 > 0")
    games = wins + wins.T
    theta = np.zeros(n_players) if theta0 is None else theta0 - theta0.mean()
    current = _log_likelihood(theta, wins, l2)
    ones = np.full((n_players, n_players), 1.0 / n_players)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(theta[None, :] - theta[:, None]))  # p[i, j] = σ(θi − θj)
        grad = (wins - games * p).sum(axis=1) - l2 * theta
        weights = games * p * (1.0 - p)
        hessian = np.diag(weights.sum(axis=1)) - weights + l2 * np.eye(n_players)  # minus the Hessian
        if l2 <= 0:
            hessian += ones  # pins the free overall shift (the gradient is orthogonal to it)
        step = np.linalg.solve(hessian, grad)
        size = 1.0
        while True:  # halve the step until the likelihood does not decrease
            candidate = theta + size * step
            value = _log_likelihood(candidate, wins, l2)
            if value >= current - 1e-12 or size < 1e-6:
                break
            size *= 0.5
        theta, current = candidate - candidate.mean(), value
        if np.max(np.abs(size * step)) < tol:
            break
    return theta


def bradley_terry(
    matches: Iterable[Match] | MatchArrays,
    *,
    base: float = BASE,
    scale: float = SCALE,
    l2: float = BT_L2,
    n_bootstrap: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
) -> Ratings:
    """Bradley–Terry ratings (order-independent maximum likelihood) on the Elo scale, with bootstrap intervals.

    See the module docstring for the scale, ties, the `l2` prior and how the bootstrap resamples matches.
    """
    data = matches if isinstance(matches, MatchArrays) else encode_matches(matches)
    wins = win_matrix(data)
    theta = fit_bradley_terry(wins, l2=l2)
    points = scale / math.log(10.0)
    intervals: dict[str, tuple[float, float]] = {}
    if n_bootstrap > 0 and data.n:
        samples = _bootstrap_theta(data, theta, l2=l2, n_bootstrap=n_bootstrap, seed=seed)
        intervals = _percentile_intervals(data.names, base + points * samples, confidence)
    return Ratings(method="bradley_terry", scores=_as_dict(data.names, base + points * theta),
                   intervals=intervals, n_matches=data.n)


def _bootstrap_theta(data: MatchArrays, theta: np.ndarray, *, l2: float, n_bootstrap: int, seed: int) -> np.ndarray:
    n_players = len(data.names)
    # One cell per distinct (a, b, score): resampling matches = multinomial counts over the cells.
    outcome = np.rint(data.score * 2).astype(np.int64)  # 0, 1 (tie), 2
    cell = (data.a * n_players + data.b) * 3 + outcome
    cells, counts = np.unique(cell, return_counts=True)
    cell_a, cell_b = (cells // 3) // n_players, (cells // 3) % n_players
    cell_score = (cells % 3) / 2.0
    rng = np.random.default_rng(seed)
    # Without a prior a resample may have no finite MLE (e.g. a player who lost its only win); a tiny prior
    # keeps the fit defined and lets such resamples widen the interval as they should.
    boot_l2 = l2 if l2 > 0 else 1e-6
    samples = np.empty((n_bootstrap, n_players))
    for r in range(n_bootstrap):
        drawn = rng.multinomial(data.n, counts / data.n)
        wins = np.zeros((n_players, n_players))
        np.add.at(wins, (cell_a, cell_b), drawn * cell_score)
        np.add.at(wins, (cell_b, cell_a), drawn * (1.0 - cell_score))
        samples[r] = fit_bradley_terry(wins, l2=boot_l2, theta0=theta)
    return samples


def _percentile_intervals(names: list[str], samples: np.ndarray, confidence: float) -> dict[str, tuple[float, float]]:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    low, high = np.percentile(samples, [50 * (1 - confidence), 50 * (1 + confidence)], axis=0)
    return {name: (float(lo), float(hi)) for name, lo, hi in zip(names, low, high, strict=True)}


def _as_dict(names: list[str], values: np.ndarray) -> dict[str, float]:
    return {name: float(v) for name, v in zip(names, values, strict=True)}
