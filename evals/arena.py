"""`synthloop arena`: compare renderers or run configs on the same specs, and rank them.

For every spec file and every contestant (a run config, optionally with spec overrides), the arena runs the
loop (`start_run`) on the spec with `n_images` images and the same seed, so contestant x's image i and
contestant y's image i come from the same layout seed. Then, for every image index kept by both and every
pair of contestants, a pairwise judge compares the two images; every vote is a `Match`.

Ratings: Bradley–Terry (order-independent maximum likelihood, with bootstrap percentile intervals) ranks the
leaderboard; online Elo over the matches in the order they were played is shown beside it, and is
order-dependent (see `synthloop.tools.critic.ratings`).

Judges: a VLM through an OpenAI-compatible endpoint (`PairwiseVLMJudge`, both presentation orders) when one is
configured; otherwise `MeasuredPairwiseJudge` (`default_pairwise_judge`), which prefers the sample with the better
measured quantities: recognisability (YOLOv3-tiny's confidence for the intended class inside each box, when
scripts/setup.sh installed it), label certificate agreement and rule passes. Recognisability separates real
objects from procedural shapes; it is a weak detector's view, not a judgement of realism, and the leaderboard
says what the judge measured.

A contestant file is a run config (YAML/JSON, the fields of `RunConfig`) with two optional arena-only keys:
`name` (default: the file name without extension) and `spec` (TaskSpec fields overriding the spec files',
e.g. `{difficulty: hard}` or `{seed: 3}`), so configs can be compared even with a single renderer.

Layout of the work directory: `runs/{contestant}/{spec}/` (one full run each) and `arena.json` (contestants,
matches, ratings).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from synthloop.agent.config import RunConfig, describe_validation_error
from synthloop.agent.errors import UserInputError
from synthloop.tools.critic.measured_pairwise import MeasuredPairwiseJudge
from synthloop.tools.critic.pairwise import PairwiseJudge, RulePairwiseJudge
from synthloop.tools.critic.ratings import BT_L2, ELO_K, Record, bradley_terry, elo_ratings, records
from synthloop.tools.types import Match, Ratings, TaskSpec

logger = logging.getLogger(__name__)
ARENA_FILE = "arena.json"
_ARENA_KEYS = ("name", "spec")


@dataclass(frozen=True)
class Contestant:
    """One entry of the arena: a name, the run config, and spec fields it overrides."""

    name: str
    config: RunConfig
    spec_overrides: dict[str, Any] = field(default_factory=dict)


def load_contestant(path: Path) -> Contestant:
    """A contestant from a run-config file with optional `name` and `spec` keys (see the module docstring)."""
    if not path.is_file():
        raise UserInputError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        data = (json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)) or {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise UserInputError(f"cannot read config {path}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise UserInputError(f"config {path} must hold a mapping, not {type(data).__name__}")
    name = str(data.pop("name", path.stem))
    overrides = data.pop("spec", None) or {}
    if not isinstance(overrides, dict):
        raise UserInputError(f"config {path}: 'spec' must be a mapping of TaskSpec fields")
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise UserInputError(f"config {path}: {describe_validation_error(exc)}") from exc
    return Contestant(name=name, config=config, spec_overrides=overrides)


def renderer_contestant(renderer: str) -> Contestant:
    """A contestant that differs from the default run config only by its renderer."""
    try:
        return Contestant(name=renderer, config=RunConfig(renderer=renderer))
    except ValidationError as exc:
        raise UserInputError(describe_validation_error(exc).split(": ", 1)[1]) from exc


def _spec_for(base: TaskSpec, overrides: dict[str, Any], where: str) -> TaskSpec:
    try:
        return TaskSpec.model_validate({**base.model_dump(mode="json"), **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        field_name = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UserInputError(f"{where}: spec override '{field_name}': {first['msg']}") from exc


@dataclass
class ArenaResult:
    """Everything the leaderboard shows, and the matches behind it."""

    contestants: list[str]
    specs: list[str]
    n_images: int
    judge: str
    matches: list[Match]
    bradley_terry: Ratings
    elo: Ratings
    records: dict[str, Record]
    comparisons: int = 0
    missing: int = 0
    failed: int = 0
    n_bootstrap: int = 0
    seed: int = 0
    order_pairs: int = 0
    inconsistent_pairs: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (what `arena.json` holds)."""
        return {
            "contestants": self.contestants, "specs": self.specs, "n_images": self.n_images, "judge": self.judge,
            "comparisons": self.comparisons, "missing": self.missing, "failed": self.failed,
            "order_pairs": self.order_pairs, "inconsistent_pairs": self.inconsistent_pairs,
            "bradley_terry": self.bradley_terry.model_dump(mode="json"), "elo": self.elo.model_dump(mode="json"),
            "records": {k: vars(v) for k, v in self.records.items()},
            "matches": [m.model_dump(mode="json") for m in self.matches],
        }


def _check_contestants(contestants: Sequence[Contestant]) -> None:
    if len(contestants) < 2:
        raise UserInputError("the arena needs at least two contestants (--config FILE or --renderer NAME, "
                             "repeated)")
    names = [c.name for c in contestants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserInputError(f"contestant names must be unique, '{duplicates[0]}' appears twice "
                             "(set `name:` in the config file)")


def default_pairwise_judge() -> PairwiseJudge:
    """The judge without a VLM: the measured judge of the default run config (recognisability by YOLOv3-tiny when
    installed, certificate agreement, the same rule judges for every contestant), without the duplicate judge
    (same seeds may legitimately give the same image) and without diversity (no kept set to compare with)."""
    from synthloop.agent.backends import make_pairwise_judge
    from synthloop.tools.critic.duplicates import DuplicateIndex

    return make_pairwise_judge(RunConfig(), DuplicateIndex())


def _load_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def run_arena(
    spec_files: Sequence[Path],
    contestants: Sequence[Contestant],
    work_dir: Path,
    *,
    judge: PairwiseJudge | None = None,
    n_images: int = 3,
    seed: int | None = None,
    n_bootstrap: int = 200,
    on_event: Callable[[str], None] | None = None,
) -> ArenaResult:
    """Run every contestant on every spec, judge image pairs, and rate the contestants (see the module)."""
    from synthloop.agent.runner import start_run
    from synthloop.agent.specfile import load_spec_file
    from synthloop.agent.store import load_kept
    from synthloop.tools.critic.base import JudgeInput
    from synthloop.tools.llm.client import LLMOutputError

    _check_contestants(contestants)
    if not spec_files:
        raise UserInputError("give at least one spec file")
    judge = judge or default_pairwise_judge()
    notify = on_event or (lambda message: None)
    specs: dict[str, TaskSpec] = {}
    for path in spec_files:
        spec = load_spec_file(path)
        update: dict[str, Any] = {"n_images": n_images}
        if seed is not None:
            update["seed"] = seed
        name = path.stem if path.stem not in specs else f"{path.stem}-{len(specs)}"
        specs[name] = _spec_for(spec, update, f"spec {path}")

    # Every contestant's spec is checked before anything runs.
    run_specs = {(c.name, spec_name): _spec_for(spec, c.spec_overrides, f"contestant '{c.name}'")
                 for spec_name, spec in specs.items() for c in contestants}

    # 1. generate: every contestant on every spec, same seeds.
    kept: dict[tuple[str, str], dict[int, Any]] = {}
    for spec_name in specs:
        for c in contestants:
            run_spec = run_specs[c.name, spec_name]
            out = work_dir / "runs" / c.name / spec_name
            notify(f"generating {c.name} on {spec_name} ({run_spec.n_images} images)")
            start_run(out, c.config, spec=run_spec, auto_approve=True)
            kept[c.name, spec_name] = {s.index: (out, s) for s in load_kept(out / ".work")}

    # 2. judge: every index kept by both, every pair of contestants.
    matches: list[Match] = []
    comparisons = missing = failed = order_pairs = inconsistent = 0
    for spec_name, spec in specs.items():
        notify(f"judging {spec_name} with {judge.id}")
        for index in range(spec.n_images):
            for x, y in combinations([c.name for c in contestants], 2):
                a, b = kept[x, spec_name].get(index), kept[y, spec_name].get(index)
                if a is None or b is None:
                    missing += 1
                    continue
                items = [JudgeInput(sample=s, image=_load_image(out / s.image_path), spec=spec) for out, s in (a, b)]
                try:
                    result = judge.compare_items(items[0], items[1], a_id=x, b_id=y)
                except LLMOutputError as exc:
                    logger.warning("arena: %s vs %s on %s #%d: no valid judge answer: %s", x, y, spec_name,
                                   index, exc)
                    failed += 1
                    continue
                comparisons += 1
                matches.extend(result.matches)
                order_pairs += result.n_pairs
                inconsistent += result.inconsistent_pairs

    names = [c.name for c in contestants]
    if not matches:
        raise UserInputError("no comparison could be made: no image index was kept by two contestants")
    bt = bradley_terry(matches, n_bootstrap=n_bootstrap, seed=seed or 0)
    elo = elo_ratings(matches)
    result = ArenaResult(
        contestants=names, specs=list(specs), n_images=n_images, judge=judge.id, matches=matches,
        bradley_terry=bt, elo=elo, records=records(matches), comparisons=comparisons, missing=missing,
        failed=failed, n_bootstrap=n_bootstrap, seed=seed or 0, order_pairs=order_pairs,
        inconsistent_pairs=inconsistent,
    )
    (work_dir / ARENA_FILE).write_text(json.dumps(result.to_json(), indent=2), encoding="utf-8")
    return result


def format_leaderboard(result: ArenaResult) -> str:
    """The leaderboard table, ranked by Bradley–Terry score, with how it was computed underneath."""
    bt, elo = result.bradley_terry, result.elo
    ranked = sorted(result.contestants, key=lambda n: (-bt.scores.get(n, float("-inf")), n))
    width = max(4, *(len(n) for n in ranked))
    lines = [f"{'rank':>4}  {'name':<{width}}  {'BT score':>8}  {'95% interval':>17}  {'Elo':>7}  "
             f"{'W':>4} {'L':>4} {'T':>4}  {'matches':>7}"]
    for rank, name in enumerate(ranked, start=1):
        low, high = bt.intervals.get(name, (float("nan"), float("nan")))
        rec = result.records.get(name, Record())
        lines.append(f"{rank:>4}  {name:<{width}}  {bt.scores.get(name, float('nan')):8.1f}  "
                     f"[{low:7.1f}, {high:7.1f}]  {elo.scores.get(name, float('nan')):7.1f}  "
                     f"{rec.wins:>4} {rec.losses:>4} {rec.ties:>4}  {rec.matches:>7}")
    notes = [
        f"{len(result.contestants)} contestants × {len(result.specs)} spec(s) × {result.n_images} image(s); "
        f"{result.comparisons} comparisons, {len(result.matches)} matches; judge {result.judge}",
    ]
    if result.judge == RulePairwiseJudge.id:
        notes.append("judge is the fallback heuristic (rule checks, occlusion, mask fit), not a judgement of "
                     "realism: configure a VLM endpoint for that")
    if result.judge == MeasuredPairwiseJudge.id:
        notes.append("judge prefers measured quantities (a detector's confidence for the intended class inside each "
                     "box, certificate agreement, rule passes): a weak detector's view of recognisability, not a "
                     "judgement of realism (configure a VLM endpoint for that)")
    if result.order_pairs:
        notes.append(f"position inconsistency: {result.inconsistent_pairs}/{result.order_pairs} order pairs "
                     f"({result.inconsistent_pairs / result.order_pairs:.0%}) disagree when the images swap places")
    if result.missing or result.failed:
        notes.append(f"skipped: {result.missing} pair(s) without a kept image on one side, "
                     f"{result.failed} without a valid judge answer")
    notes.append(f"BT: order-independent maximum likelihood (l2 prior {BT_L2:g}), {result.n_bootstrap} bootstrap "
                 f"rounds (seed {result.seed}); Elo: online, K={ELO_K:g}, in match order (order-dependent)")
    return "\n".join([*lines, "", *notes])


def vlm_pairwise_judge(base_url: str, model: str, *, samples: int = 1, api_key_env: str = "SYNTHLOOP_VLM_API_KEY",
                       structured_output: str = "json_object", timeout_s: float = 120.0) -> PairwiseJudge:
    """A `PairwiseVLMJudge` on an OpenAI-compatible vision endpoint (key read from `api_key_env`)."""
    import os

    from synthloop.tools.critic.vlm import PairwiseVLMJudge
    from synthloop.tools.llm.client import LLMClient

    client = LLMClient(base_url, model=model, api_key=os.environ.get(api_key_env, "not-needed"),
                       timeout_s=timeout_s, structured_output=structured_output)
    return PairwiseVLMJudge(client, samples=samples)
