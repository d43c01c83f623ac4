"""Ranking kept samples: a connected seeded tournament and Bradley–Terry ratings in the manifest."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np

from synthloop.agent.config import RunConfig
from synthloop.agent.runner import start_run
from synthloop.tools.critic.base import JudgeInput
from synthloop.tools.critic.pairwise import PairwiseResult
from synthloop.tools.critic.rank import rank_samples, tournament_pairs
from synthloop.tools.types import Layout, Match, ObjectSpec, Ratings, Sample, TaskSpec

SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=1, max_count=2)], n_images=6, width=96, height=96, seed=4)


def _connected(ids: list[str], pairs: list[tuple[str, str]]) -> bool:
    reached, frontier = {ids[0]}, [ids[0]]
    while frontier:
        node = frontier.pop()
        for a, b in pairs:
            for x, y in ((a, b), (b, a)):
                if x == node and y not in reached:
                    reached.add(y)
                    frontier.append(y)
    return reached == set(ids)


def test_tournament_is_connected_balanced_and_seeded() -> None:
    ids = [f"s{i}" for i in range(11)]
    pairs = tournament_pairs(ids, 3, seed=1)
    assert len(pairs) == 33 and len({frozenset(p) for p in pairs}) == 33
    assert _connected(ids, pairs)
    plays = {i: sum(i in p for p in pairs) for i in ids}
    assert set(plays.values()) == {6}
    assert tournament_pairs(ids, 3, seed=1) == pairs != tournament_pairs(ids, 3, seed=2)
    assert len(tournament_pairs(ids[:3], 5, seed=0)) == 3  # every pair once, no more
    assert tournament_pairs(ids[:1], 3, seed=0) == []


class ByQuality:
    """Scripted judge: the sample with the higher hidden quality wins."""

    id = "test.quality"

    def __init__(self, quality: dict[str, float]) -> None:
        self.quality = quality

    def compare_items(self, a: JudgeInput, b: JudgeInput, *, a_id: str, b_id: str) -> PairwiseResult:
        winner = "a" if self.quality[a_id] > self.quality[b_id] else "b"
        return PairwiseResult(a=a_id, b=b_id, judge=self.id, p_a=1.0 if winner == "a" else 0.0,
                              matches=[Match(a=a_id, b=b_id, winner=winner, judge=self.id)])


def _play(ids: list[str], matches_per_sample: int) -> tuple[Ratings, list[Match], list[str]]:
    """Rank `ids` with the quality judge (s0 worst … last best); also returns the ids loaded, in order."""
    quality = {i: float(k) for k, i in enumerate(ids)}
    layout = Layout(width=32, height=32, objects=[], seed=0)
    loads: list[str] = []

    def load(sample_id: str) -> JudgeInput:
        loads.append(sample_id)
        sample = Sample(id=sample_id, index=0, attempt=0, seed=0, split="train", image_path="x.png", width=32,
                        height=32, layout=layout)
        return JudgeInput(sample=sample, image=np.zeros((32, 32, 3), np.uint8), spec=SPEC)

    ratings, matches = rank_samples(ids, load, ByQuality(quality), matches_per_sample=matches_per_sample, seed=0,
                                    n_bootstrap=50)
    return ratings, matches, loads


def _implied_order(matches: list[Match]) -> set[tuple[str, str]]:
    """(better, worse) for every pair the matches order: a chain of wins leads from one to the other."""
    above = {(m.a, m.b) if m.winner == "a" else (m.b, m.a) for m in matches}
    players = {p for pair in above for p in pair}
    for middle in players:  # transitive closure (Floyd–Warshall order: every path through `middle` added)
        above |= {(a, d) for a, b in above if b == middle for c, d in above if c == middle}
    return above


def test_ratings_follow_every_order_the_matches_imply() -> None:
    """A sparse tournament (8 samples, 3 opponents each, 24 matches) leaves some pairs unordered (two samples
    may both be unbeaten without meeting); every pair a chain of wins orders must be rated in that order."""
    ids = [f"s{i}" for i in range(8)]
    ratings, matches, loads = _play(ids, matches_per_sample=3)
    assert len(matches) == 24 and ratings.method == "bradley_terry" and ratings.n_matches == 24
    implied = _implied_order(matches)
    assert all(int(a[1:]) > int(b[1:]) for a, b in implied), "the scripted judge prefers higher quality"
    assert len(implied) > 24, "the chains of wins order more pairs than were played"
    for better, worse in implied:
        assert ratings.scores[better] > ratings.scores[worse], (better, worse)
    assert all(lo <= ratings.scores[i] <= hi for i, (lo, hi) in ratings.intervals.items())
    assert len(loads) < 2 * len(matches)  # the cache spares most reloads


def test_a_round_robin_recovers_the_whole_order() -> None:
    """Every pair plays once and the win counts are all different, so the data decides a total order, and
    Bradley–Terry must give it: with equal opponents, a higher rating means more expected wins (the fit's
    equations set expected wins, plus a prior term rising with the rating, equal to actual wins)."""
    ids = [f"s{i}" for i in range(8)]
    ratings, matches, _ = _play(ids, matches_per_sample=7)
    assert {frozenset((m.a, m.b)) for m in matches} == {frozenset(p) for p in combinations(ids, 2)}
    assert len(matches) == 28
    wins = {i: sum((m.a if m.winner == "a" else m.b) == i for m in matches) for i in ids}
    assert sorted(wins.values()) == list(range(8))
    assert sorted(ids, key=lambda i: ratings.scores[i]) == sorted(ids, key=wins.__getitem__) == ids


def test_the_loop_writes_ratings_to_the_manifest(tmp_path: Path) -> None:
    summary = start_run(tmp_path / "out", RunConfig(rank_matches_per_sample=2), spec=SPEC, auto_approve=True)
    assert summary.kept == 6 and summary.phase_seconds.get("rank", 0) > 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    ratings = json.loads((tmp_path / "out" / "ratings.json").read_text())
    assert ratings["method"] == "bradley_terry" and ratings["judge"] == "measured.pairwise"
    assert {r["id"]: r["rating"] for r in rows} == {k: round(v, 2) for k, v in ratings["scores"].items()}
    assert len(ratings["matches"]) == 12 and set(ratings["intervals"]) == {r["id"] for r in rows}
