"""`synthloop eval critic-defects`: each judge's catch rate per injected defect, and its clean false rejects.

Steps:
1. render N clean samples (compositor + exact labels, difficulties cycled) and put them all in a duplicate
   index, as if the loop had kept them;
2. judge every clean sample: any reject is a false reject;
3. for every defect in `evals/defects.py`, inject it into every clean sample that can carry it (seeded per
   sample and defect) and judge the result: a reject is a catch;
4. report per defect and per judge the catch rate, and the embedded ensemble's (any-reject) rate; the
   critic's cost per clean image.
`edit` counts as a catch (the sample would not be kept as it is). The class-balance judge is left out: it
judges a running histogram, not a sample. Missing / extra / relabelled instances are the detector judge's;
their rows show what the rules happen to catch.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from synthloop.evals.defects import DEFECTS, INJECTORS, RULE_VISIBLE, clean_items
from synthloop.tools.critic.base import Judge, JudgeInput
from synthloop.tools.critic.duplicates import DuplicateIndex, perceptual_hash, pixel_sha256
from synthloop.tools.critic.embedded import embedded_judges
from synthloop.tools.types import Decision

ENSEMBLE = "embedded (any-reject)"


@dataclass
class DefectBench:
    """Counts behind the table: caught[defect][judge] of n[defect] injected samples ('clean' = false rejects)."""

    n_clean: int
    size: int
    seed: int
    judges: list[str]
    n: dict[str, int] = field(default_factory=dict)
    caught: dict[str, dict[str, int]] = field(default_factory=dict)
    ms_per_image: dict[str, float] = field(default_factory=dict)

    def rate(self, defect: str, judge: str) -> float:
        """Share of the defect's samples this judge rejected (NaN when none could be injected)."""
        n = self.n.get(defect, 0)
        return self.caught[defect][judge] / n if n else float("nan")

    def visible_catch_rate(self) -> float:
        """The ensemble's catch rate pooled over the defects visible to rules (RULE_VISIBLE)."""
        n = sum(self.n.get(d, 0) for d in RULE_VISIBLE)
        return sum(self.caught[d][ENSEMBLE] for d in RULE_VISIBLE if d in self.caught) / n if n else float("nan")

    def to_dict(self) -> dict:
        """JSON-ready counts and rates."""
        rates = {d: {j: self.rate(d, j) for j in [*self.judges, ENSEMBLE]} for d in self.n}
        return {**asdict(self), "rates": rates, "visible_catch_rate": self.visible_catch_rate()}


def _judge_all(judges: list[Judge], item: JudgeInput) -> dict[str, bool]:
    sample = item.sample.model_copy(update={"image_sha256": pixel_sha256(item.image),
                                            "phash": perceptual_hash(item.image)})
    item = JudgeInput(sample=sample, image=item.image, spec=item.spec)
    rejected = {judge.id: judge.judge(item).decision != Decision.accept for judge in judges}
    rejected[ENSEMBLE] = any(rejected.values())
    return rejected


def run_defect_bench(n: int = 200, size: int = 512, seed: int = 0, defects: tuple[str, ...] = DEFECTS,
                     judges: list[Judge] | None = None, duplicates: DuplicateIndex | None = None) -> DefectBench:
    """Run the benchmark (see the module docstring); `judges` default to the embedded critic."""
    items = clean_items(n, size, seed)
    index = duplicates if duplicates is not None else DuplicateIndex()
    judges = judges if judges is not None else embedded_judges(index)
    for item in items:
        index.add(item.sample.id, pixel_sha256(item.image), perceptual_hash(item.image))
    ids = [j.id for j in judges]
    bench = DefectBench(n_clean=n, size=size, seed=seed, judges=ids)

    def tally(row: str, rejected: dict[str, bool]) -> None:
        bench.n[row] = bench.n.get(row, 0) + 1
        counts = bench.caught.setdefault(row, dict.fromkeys([*ids, ENSEMBLE], 0))
        for judge_id, hit in rejected.items():
            counts[judge_id] += int(hit)

    per_judge = dict.fromkeys(ids, 0.0)
    start = time.perf_counter()
    for item in items:
        sample = item.sample.model_copy(update={"image_sha256": pixel_sha256(item.image),
                                                "phash": perceptual_hash(item.image)})
        hashed = JudgeInput(sample=sample, image=item.image, spec=item.spec)
        rejected = {}
        for judge in judges:
            t0 = time.perf_counter()
            rejected[judge.id] = judge.judge(hashed).decision != Decision.accept
            per_judge[judge.id] += time.perf_counter() - t0
        rejected[ENSEMBLE] = any(rejected.values())
        tally("clean", rejected)
    total = time.perf_counter() - start
    bench.ms_per_image = {**{k: 1000 * v / n for k, v in per_judge.items()}, "total (with hashing)": 1000 * total / n}

    for defect in defects:
        for item in items:
            rng = np.random.default_rng([seed, item.sample.index, DEFECTS.index(defect)])
            injected = INJECTORS[defect](item, rng)
            if injected is not None:
                tally(defect, _judge_all(judges, injected.item))
    return bench


def format_defect_bench(bench: DefectBench) -> str:
    """A plain-text table: rows are defects (then clean false rejects), columns judges then the ensemble."""
    columns = [*bench.judges, ENSEMBLE]
    short = [c.removeprefix("rules.") for c in columns]
    width = max(len(s) for s in short) + 1
    header = f"{'defect':<16}{'n':>5} " + "".join(f"{s:>{width}}" for s in short)
    lines = [f"critic defect benchmark: {bench.n_clean} clean samples at {bench.size}², seed {bench.seed}",
             header, "-" * len(header)]
    for row in [*(d for d in DEFECTS if d in bench.n), "clean"]:
        label = "clean (FR)" if row == "clean" else row + ("" if row in RULE_VISIBLE else " *")
        cells = "".join(f"{bench.rate(row, c):>{width}.1%}" for c in columns)
        lines.append(f"{label:<16}{bench.n[row]:>5} {cells}")
    lines += [
        "-" * len(header),
        f"pooled catch rate over pixel/annotation-visible defects (embedded): {bench.visible_catch_rate():.1%}",
        f"clean false-reject rate (embedded): {bench.rate('clean', ENSEMBLE):.1%}",
        "critic ms per clean image: " + ", ".join(f"{k.removeprefix('rules.')} {v:.2f}"
                                                 for k, v in bench.ms_per_image.items()),
        "* the detector judge's defects (missing / extra / relabelled): rules catch them only by accident",
    ]
    return "\n".join(lines)
