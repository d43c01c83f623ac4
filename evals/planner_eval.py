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
  that need a question only the fields the case gives are scored besides it;
- when the case gives them: question_source (the first question's source, e.g. "language"), notices (each
  listed word must occur in a notice's text), cannot_deliver (the same, for cannot_deliver notices).
A field set to null in `expect` is not scored. A request is fully right when every scored field is right.

A case may carry `followups`: later chat turns. Each one is an answer (the spec has a planner question: the
request and the answers so far are planned again, as the graph does) or a conversational edit (given to the
reviser; without one, planned again like an answer). The final spec is scored.

Dropped words (the "nothing silently dropped" contract): a content word of the request or of a follow-up
(letters only, three or more, not a function word of `planner/function_words.txt`, not a verb form, not an
adjective of 'dataset', not the heading word before a colon that opens a list) is
dropped when it occurs in no field of the final spec (class names, attributes, scene, style; a synonym of a
planned task, format or difficulty, see `SYNONYMS`), is not negated ("no masks"), and occurs in no notice.
The report gives the share of requests with a dropped word (goal 0) and, with failures, the words.

`cases.jsonl` was used while tuning the planner; `heldout.jsonl` was not looked at case by case.
"""

from __future__ import annotations

import json
import re
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
Reviser = Callable[[TaskSpec, str], TaskSpec]
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
OPTIONAL_FIELDS = ("scene", "style", "attributes", "counts", "question_source", "notices", "cannot_deliver")
# Words that name a task, format or difficulty: placed when the spec has that value. The eval's own list, so
# the planner's vocabulary cannot define what counts as delivered.
SYNONYMS: dict[str, str] = {
    "detection": "detection detect detecting detector detectors boxes box bbox bboxes bounding localization",
    "instance_segmentation": "instance segmentation segment segmented masks mask polygons polygon",
    "semantic_segmentation": "semantic segmentation pixel per-pixel label maps map masks mask",
    "captioning": "captions caption captioning captioned",
    "referring_expressions": "referring expressions expression refcoco refexp refexps",
    "scene_graph": "scene graph graphs relations relation relationships relationship",
    "coco": "coco json", "yolo": "yolo darknet yolov5 yolov8 ultralytics", "voc": "voc pascal xml",
    "hf": "hugging face huggingface hf datasets",
    "easy": "easy easier simple isolated sparse uncluttered",
    "medium": "medium moderate intermediate",
    "hard": "hard harder difficult challenging occluded occlusion occlusions cluttered clutter crowded dense "
            "densely packed heavy overlapping tricky",
}
IRREGULAR = {"people": "person", "children": "child", "mice": "mouse", "men": "man", "women": "woman",
             "geese": "goose", "teeth": "tooth", "feet": "foot", "knives": "knife", "leaves": "leaf", "oxen": "ox"}
DATASET_NOUNS = ("dataset", "datasets", "data", "set")
_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")
_NEGATION = re.compile(r"\b(?:no|without|not|don't|dont|never|skip|except|excluding|drop|remove)\W+(?:\w+\W+){0,2}$")


@dataclass(frozen=True)
class Case:
    """One request with what a correct plan holds."""

    id: str
    request: str
    expect: dict[str, Any]
    question: bool = False
    followups: tuple[str, ...] = ()


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
                    followups=tuple(str(f) for f in row.get("followups", [])),
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
    if name in ("question_source", "notices", "cannot_deliver"):
        return None  # compared in field_correct
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
    if name == "question_source":
        return bool(spec.questions) and spec.questions[0].source == expected
    if name in ("notices", "cannot_deliver"):
        texts = " | ".join(n.text.lower() for n in spec.notices if name == "notices" or n.kind == name)
        return all(word.lower() in texts for word in expected)
    if name == "counts":
        return all(actual.get(k) == list(v) for k, v in expected.items())
    return actual == expected


def _stems(word: str) -> set[str]:
    word = word.lower()
    stems = {word, word.rstrip("s"), word[:-2] if word.endswith("es") else word, IRREGULAR.get(word, word)}
    if word.endswith("ies"):
        stems.add(word[:-3] + "y")
    if word.endswith("ves"):
        stems |= {word[:-3] + "f", word[:-3] + "fe"}
    return stems


def _function_words() -> frozenset[str]:
    lines = (CASES_DIR / "function_words.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip().lower() for w in lines if w.strip() and not w.startswith("#"))


def content_words(text: str) -> list[str]:
    """Words of a request that carry content: letters only, three or more, not a function word, not a verb
    form (-ing / -ed), not negated ('no masks' asks for nothing)."""
    function_words = _function_words()
    matches = list(_WORD.finditer(text.lower()))
    words = []
    for i, m in enumerate(matches):
        word = m.group(0)
        verb = len(word) > 4 and word.endswith(("ing", "ed"))
        following = matches[i + 1].group(0) if i + 1 < len(matches) else ""
        about_the_dataset = following in DATASET_NOUNS  # "a small dataset"
        heading = text[m.end() : m.end() + 1] == ":"  # "farm animals: cows, sheep, …" names the list
        if len(word) < 3 or verb or about_the_dataset or heading or _stems(word) & function_words:
            continue
        if _typo_of(word, function_words) or _NEGATION.search(text.lower()[: m.start()]):
            continue
        words.append(word)
    return list(dict.fromkeys(words))


def _typo_of(word: str, known: set[str] | frozenset[str]) -> bool:
    """One edit (a letter missing, extra, wrong, or two swapped) from a known word of five or more letters:
    'imgaes', 'formt', 'cupps' are read as what they mistype."""
    if len(word) < 5:
        return False
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    edits = {a + b[1:] for a, b in splits if b} | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    edits |= {a + c + b[1:] for a, b in splits if b for c in letters} | {a + c + b for a, b in splits for c in letters}
    return any(len(e) >= 4 and e in known for e in edits) or any(_stems(e) & known for e in edits if len(e) >= 4)


def dropped_words(text: str, spec: TaskSpec) -> list[str]:
    """Content words of `text` that the spec carries nowhere and no notice names (module docstring)."""
    carried = [spec.scene, spec.style, *(n.text for n in spec.notices)]
    for obj in spec.objects:
        carried += [obj.name, *obj.attributes]
    values = [*(t.value for t in spec.tasks), *(f.value for f in spec.formats), spec.difficulty.value]
    carried += [SYNONYMS.get(v, v) for v in values]
    placed = {stem for chunk in carried for w in _WORD.findall(chunk.lower().replace("_", " ")) for stem in _stems(w)}
    return [w for w in content_words(text)
            if not _stems(w) & placed and w.replace("-", "") not in placed and not _typo_of(w, placed)]


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
    dropped: list[str] = field(default_factory=list)

    @property
    def fully_right(self) -> bool:
        """No crash and every scored field right."""
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
            "dropped_share": sum(bool(r.dropped) for r in self.results) / len(self.results) if self.results else 0.0,
            "dropped_words": sum(len(r.dropped) for r in self.results),
        }


def run_cases(name: str, cases: Iterable[Case], planner: Callable[[str], TaskSpec],
              reviser: Reviser | None = None) -> PlannerReport:
    """Plan every case (and its follow-ups) with `planner` / `reviser`, timing each case; an exception counts
    as a wrong case, not a crash."""
    report = PlannerReport(name)
    for case in cases:
        start = time.perf_counter()
        try:
            spec, said = plan_conversation(case, planner, reviser)
            error = ""
        except Exception as exc:  # an eval reports planner crashes instead of stopping at the first one
            spec, said, error = None, [], f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        scores = score_case(case, spec) if spec is not None else {"crash": False}
        dropped = dropped_words(" \n".join(said), spec) if spec is not None else []
        report.results.append(CaseResult(case, spec, scores, seconds, error, dropped))
    return report


def plan_conversation(case: Case, planner: Callable[[str], TaskSpec],
                      reviser: Reviser | None) -> tuple[TaskSpec, list[str]]:
    """The spec after the request and every follow-up, turn by turn as the graph routes them: an answer to a
    planner question re-plans the request with the answers so far, an answer to a language question replaces
    the request, anything else is an edit for the reviser (re-planned like an answer without one). Returns the
    final spec and what the user said that it stands on (a replaced request no longer counts)."""
    said = [case.request]
    spec = planner(case.request)
    for turn in case.followups:
        answering = bool(spec.questions) and all(q.source == "planner" for q in spec.questions)
        if spec.questions and spec.questions[0].source == "language":  # the answer is the request, rephrased
            said, spec = [turn], planner(turn)
        elif answering or reviser is None:
            said.append(turn)
            spec = planner(" ".join(said))
        else:
            said.append(turn)
            spec = reviser(spec, turn)
    return spec, said


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
    lines.append(f"dropped without notice  {s['dropped_share']:.1%} of requests ({s['dropped_words']} words)")
    if s["errors"]:
        lines.append(f"planner errors          {s['errors']}")
    if show_failures:
        for r in report.results:
            if not r.fully_right:
                wrong = [k for k, ok in r.scores.items() if not ok]
                got = _describe(r.spec) if r.spec else r.error
                lines.append(f"  x {r.case.id} {wrong}: {r.case.request[:70]!r} -> {got}")
        for r in report.results:
            if r.dropped:
                lines.append(f"  dropped {r.case.id}: {', '.join(r.dropped)}  ({r.case.request[:60]!r})")
    return "\n".join(lines)


def _describe(spec: TaskSpec) -> str:
    objects = ", ".join(f"{o.name}{o.attributes or ''}[{o.min_count}-{o.max_count}]" for o in spec.objects)
    return (
        f"{objects} n={spec.n_images} {spec.width}x{spec.height} {[str(t) for t in spec.tasks]} "
        f"{[str(f) for f in spec.formats]} {spec.difficulty} splits={spec.splits.train:.2f}/"
        f"{spec.splits.val:.2f}/{spec.splits.test:.2f} seed={spec.seed} scene={spec.scene!r} "
        f"style={spec.style!r} q={[q.text for q in spec.questions[:1]]} "
        f"notices={[n.text for n in spec.notices]}"
    )
