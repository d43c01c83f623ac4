"""Ranking a finished set of samples by pairwise judgement: a seeded tournament, then Bradley–Terry.

Each sample meets `matches_per_sample` others on a ring schedule over a seeded permutation (shift 1, 2, …), so
the comparison graph is connected (shift 1 alone is a cycle through every sample) and every sample plays
about twice `matches_per_sample` matches. Bradley–Terry (order-independent, with bootstrap intervals) turns
the matches into one rating per sample on the Elo scale. Images are loaded on demand through a small cache
sized to the schedule, so memory stays flat however many samples there are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from synthloop.tools.critic.base import JudgeInput
from synthloop.tools.critic.pairwise import PairwiseJudge
from synthloop.tools.critic.ratings import bradley_terry
from synthloop.tools.types import Match, Ratings


def tournament_pairs(ids: Sequence[str], matches_per_sample: int, seed: int) -> list[tuple[str, str]]:
    """The (a, b) pairs to play, in an order where consecutive pairs share samples (cache friendly)."""
    n = len(ids)
    if n < 2 or matches_per_sample < 1:
        return []
    order = np.random.default_rng(seed).permutation(n)
    seen: set[tuple[int, int]] = set()
    pairs: list[tuple[str, str]] = []
    for shift in range(1, min(matches_per_sample, n - 1) + 1):
        for i in range(n):
            a, b = int(order[i]), int(order[(i + shift) % n])
            key = (min(a, b), max(a, b))
            if key not in seen:
                seen.add(key)
                pairs.append((ids[a], ids[b]))
    return pairs


def rank_samples(
    ids: Sequence[str],
    load: Callable[[str], JudgeInput],
    judge: PairwiseJudge,
    *,
    matches_per_sample: int = 3,
    seed: int = 0,
    n_bootstrap: int = 200,
) -> tuple[Ratings, list[Match]]:
    """Play the tournament with `judge` and fit Bradley–Terry with bootstrap intervals."""
    pairs = tournament_pairs(ids, matches_per_sample, seed)
    cached = lru_cache(maxsize=2 * matches_per_sample + 8)(load)
    matches: list[Match] = []
    for a, b in pairs:
        matches.extend(judge.compare_items(cached(a), cached(b), a_id=a, b_id=b).matches)
    if not matches:
        raise ValueError("ranking needs at least two samples and one match per sample")
    return bradley_terry(matches, n_bootstrap=n_bootstrap, seed=seed), matches
