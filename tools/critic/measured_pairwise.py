"""A pairwise judge without a VLM: prefers the sample with the better measured quantities.

`MeasuredPairwiseJudge` compares two samples by numbers a CPU can measure, each in [0, 1]:
- `recognisability`: the mean detector confidence for the intended class inside each box
  (`RecognisabilityJudge.measure`, YOLOv3-tiny by default; DetDiffusion's perception-aware attribute);
- `certificate`: the mean label-certificate agreement of the instances (`Instance.certificate`), i.e. how well
  the annotation's sources (layout, rendered mask, detector, SAM…) agree;
- `diversity`: what the sample adds to the kept set, 1 − its highest perceptual similarity to a kept sample
  (`DuplicateIndex`, the loop's own index of kept samples);
- `rules`: the share of rule judges that accept it (a broken sample never wins on the other numbers alone).
quality = Σ weight·value / Σ weight over the quantities measured on **both** samples (a quantity one side lacks,
e.g. no certificate, is left out rather than counted as 0); qualities within `tie_margin` tie. One vote per
comparison, deterministic (nothing is shown in an order, so there is no position bias to undo). The reason
lists every quantity of both samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from synthloop.tools.critic.base import Judge, JudgeInput
from synthloop.tools.critic.duplicates import DuplicateIndex, perceptual_hash
from synthloop.tools.critic.pairwise import PairwiseResult, Position, Vote, result_from_votes
from synthloop.tools.critic.recognisability import RecognisabilityJudge
from synthloop.tools.types import Decision

DEFAULT_WEIGHTS: Mapping[str, float] = {"recognisability": 1.0, "certificate": 0.5, "diversity": 0.25, "rules": 1.0}


@dataclass(frozen=True)
class Measures:
    """The measured quantities of one sample (None: not measurable for it)."""

    recognisability: float | None = None
    certificate: float | None = None
    diversity: float | None = None
    rules: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        """Quantity name → value."""
        return {"recognisability": self.recognisability, "certificate": self.certificate,
                "diversity": self.diversity, "rules": self.rules}


class MeasuredPairwiseJudge:
    """Pairwise preference by measured quantities (see the module docstring)."""

    id = "measured.pairwise"

    def __init__(self, recognisability: RecognisabilityJudge | None = None, rules: Sequence[Judge] = (), *,
                 kept: DuplicateIndex | None = None, weights: Mapping[str, float] | None = None,
                 tie_margin: float = 0.005) -> None:
        chosen = dict(DEFAULT_WEIGHTS if weights is None else weights)
        unknown = sorted(set(chosen) - set(DEFAULT_WEIGHTS))
        if unknown or any(w < 0 for w in chosen.values()):
            raise ValueError(f"weights must be ≥ 0 and name only {', '.join(DEFAULT_WEIGHTS)} (got {chosen})")
        self.recognisability = recognisability
        self.rules = list(rules)
        self.kept = kept
        self.weights = chosen
        self.tie_margin = tie_margin

    def measure(self, item: JudgeInput) -> Measures:
        """The sample's measured quantities."""
        instances = list(item.sample.annotation.instances) if item.sample.annotation else []
        recognisability = None
        if self.recognisability is not None:
            judged = self.recognisability.measure(item).judged()
            recognisability = sum(e.recognisability for e in judged) / len(judged) if judged else None
        certified = [i.certificate.agreement for i in instances if i.certificate is not None]
        certificate = sum(certified) / len(certified) if certified else None
        diversity = None
        if self.kept is not None and len(self.kept):
            phash = item.sample.phash or perceptual_hash(item.image)
            _, similarity = self.kept.nearest(item.sample.id, phash)
            diversity = min(1.0, max(0.0, 1.0 - similarity))
        rules = None
        if self.rules:
            rules = sum(j.judge(item).decision == Decision.accept for j in self.rules) / len(self.rules)
        return Measures(recognisability, certificate, diversity, rules)

    def quality(self, a: Measures, b: Measures) -> tuple[float, float, list[str]]:
        """Both samples' qualities over the quantities measured on both, and the names used."""
        names = [n for n, w in self.weights.items()
                 if w > 0 and a.as_dict()[n] is not None and b.as_dict()[n] is not None]
        total = sum(self.weights[n] for n in names)
        if not total:
            return 0.0, 0.0, []
        qa = sum(self.weights[n] * a.as_dict()[n] for n in names) / total
        qb = sum(self.weights[n] * b.as_dict()[n] for n in names) / total
        return qa, qb, names

    def compare_items(self, a: JudgeInput, b: JudgeInput, *, a_id: str, b_id: str) -> PairwiseResult:
        """One vote for the sample of higher measured quality (a tie within `tie_margin` or with nothing
        measurable on both)."""
        ma, mb = self.measure(a), self.measure(b)
        qa, qb, names = self.quality(ma, mb)
        position: Position = "tie" if not names or abs(qa - qb) <= self.tie_margin else "first" if qa > qb else "second"
        detail = ", ".join(f"{n} {ma.as_dict()[n]:.3f} vs {mb.as_dict()[n]:.3f}" for n in names) or "nothing measured"
        reason = f"measured quality {qa:.3f} vs {qb:.3f} ({detail})"
        return result_from_votes(a_id, b_id, self.id, [Vote(position, swapped=False, reasons=(reason,))])
