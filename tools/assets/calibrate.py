"""Calibrate and score the class ↔ asset matcher on the labelled pairs in data/match_pairs.jsonl.

Each pair names a class (with its scene and the other classes of the request), an asset description (a Tux
Paint stamp's text or a clip-art file name) with its folders, and whether the asset shows an object of that
class; traps (fork / forklift, mouse the animal / the device, glasses / glass, …) are labelled false. The grid
over `MatchParams` keeps the setting with the best F1 among those with precision ≥ 0.95.

    python -m synthloop.tools.assets.calibrate [--errors]
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass
from importlib import resources

from synthloop.tools.assets.describe import words
from synthloop.tools.assets.matcher import Matcher, MatchParams
from synthloop.tools.assets.wordnet import WordNet, load_wordnet

MIN_PRECISION = 0.95


@dataclass(frozen=True)
class Score:
    """Precision / recall of one matcher setting on the pairs, and the pairs it got wrong."""

    params: MatchParams
    precision: float
    recall: float
    errors: tuple[dict, ...]

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def load_pairs() -> list[dict]:
    """The labelled class / asset pairs."""
    text = resources.files("synthloop.tools.assets").joinpath("data/match_pairs.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def score(pairs: list[dict], wordnet: WordNet | None, params: MatchParams) -> Score:
    """Run the matcher with `params` over `pairs`."""
    matcher = Matcher(wordnet, params)
    tp = fp = fn = 0
    errors = []
    for pair in pairs:
        sense = matcher.class_sense(pair["class"], [pair["scene"]], pair["others"])
        predicted = matcher.asset_matches(sense, pair["asset"], words(pair["folder"]))
        tp += predicted and pair["match"]
        fp += predicted and not pair["match"]
        fn += not predicted and pair["match"]
        if predicted != pair["match"]:
            errors.append(pair)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return Score(params, precision, recall, tuple(errors))


def calibrate(pairs: list[dict], wordnet: WordNet) -> Score:
    """The grid setting with the best F1 at precision ≥ MIN_PRECISION (best precision if none reaches it)."""
    scores = [score(pairs, wordnet, MatchParams(max_hypernym_steps=steps, min_class_depth=depth,
                                                relatedness_margin=margin, min_related_depth=related))
              for steps, depth, margin, related in itertools.product(range(2, 11, 2), (3, 5), range(1, 5),
                                                                     (4, 5, 6, 7))]
    good = [s for s in scores if s.precision >= MIN_PRECISION] or sorted(scores, key=lambda s: -s.precision)[:1]
    return max(good, key=lambda s: (s.f1, -s.params.max_hypernym_steps, s.params.relatedness_margin))


def main() -> None:
    """Print the calibrated setting, precision and recall, and optionally the misclassified pairs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--errors", action="store_true", help="list the pairs the matcher gets wrong")
    args = parser.parse_args()
    wordnet = load_wordnet()
    if wordnet is None:
        raise SystemExit("error: WordNet files not found (apt-get install wordnet-base)")
    pairs = load_pairs()
    best = calibrate(pairs, wordnet)
    default = score(pairs, wordnet, MatchParams())
    print(f"{len(pairs)} pairs ({sum(p['match'] for p in pairs)} matches)")
    print(f"calibrated {best.params}: precision {best.precision:.3f} recall {best.recall:.3f} f1 {best.f1:.3f}")
    print(f"in use     {default.params}: precision {default.precision:.3f} recall {default.recall:.3f}")
    if args.errors:
        for pair in default.errors:
            kind = "false match" if not pair["match"] else "missed"
            print(f"  {kind}: {pair['class']!r} ~ {pair['asset']!r} ({pair['folder']}) {pair['note']}")


if __name__ == "__main__":
    main()
