"""`synthloop eval planner`: field accuracy of the planner on hand-written requests.

Cases are JSONL rows (see `evals/planner/`):

    {"id": "t01", "request": "300 kitchen scenes with cups…", "question": false,
     "expect": {"classes": ["cup", "plate"], "n_images": 300, "tasks": [...], "scene": ["kitchen"], ...}}

Scored fields
- always, on requests that need no question (a stated default is expected when the case does not give one):
  classes (as a set), n_images (100), size ([512, 512]), tasks (set, [detection]), formats (set, [coco]),
  difficulty ("medium"), splits ([0.8, 0.2, 0.0]), seed (0);
- when the case gives them: scene / style (every listed word must occur in `spec.scene` / `spec.style`),
  attributes ({class: [attributes]}, as sets), counts ({class: [min, max]});
- question: whether `spec.questions` is non-empty must match `case["question"]` (default false). On requests
  that need a question only the fields the case gives are scored besides it.
A field set to null in `expect` is not scored. A request is fully right when every scored field is right.

`cases.jsonl` was used while tuning the planner; `heldout.jsonl` was not looked at case by case.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthloop.tools.types import TaskSpec

CASES_DIR = Path(__file__).parent / "planner"
DEFAULT_CASE_FILES = (CASES_DIR / "cases.jsonl", CASES_DIR / "heldout.jsonl")
CORE_DEFAULTS: dict[str, Any] = {
    "classes": None,  # always given by cases that need no question
    "n_images": 100,
    "size": [512, 512],
    "tasks": ["detection"],
    "formats": ["coco"],
    "difficulty": "medium",
    "splits": [0.8, 0.2, 0.0],
    "seed": 0,
}
OPTIONAL_FIELDS = ("scene", "style", "attributes", "counts")


@dataclass(frozen=True)
class Case:
    """One request with what a correct plan holds."""

    id: str
    request: str
    expect: dict[str, Any]
    question: bool = False


def load_cases(path: Path) -> list[Case]:
    """Cases from a JSONL file; blank lines skipped; a malformed row raises ValueError naming its line."""
    cases = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            cases.append(
                Case(
                    id=str(row["id"]),
                    request=str(row["request"]),
                    expect=dict(row.get("expect", {})),
                    question=bool(row.get("question", False)),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{lineno}: not a planner case: {exc}") from exc
    return cases


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) < 0.011 for x, y in zip(a, b, strict=True))


def _actual(spec: TaskSpec, name: str) -> Any:
    if name == "size":
        return [spec.width, spec.height]
    if name == "splits":
        return [spec.splits.train, spec.splits.val, spec.splits.test]
    if name in ("classes", "tasks", "formats"):
        return sorted(str(v) for v in (spec.class_names if name == "classes" else getattr(spec, name)))
    if name == "attributes":
        return {o.name: sorted(o.attributes) for o in spec.objects}
    if name == "counts":
        return {o.name: [o.min_count, o.max_count] for o in spec.objects}
    return str(getattr(spec, name)) if name == "difficulty" else getattr(spec, name)


def field_correct(spec: TaskSpec, name: str, expected: Any) -> bool:
    """Whether one field of `spec` matches the expectation (see the module docstring for the rules)."""
    actual = _actual(spec, name)
    if name in ("classes", "tasks", "formats"):
        return actual == sorted(expected)
    if name == "splits":
        return _close(actual, expected)
    if name in ("scene", "style"):
        text = str(getattr(spec, name)).lower()
        return all(word.lower() in text for word in expected)
    if name == "attributes":
        return all(sorted(actual.get(k, ["<missing>"])) == sorted(v) for k, v in expected.items())
    if name == "counts":
        return all(actual.get(k) == list(v) for k, v in expected.items())
    return actual == expected


def score_case(case: Case, spec: TaskSpec) -> dict[str, bool]:
    """Field name → right or wrong, for every field this case scores."""
    expected: dict[str, Any] = {} if case.question else {k: v for k, v in CORE_DEFAULTS.items() if v is not None}
    expected.update(case.expect)
    scores = {name: field_correct(spec, name, value) for name, value in expected.items() if value is not None}
    scores["question"] = bool(spec.questions) == case.question
    return scores


@dataclass
class CaseResult:
    """The outcome of one case."""

    case: Case
    spec: TaskSpec | None
    scores: dict[str, bool]
    seconds: float
    error: str = ""

    @property
    def fully_right(self) -> bool:
        return not self.error and all(self.scores.values())


@dataclass
class PlannerReport:
    """Aggregated figures over a set of cases."""

    name: str
    results: list[CaseResult] = field(default_factory=list)

    def field_accuracy(self) -> dict[str, tuple[int, int]]:
        """Field → (right, scored)."""
        tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for result in self.results:
            for name, ok in result.scores.items():
                tally[name][0] += int(ok)
                tally[name][1] += 1
        return {k: (v[0], v[1]) for k, v in tally.items()}

    def summary(self) -> dict[str, float]:
        """fields_right, fully_right, question rates (needed / not needed), median_seconds, errors."""
        right = sum(r for r, _ in self.field_accuracy().values())
        total = sum(n for _, n in self.field_accuracy().values())
        needed = [r for r in self.results if r.case.question]
        not_needed = [r for r in self.results if not r.case.question]
        asked = lambda rs: sum(bool(r.spec and r.spec.questions) for r in rs) / len(rs) if rs else 0.0  # noqa: E731
        return {
            "cases": len(self.results),
            "fields_right": right / total if total else 0.0,
            "fully_right": sum(r.fully_right for r in self.results) / len(self.results) if self.results else 0.0,
            "question_rate_needed": asked(needed),
            "question_rate_not_needed": asked(not_needed),
            "median_seconds": statistics.median(r.seconds for r in self.results) if self.results else 0.0,
            "errors": sum(bool(r.error) for r in self.results),
        }


def run_cases(name: str, cases: Iterable[Case], planner: Callable[[str], TaskSpec]) -> PlannerReport:
    """Plan every case with `planner`, timing each call; an exception counts as a wrong case, not a crash."""
    report = PlannerReport(name)
    for case in cases:
        start = time.perf_counter()
        try:
            spec: TaskSpec | None = planner(case.request)
            error = ""
        except Exception as exc:  # an eval reports planner crashes instead of stopping at the first one
            spec, error = None, f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        scores = score_case(case, spec) if spec is not None else {"crash": False}
        report.results.append(CaseResult(case, spec, scores, seconds, error))
    return report


def format_report(report: PlannerReport, *, show_failures: bool = False) -> str:
    """A plain-text table: per-field accuracy, then the headline figures (and failed cases if asked)."""
    lines = [f"== {report.name} ({len(report.results)} requests)", f"{'field':<12} {'right':>7} {'acc':>7}"]
    for name, (right, total) in sorted(report.field_accuracy().items()):
        lines.append(f"{name:<12} {right:>3}/{total:<3} {right / total:>7.1%}")
    s = report.summary()
    lines += [
        f"fields right            {s['fields_right']:.1%}",
        f"requests fully right    {s['fully_right']:.1%}",
        f"question when needed    {s['question_rate_needed']:.1%}",
        f"question when not       {s['question_rate_not_needed']:.1%}",
        f"median planning time    {s['median_seconds']:.2f} s",
    ]
    if s["errors"]:
        lines.append(f"planner errors          {s['errors']}")
    if show_failures:
        for r in report.results:
            if not r.fully_right:
                wrong = [k for k, ok in r.scores.items() if not ok]
                got = _describe(r.spec) if r.spec else r.error
                lines.append(f"  x {r.case.id} {wrong}: {r.case.request[:70]!r} -> {got}")
    return "\n".join(lines)


def _describe(spec: TaskSpec) -> str:
    objects = ", ".join(f"{o.name}{o.attributes or ''}[{o.min_count}-{o.max_count}]" for o in spec.objects)
    return (
        f"{objects} n={spec.n_images} {spec.width}x{spec.height} {[str(t) for t in spec.tasks]} "
        f"{[str(f) for f in spec.formats]} {spec.difficulty} splits={spec.splits.train:.2f}/"
        f"{spec.splits.val:.2f}/{spec.splits.test:.2f} seed={spec.seed} scene={spec.scene!r} "
        f"style={spec.style!r} q={spec.questions[:1]}"
    )
