"""`synthloop eval critic`: how far a judge agrees with human labels.

Inputs
- human labels, JSONL: `{"image_id": ..., "label": "accept"|"reject"}` (pointwise) and/or
  `{"a": ..., "b": ..., "winner": "a"|"b"|"tie"}` (pairwise); ids as in the dataset's COCO file;
- the judge: a critique JSONL (`synthloop critique` output: `image_id`, `decision`, `scores`), optionally a
  ratings JSON (`{"scores": {id: rating}}`, e.g. a `Ratings` dump) and a matches JSONL of the judge's own
  pairwise votes (`Match` rows: a, b, winner by content, swapped).

Metrics (each with a seeded percentile-bootstrap 95% interval over the labelled items / pairs)
- pointwise: accuracy, Cohen's κ, precision and recall of rejects (reject = the positive class; `edit`
  counts as reject: the sample would not be kept as it is);
- pairwise agreement: share of decisive human pairs (winner a or b) where the judge prefers the same item,
  a judge tie counting ½; the judge's preference is its own match votes when given, else its score;
- Kendall τ-b (ties handled) between the judge score (a ratings entry, else the `--score` key of the
  critique row, else 1 / ½ / 0 for accept / edit / reject) and the human ranking (pointwise label 1/0;
  pairwise: each item's human win rate);
- position consistency: share of (a, b) vote pairs in both presentation orders that name the same winner.

Where the critic and the people disagree (`disagreements`), the report says what the critic is for there:
- per judge, how many labelled images it rejected and how many of those people rejected too (its precision
  against people), and what the judge checks (`JUDGE_PURPOSE`); a judge people rarely confirm is checking
  something the labellers do not look for (near duplicates across images, mask fit, unlabelled objects) or is
  too strict for this data: its reasons on the disputed images, shown with examples, tell which;
- the images people rejected that the critic kept: what no judge checks (their ids, to look at).
The plot shows the metrics with their intervals above the judge-score histograms.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DECISION_SCORE = {"accept": 1.0, "edit": 0.5, "reject": 0.0}
# What each judge is for, said where it and the people disagree.
JUDGE_PURPOSE = {
    "rules.geometry": "degenerate boxes and boxes outside the image",
    "rules.mask_box": "masks that do not fill their boxes (a box or mask moved off its object)",
    "rules.occlusion": "objects hidden behind others beyond the visible-fraction limit",
    "rules.truncation": "objects cut by the image border",
    "rules.tiny": "objects too small to learn from",
    "rules.content": "the counts the spec asked for",
    "rules.class_balance": "the class mix the spec asked for",
    "rules.image_quality": "blank, black, constant or saturated images",
    "rules.boundary": "masks and boxes with no image edges along them",
    "rules.duplicate": "exact and near duplicates of other images (invisible when images are seen one at a time)",
    "rules.certificate": "labels whose sources (layout, mask, detector, SAM, VLM) disagree",
    "detector.recognisability": "objects a COCO detector sees as another class, and objects nobody labelled",
    "detector.agreement": "boxes a detector does not confirm, and objects it finds unlabelled",
    "audit.annotations": "annotations that cannot be read",
    "audit.image": "image files that cannot be read",
}


class LabelError(ValueError):
    """A labels / critique / ratings file is unusable; the message names the file and line."""


@dataclass
class Estimate:
    """A point estimate with a bootstrap interval (NaN when undefined) and the sample size behind it."""

    value: float
    low: float
    high: float
    n: int


@dataclass
class AgreementReport:
    """All metrics, by name, and where the critic and the people disagree."""

    metrics: dict[str, Estimate] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    disagreements: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"metrics": {k: vars(v) for k, v in self.metrics.items()}, "notes": self.notes,
                "disagreements": self.disagreements}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise LabelError(f"file not found: {path}")
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LabelError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise LabelError(f"{path}:{number}: each line must be a JSON object")
        rows.append(row)
    return rows


def load_labels(path: Path) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Pointwise labels (id → accept/reject) and pairwise labels (a, b, winner); ids as strings."""
    pointwise: dict[str, str] = {}
    pairwise: list[tuple[str, str, str]] = []
    for number, row in enumerate(_read_jsonl(path), start=1):
        if "image_id" in row:
            if row.get("label") not in ("accept", "reject"):
                raise LabelError(f"{path}: row {number}: label must be 'accept' or 'reject'")
            pointwise[str(row["image_id"])] = row["label"]
        elif {"a", "b", "winner"} <= row.keys():
            if row["winner"] not in ("a", "b", "tie"):
                raise LabelError(f"{path}: row {number}: winner must be 'a', 'b' or 'tie'")
            pairwise.append((str(row["a"]), str(row["b"]), row["winner"]))
        else:
            raise LabelError(f"{path}: row {number}: neither a pointwise nor a pairwise label")
    return pointwise, pairwise


def judge_scores(rows: list[dict[str, Any]], score_key: str | None = None) -> tuple[dict[str, str], dict[str, float]]:
    """Decisions and scalar scores per image id from critique rows."""
    decisions, scores = {}, {}
    for row in rows:
        key = str(row.get("image_id"))
        decision = row.get("decision")
        if decision not in DECISION_SCORE:
            raise LabelError(f"critique row for image {key}: decision {decision!r} is not accept/edit/reject")
        decisions[key] = decision
        value = (row.get("scores") or {}).get(score_key) if score_key else None
        scores[key] = float(value) if value is not None else DECISION_SCORE[decision]
    return decisions, scores


# --- metrics --------------------------------------------------------------------------------------------------

def cohen_kappa(truth: Sequence[int], predicted: Sequence[int]) -> float:
    """Cohen's κ for two binary raters (NaN when chance agreement is 1)."""
    t, p = np.asarray(truth, bool), np.asarray(predicted, bool)
    observed = float((t == p).mean())
    chance = float(t.mean() * p.mean() + (1 - t.mean()) * (1 - p.mean()))
    return (observed - chance) / (1 - chance) if chance < 1 else float("nan")


def precision_recall(truth: Sequence[int], predicted: Sequence[int]) -> tuple[float, float]:
    """Precision and recall of the positive class (1 = reject); NaN when undefined."""
    t, p = np.asarray(truth, bool), np.asarray(predicted, bool)
    tp = float((t & p).sum())
    precision = tp / p.sum() if p.sum() else float("nan")
    recall = tp / t.sum() if t.sum() else float("nan")
    return precision, recall


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall τ-b with ties (O(n²) numpy); NaN when either side is constant or n < 2."""
    a, b = np.asarray(x, float), np.asarray(y, float)
    if a.size < 2:
        return float("nan")
    i, j = np.triu_indices(a.size, k=1)
    sx, sy = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    n0 = float(i.size)
    denominator = np.sqrt((n0 - float((sx == 0).sum())) * (n0 - float((sy == 0).sum())))
    return float((sx * sy).sum() / denominator) if denominator > 0 else float("nan")


def bootstrap(statistic: Callable[[np.ndarray], float], n: int, *, rounds: int = 1000, seed: int = 0
              ) -> tuple[float, float]:
    """Percentile 95% interval of `statistic(indices)` over resamples of range(n) (NaNs dropped)."""
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(rounds)], float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def _estimate(statistic: Callable[[np.ndarray], float], n: int, rounds: int, seed: int) -> Estimate:
    value = statistic(np.arange(n)) if n else float("nan")
    low, high = bootstrap(statistic, n, rounds=rounds, seed=seed)
    return Estimate(value=value, low=low, high=high, n=n)


def _match_preferences(matches: list[dict[str, Any]]) -> tuple[dict[tuple[str, str], float], int, int]:
    """P(a better) per ordered pair from the judge's own votes; (pairs asked in both orders, consistent ones)."""
    votes: dict[tuple[str, str], list[tuple[str, bool]]] = {}
    for m in matches:
        a, b, winner = str(m["a"]), str(m["b"]), m["winner"]
        if (b, a) in votes and (a, b) not in votes:  # store under one orientation, winner by content
            a, b, winner = b, a, {"a": "b", "b": "a"}.get(winner, "tie")
        votes.setdefault((a, b), []).append((winner, bool(m.get("swapped", False))))
    preferences, n_pairs, consistent = {}, 0, 0
    for key, vs in votes.items():
        preferences[key] = sum(1.0 if w == "a" else 0.5 if w == "tie" else 0.0 for w, _ in vs) / len(vs)
        pairs = list(zip([w for w, s in vs if not s], [w for w, s in vs if s], strict=False))
        n_pairs += len(pairs)
        consistent += sum(x == y for x, y in pairs)
    return preferences, n_pairs, consistent


def evaluate(pointwise: dict[str, str], pairwise: list[tuple[str, str, str]], decisions: dict[str, str],
             scores: dict[str, float], *, matches: list[dict[str, Any]] | None = None, rounds: int = 1000,
             seed: int = 0) -> AgreementReport:
    """All metrics that the given labels and judge outputs allow (see the module docstring)."""
    report = AgreementReport()
    ids = [i for i in pointwise if i in decisions]
    if len(ids) < len(pointwise):
        report.notes.append(f"{len(pointwise) - len(ids)} pointwise label(s) have no judge decision")
    truth = np.array([pointwise[i] == "reject" for i in ids], int)
    predicted = np.array([decisions[i] != "accept" for i in ids], int)
    judged = np.array([scores[i] for i in ids], float)
    if ids:
        report.metrics["accuracy"] = _estimate(lambda k: float((truth[k] == predicted[k]).mean()), len(ids), rounds,
                                               seed)
        report.metrics["cohen_kappa"] = _estimate(lambda k: cohen_kappa(truth[k], predicted[k]), len(ids), rounds,
                                                  seed)
        report.metrics["reject_precision"] = _estimate(lambda k: precision_recall(truth[k], predicted[k])[0],
                                                       len(ids), rounds, seed)
        report.metrics["reject_recall"] = _estimate(lambda k: precision_recall(truth[k], predicted[k])[1],
                                                    len(ids), rounds, seed)
        human = 1.0 - truth.astype(float)  # higher = better, like the judge score
        report.metrics["kendall_tau_pointwise"] = _estimate(lambda k: kendall_tau_b(judged[k], human[k]), len(ids),
                                                            rounds, seed)

    if pairwise:
        preferences, n_pairs, consistent = _match_preferences(matches or [])
        decisive = []
        for a, b, winner in pairwise:
            if winner == "tie":
                continue
            if (a, b) in preferences:
                p_a = preferences[(a, b)]
            elif (b, a) in preferences:
                p_a = 1.0 - preferences[(b, a)]
            elif a in scores and b in scores:
                p_a = 1.0 if scores[a] > scores[b] else 0.0 if scores[a] < scores[b] else 0.5
            else:
                continue
            decisive.append(p_a if winner == "a" else 1.0 - p_a)
        agree = np.array([1.0 if p > 0.5 else 0.0 if p < 0.5 else 0.5 for p in decisive])
        report.metrics["pairwise_agreement"] = _estimate(lambda k: float(agree[k].mean()), agree.size, rounds, seed)
        wins: dict[str, list[float]] = {}
        for a, b, winner in pairwise:
            wins.setdefault(a, []).append(1.0 if winner == "a" else 0.5 if winner == "tie" else 0.0)
            wins.setdefault(b, []).append(1.0 if winner == "b" else 0.5 if winner == "tie" else 0.0)
        ranked = [i for i in wins if i in scores]
        rate = np.array([np.mean(wins[i]) for i in ranked])
        judge_rank = np.array([scores[i] for i in ranked])
        report.metrics["kendall_tau_pairwise"] = _estimate(lambda k: kendall_tau_b(judge_rank[k], rate[k]),
                                                           len(ranked), rounds, seed)
        if n_pairs:
            flags = np.array([1.0] * consistent + [0.0] * (n_pairs - consistent))
            report.metrics["position_consistency"] = _estimate(lambda k: float(flags[k].mean()), n_pairs, rounds,
                                                               seed)
    return report


def disagreements(pointwise: dict[str, str], rows: list[dict[str, Any]], *, examples: int = 3) -> dict[str, Any]:
    """Where the critic and the people disagree, per judge (see the module docstring); critique rows as written
    by `synthloop critique` (`judges`: judge id → decision, `reasons` prefixed with the judge id)."""
    by_id = {str(row.get("image_id")): row for row in rows}
    labelled = [i for i in pointwise if i in by_id]
    judges: dict[str, dict[str, Any]] = {}
    for image_id in labelled:
        row = by_id[image_id]
        for judge, decision in (row.get("judges") or {}).items():
            if decision == "accept":
                continue
            entry = judges.setdefault(judge, {"rejects": 0, "confirmed": 0, "disputed": []})
            entry["rejects"] += 1
            if pointwise[image_id] == "reject":
                entry["confirmed"] += 1
            elif len(entry["disputed"]) < examples:
                reason = next((r for r in row.get("reasons", []) if str(r).startswith(f"{judge}: ")), "")
                entry["disputed"].append({"image_id": image_id, "reason": str(reason)[len(judge) + 2:][:200]})
    for judge, entry in judges.items():
        entry["precision"] = entry["confirmed"] / entry["rejects"]
        entry["purpose"] = JUDGE_PURPOSE.get(judge, "")
    critic_only = [i for i in labelled if by_id[i].get("decision") != "accept" and pointwise[i] == "accept"]
    human_only = [i for i in labelled if by_id[i].get("decision") == "accept" and pointwise[i] == "reject"]
    return {"judges": dict(sorted(judges.items(), key=lambda kv: (-kv[1]["rejects"], kv[0]))),
            "critic_only": critic_only, "human_only": human_only}


def format_report(report: AgreementReport) -> str:
    """A plain-text table (metric, value, 95% interval, n), then where the critic and the people disagree."""
    lines = [f"{'metric':<24}{'value':>8}   {'95% bootstrap CI':<18}{'n':>6}", "-" * 58]
    for name, e in report.metrics.items():
        lines.append(f"{name:<24}{e.value:>8.3f}   [{e.low:6.3f}, {e.high:6.3f}] {e.n:>6}")
    found = report.disagreements
    if found.get("judges") or found.get("critic_only") or found.get("human_only"):
        lines += ["", f"where the critic and the labellers disagree: {len(found['critic_only'])} image(s) rejected "
                      f"by the critic but kept by people, {len(found['human_only'])} kept by the critic but "
                      "rejected by people"]
        for judge, entry in found["judges"].items():
            lines.append(f"  {judge}: {entry['rejects']} reject(s), {entry['confirmed']} confirmed by people "
                         f"({entry['precision']:.0%}); it is for {entry['purpose'] or 'a check of its own'}")
            lines += [f"    disputed: image {d['image_id']}: {d['reason']}" for d in entry["disputed"]]
        if found["human_only"]:
            shown = ", ".join(found["human_only"][:10])
            lines.append(f"  kept by the critic, rejected by people (no judge checks what they saw): {shown}")
    return "\n".join(lines + [f"note: {n}" for n in report.notes])


def score_histogram_png(accepted: Sequence[float], rejected: Sequence[float], path: Path, *, bins: int = 20,
                        report: AgreementReport | None = None) -> None:
    """Judge-score histograms for human-accepted (green) and human-rejected (red) images, drawn with Pillow; with
    `report`, its metrics and 95% intervals in a panel above (the histogram keeps its 640 × 360 place)."""

    from synthloop.tools.io import atomic_write_bytes

    histogram = _histogram(accepted, rejected, bins)
    image = histogram if report is None or not report.metrics else _with_metrics(histogram, report)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def _with_metrics(histogram: Any, report: AgreementReport) -> Any:
    """The metrics (value, 95% interval on a −1…1 axis) stacked above the histogram."""
    from PIL import Image, ImageDraw

    row, left, width = 22, 190, histogram.width
    panel = Image.new("RGB", (width, 30 + row * len(report.metrics)), "white")
    draw = ImageDraw.Draw(panel)
    draw.text((8, 8), "agreement with the labellers (95% bootstrap intervals; axis -1 to 1)", fill="black")
    span = width - left - 30

    def x(value: float) -> float:
        return left + span * (min(1.0, max(-1.0, value)) + 1.0) / 2.0

    draw.line([x(0.0), 26, x(0.0), panel.height - 4], fill=(200, 200, 200))
    for k, (name, e) in enumerate(report.metrics.items()):
        y = 30 + k * row
        draw.text((8, y + 3), f"{name} {e.value:.2f}" if np.isfinite(e.value) else f"{name} n/a", fill="black")
        if np.isfinite(e.low) and np.isfinite(e.high):
            draw.line([x(e.low), y + 10, x(e.high), y + 10], fill=(60, 60, 60), width=2)
        if np.isfinite(e.value):
            draw.ellipse([x(e.value) - 4, y + 6, x(e.value) + 4, y + 14], fill=(46, 125, 50))
    stacked = Image.new("RGB", (width, panel.height + histogram.height), "white")
    stacked.paste(panel, (0, 0))
    stacked.paste(histogram, (0, panel.height))
    return stacked


def _histogram(accepted: Sequence[float], rejected: Sequence[float], bins: int) -> Any:
    from PIL import Image, ImageDraw

    values = np.concatenate([np.asarray(accepted, float), np.asarray(rejected, float)])
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    counts = [np.histogram(np.asarray(v, float), edges)[0] for v in (accepted, rejected)]
    width, height, margin = 640, 360, 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    top = max(1, max(int(c.max()) if c.size else 0 for c in counts))
    bar = (width - 2 * margin) / bins
    for series, (colour, offset) in enumerate(((0x2E8B57, 0.0), (0xC0392B, 0.5))):
        for k, count in enumerate(counts[series]):
            x0 = margin + k * bar + offset * bar
            y0 = height - margin - (height - 2 * margin) * count / top
            rgb = ((colour >> 16) & 255, (colour >> 8) & 255, colour & 255)
            draw.rectangle([x0, y0, x0 + bar / 2 - 1, height - margin], fill=rgb)
    draw.line([margin, height - margin, width - margin, height - margin], fill="black")
    draw.text((margin, 8), f"judge score: human accept (green, n={len(accepted)}) vs reject (red, n={len(rejected)})",
              fill="black")
    draw.text((margin, height - margin + 6), f"{low:.3g}", fill="black")
    draw.text((width - margin - 40, height - margin + 6), f"{high:.3g}", fill="black")
    draw.text((4, margin), str(top), fill="black")
    return image


def run_agreement(labels: Path, critique: Path, *, score_key: str | None = None, ratings: Path | None = None,
                  matches: Path | None = None, rounds: int = 1000, seed: int = 0, plot: Path | None = None
                  ) -> AgreementReport:
    """Load the files, evaluate, and draw the score histogram when `plot` is given."""
    pointwise, pairwise = load_labels(labels)
    rows = _read_jsonl(critique)
    decisions, scores = judge_scores(rows, score_key)
    if ratings is not None:
        try:
            data = json.loads(ratings.read_text(encoding="utf-8"))
            scores.update({str(k): float(v) for k, v in data["scores"].items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LabelError(f"cannot read ratings {ratings}: expected {{\"scores\": {{id: rating}}}} ({exc})") from exc
    match_rows = _read_jsonl(matches) if matches is not None else None
    report = evaluate(pointwise, pairwise, decisions, scores, matches=match_rows, rounds=rounds, seed=seed)
    report.disagreements = disagreements(pointwise, rows)
    if plot is not None:
        accepted = [scores[i] for i, label in pointwise.items() if label == "accept" and i in scores]
        rejected = [scores[i] for i, label in pointwise.items() if label == "reject" and i in scores]
        score_histogram_png(accepted, rejected, plot, report=report)
    return report


def _sample_score(record: dict[str, Any]) -> float:
    """A kept sample's critic score for rankings: its rating when ranked, else its recognisability, else its
    lowest certificate agreement, else 1 (accepted)."""
    if isinstance(record.get("rating"), int | float):
        return float(record["rating"])
    scores = {f"{v.get('judge')}/{k}": s for v in record.get("verdicts") or []
              for k, s in (v.get("scores") or {}).items()}
    for key in ("detector.recognisability/recognisability", "rules.certificate/min_agreement"):
        if isinstance(scores.get(key), int | float):
            return float(scores[key])
    return 1.0


def run_dir_agreement(out_dir: Path, *, rounds: int = 1000, seed: int = 0) -> AgreementReport:
    """Agreement of a run's critic with the votes cast in the web UI (`human_labels.jsonl`): the critic kept
    every sample people could vote on, so pointwise it is right where people accept; pairwise it prefers the
    sample with the higher score (`_sample_score`). Needs the run's export (manifest.jsonl)."""
    out_dir = Path(out_dir)
    labels_file, manifest = out_dir / "human_labels.jsonl", out_dir / "manifest.jsonl"
    if not manifest.is_file():
        return AgreementReport(notes=["the run has no export yet (manifest.jsonl): nothing to compare"])
    votes = _read_jsonl(labels_file) if labels_file.is_file() else []
    records = {str(r.get("id")): r for r in _read_jsonl(manifest)}
    pointwise = {str(v["sample_id"]): v["label"] for v in votes if v.get("label") in ("accept", "reject")
                 and str(v.get("sample_id")) in records}
    pairwise = [(str(v["a_sample_id"]), str(v["b_sample_id"]), v["winner"]) for v in votes
                if v.get("winner") in ("a", "b", "tie") and str(v.get("a_sample_id")) in records
                and str(v.get("b_sample_id")) in records]
    decisions = dict.fromkeys(records, "accept")
    scores = {i: _sample_score(r) for i, r in records.items()}
    report = evaluate(pointwise, pairwise, decisions, scores, rounds=rounds, seed=seed)
    rows = [{"image_id": i, "decision": "accept", "reasons": [],
             "judges": {str(v.get("judge")): str(v.get("decision")) for v in r.get("verdicts") or []}}
            for i, r in records.items()]
    report.disagreements = disagreements(pointwise, rows)
    if not votes:
        report.notes.append("no votes yet: vote in the Kept and A/B compare tabs")
    return report


def json_safe(value: Any) -> Any:
    """`value` with NaN and infinities as None (strict JSON)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
