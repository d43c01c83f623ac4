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
judges a running histogram, not a sample. The headline pools **every** defect (missing, extra and relabelled
boxes included), and names those three separately: rules see them only by accident, a detector judge is
their critic. `renderer="copy_paste"` renders real cut-outs of eight COCO classes (`coco_defect_spec`) so that a
COCO detector can take part: `recognisability` adds the recognisability judge (YOLOv3-tiny by default).

Calibration (`calibrate_recognisability`): the recognisability judge's two thresholds (relabel margin, missing
score) are chosen on clean copy_paste samples and on the same samples with one relabelled / one missing box:
the pair that catches the most of both defects while rejecting at most `max_false_reject` of the clean samples;
then measured on a fresh seed.

Critique check (`run_critique_check`): a boxes-only COCO file of clean copy_paste renders in which a share of the
images has one box dropped or relabelled, audited exactly as `synthloop critique --detector default` audits
it; catches per defect and false rejects of the untouched images.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from synthloop.evals.defects import COCO_BENCH_CLASSES, DEFECTS, INJECTORS, RULE_VISIBLE, clean_items
from synthloop.tools.critic.base import Judge, JudgeInput
from synthloop.tools.critic.consistency import LabelConsistencyJudge
from synthloop.tools.critic.duplicates import DuplicateIndex, perceptual_hash, pixel_sha256
from synthloop.tools.critic.embedded import embedded_judges
from synthloop.tools.critic.recognisability import RecognisabilityJudge, evidence_scores
from synthloop.tools.types import Decision

ENSEMBLE = "embedded (any-reject)"
DETECTOR_DEFECTS = ("missing_box", "extra_box", "relabel")


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

    def pooled_catch_rate(self, defects: tuple[str, ...] = DEFECTS, judge: str = ENSEMBLE) -> float:
        """A judge's (default: the ensemble's) catch rate pooled over `defects` (NaN when none was injected)."""
        n = sum(self.n.get(d, 0) for d in defects)
        return sum(self.caught[d][judge] for d in defects if d in self.caught) / n if n else float("nan")

    def visible_catch_rate(self) -> float:
        """The ensemble's catch rate pooled over the defects visible to rules (RULE_VISIBLE)."""
        return self.pooled_catch_rate(RULE_VISIBLE)

    def to_dict(self) -> dict:
        """JSON-ready counts and rates."""
        rates = {d: {j: self.rate(d, j) for j in [*self.judges, ENSEMBLE]} for d in self.n}
        return {**asdict(self), "rates": rates, "catch_rate": self.pooled_catch_rate(),
                "visible_catch_rate": self.visible_catch_rate(),
                "detector_defects_catch_rate": self.pooled_catch_rate(DETECTOR_DEFECTS)}


def _judge_all(judges: list[Judge], item: JudgeInput) -> dict[str, bool]:
    sample = item.sample.model_copy(update={"image_sha256": pixel_sha256(item.image),
                                            "phash": perceptual_hash(item.image)})
    item = JudgeInput(sample=sample, image=item.image, spec=item.spec)
    rejected = {judge.id: judge.judge(item).decision != Decision.accept for judge in judges}
    rejected[ENSEMBLE] = any(rejected.values())
    return rejected


def run_defect_bench(n: int = 200, size: int = 512, seed: int = 0, defects: tuple[str, ...] = DEFECTS,
                     judges: list[Judge] | None = None, duplicates: DuplicateIndex | None = None, *,
                     renderer: str = "compositor", recognisability: RecognisabilityJudge | None = None
                     ) -> DefectBench:
    """Run the benchmark (see the module docstring); `judges` default to the embedded critic, `recognisability`
    is added after them."""
    items = clean_items(n, size, seed, renderer=renderer)
    index = duplicates if duplicates is not None else DuplicateIndex()
    judges = list(judges) if judges is not None else embedded_judges(index)
    if recognisability is not None:
        judges.append(recognisability)
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
    """A plain-text table: rows are defects (then clean false rejects), columns judges then the ensemble; the
    headline pools every defect, then names missing / extra / relabelled boxes."""
    columns = [*bench.judges, ENSEMBLE]
    short = [c.removeprefix("rules.").removeprefix("detector.") for c in columns]
    width = max(len(s) for s in short) + 1
    header = f"{'defect':<16}{'n':>5} " + "".join(f"{s:>{width}}" for s in short)
    lines = [f"critic defect benchmark: {bench.n_clean} clean samples at {bench.size}², seed {bench.seed}",
             header, "-" * len(header)]
    for row in [*(d for d in DEFECTS if d in bench.n), "clean"]:
        label = "clean (FR)" if row == "clean" else row + ("" if row in RULE_VISIBLE else " *")
        cells = "".join(f"{bench.rate(row, c):>{width}.1%}" for c in columns)
        lines.append(f"{label:<16}{bench.n[row]:>5} {cells}")
    detector = ", ".join(f"{d} {bench.rate(d, ENSEMBLE):.1%}" for d in DETECTOR_DEFECTS if d in bench.n)
    lines += [
        "-" * len(header),
        f"pooled catch rate over all {sum(d in bench.n for d in DEFECTS)} defects (ensemble): "
        f"{bench.pooled_catch_rate():.1%}",
        f"  missing / extra / relabelled boxes: {detector or 'not injected'} (pooled "
        f"{bench.pooled_catch_rate(DETECTOR_DEFECTS):.1%})",
        f"  pixel/annotation-visible defects: {bench.visible_catch_rate():.1%}",
        f"clean false-reject rate (ensemble): {bench.rate('clean', ENSEMBLE):.1%}",
        "critic ms per clean image: " + ", ".join(f"{k.removeprefix('rules.')} {v:.2f}"
                                                 for k, v in bench.ms_per_image.items()),
        "* missing / extra / relabelled boxes: invisible to rules (caught only by accident); the recognisability "
        "judge (--detector) is their critic",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- calibration


@dataclass
class Calibration:
    """Chosen thresholds, and what they do on the samples they were chosen on (rates) and on a fresh seed."""

    relabel_margin: float
    missing_score: float
    max_false_reject: float
    n_clean: int
    fit: dict[str, float] = field(default_factory=dict)
    check: dict[str, float] = field(default_factory=dict)


def _statistics(judge: RecognisabilityJudge, n: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """Per defect (clean, relabel, missing_box): each sample's (max rival margin, max unannotated score)."""
    rows: dict[str, list[tuple[float, float]]] = {"clean": [], "relabel": [], "missing_box": []}
    for item in clean_items(n, size, seed, renderer="copy_paste"):
        variants = [("clean", item)]
        for defect in ("relabel", "missing_box"):
            injected = INJECTORS[defect](item, np.random.default_rng([seed, item.sample.index, DEFECTS.index(defect)]))
            if injected is not None:
                variants.append((defect, injected.item))
        for name, variant in variants:
            scores = evidence_scores(judge.measure(variant))
            rows[name].append((scores["max_rival_margin"], scores["max_unannotated_score"]))
    return {k: np.array(v, float).reshape(-1, 2) for k, v in rows.items()}


def _rates(stats: dict[str, np.ndarray], margin: float, missing: float) -> dict[str, float]:
    return {k: float(((v[:, 0] >= margin) | (v[:, 1] >= missing)).mean()) if len(v) else float("nan")
            for k, v in stats.items()}


def choose_thresholds(stats: dict[str, np.ndarray], max_false_reject: float) -> tuple[float, float]:
    """The (relabel margin, missing score) pair catching the most relabelled and missing boxes (mean of the two
    rates) with a clean false-reject rate ≤ `max_false_reject`; ties go to the higher thresholds. Exact: for each
    margin (every observed value), the lowest missing score that keeps the budget."""
    clean = stats["clean"]
    allowed_total = int(np.floor(max_false_reject * len(clean) + 1e-9))
    margins = np.unique(np.concatenate([v[:, 0] for v in stats.values() if len(v)] + [np.array([1.01])]))
    best = (0.0, 1.01, 1.01)  # thresholds above every value: nothing rejected
    for margin in margins:
        flagged = clean[:, 0] >= margin
        allowed = allowed_total - int(flagged.sum())
        if allowed < 0:
            continue
        rest = np.sort(clean[~flagged, 1])[::-1]
        score = float(np.nextafter(rest[allowed], np.inf)) if allowed < len(rest) else -1.0
        rates = _rates(stats, float(margin), score)
        key = (float(np.nanmean([rates["relabel"], rates["missing_box"]])), float(margin), score)
        if key > best:
            best = key
    return best[1], best[2]


def calibrate_recognisability(judge: RecognisabilityJudge, n: int = 300, size: int = 512, seed: int = 1, *,
                              max_false_reject: float = 0.03, check_seed: int | None = None) -> Calibration:
    """Choose the judge's thresholds on seed `seed`, then measure them on `check_seed` (default seed + 1)."""
    stats = _statistics(judge, n, size, seed)
    margin, missing = choose_thresholds(stats, max_false_reject)  # for the judge's view mode (zoom or not)
    fresh = _statistics(judge, n, size, seed + 1 if check_seed is None else check_seed)
    return Calibration(relabel_margin=margin, missing_score=missing, max_false_reject=max_false_reject, n_clean=n,
                       fit=_rates(stats, margin, missing), check=_rates(fresh, margin, missing))


def format_calibration(calibration: Calibration) -> str:
    """The chosen thresholds and their rates on the fitting and the checking samples."""
    def rates(values: dict[str, float]) -> str:
        return (f"relabel caught {values['relabel']:.1%}, missing caught {values['missing_box']:.1%}, clean false "
                f"rejects {values['clean']:.1%}")

    return "\n".join([
        f"recognisability thresholds (clean false rejects ≤ {calibration.max_false_reject:.0%} on "
        f"{calibration.n_clean} samples): relabel_margin {calibration.relabel_margin:.4g}, missing_score "
        f"{calibration.missing_score:.4g}",
        f"  on the samples they were chosen on: {rates(calibration.fit)}",
        f"  on a fresh seed: {rates(calibration.check)}"])


# ------------------------------------------------------------------------------------------- critique check


@dataclass
class CritiqueCheck:
    """Per injected defect: images, caught by the audit, by the recognisability judge alone and by the label
    consistency judge alone; clean images and how many the audit (and each of those judges) rejected."""

    n_images: int
    injected: dict[str, int] = field(default_factory=dict)
    caught: dict[str, int] = field(default_factory=dict)
    caught_by_detector: dict[str, int] = field(default_factory=dict)
    caught_by_consistency: dict[str, int] = field(default_factory=dict)
    n_clean: int = 0
    false_rejects: int = 0
    false_rejects_by_detector: int = 0
    false_rejects_by_consistency: int = 0


def write_injected_coco(work_dir: Path, n: int, size: int, seed: int, share: float = 0.2,
                        defects: tuple[str, ...] = ("missing_box", "relabel"),
                        classes: tuple[str, ...] = COCO_BENCH_CLASSES) -> dict[str, str]:
    """Clean copy_paste renders as a boxes-only COCO file (`work_dir/coco.json`, `work_dir/images/`) in which
    `share` of the images carry one injected defect (cycled); image file name → defect ('' = untouched), also
    written to `work_dir/injected.json`."""
    from synthloop.tools.io import atomic_write_json, atomic_write_png

    items = clean_items(n, size, seed, renderer="copy_paste", coco_classes=tuple(classes))
    rng = np.random.default_rng([seed, 0xC0C0])
    chosen = set(rng.permutation(n)[:round(share * n)].tolist())
    names = list(items[0].spec.class_names)
    images, annotations, truth = [], [], {}
    for index, item in enumerate(items):
        file_name = f"{index:06d}.png"
        defect = ""
        if index in chosen:
            defect = defects[len([i for i in chosen if i < index]) % len(defects)]
            injected = INJECTORS[defect](item, np.random.default_rng([seed, index, DEFECTS.index(defect)]))
            item, defect = (injected.item, defect) if injected is not None else (item, "")
        truth[file_name] = defect
        atomic_write_png(Path(work_dir) / "images" / file_name, item.image)
        images.append({"id": index + 1, "file_name": file_name, "width": size, "height": size})
        for inst in item.sample.annotation.instances:
            if inst.area > 0:
                annotations.append({"id": len(annotations) + 1, "image_id": index + 1,
                                    "category_id": names.index(inst.category) + 1, "bbox": list(inst.bbox),
                                    "area": float(inst.bbox[2] * inst.bbox[3]), "iscrowd": 0})
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(names)]
    atomic_write_json(Path(work_dir) / "coco.json", {"images": images, "annotations": annotations,
                                                      "categories": categories})
    atomic_write_json(Path(work_dir) / "injected.json", truth, indent=1)
    return truth


def score_critique(rows: list[dict], truth: dict[str, str]) -> CritiqueCheck:
    """Tally critique rows (`synthloop critique` output) against what was injected into each image."""
    check = CritiqueCheck(n_images=len(rows))
    for row in rows:
        defect = truth.get(str(row["file_name"]), "")
        flagged = row["decision"] != "accept"
        by_detector = row["judges"].get(RecognisabilityJudge.id, "accept") != "accept"
        by_consistency = row["judges"].get(LabelConsistencyJudge.id, "accept") != "accept"
        if defect:
            check.injected[defect] = check.injected.get(defect, 0) + 1
            check.caught[defect] = check.caught.get(defect, 0) + int(flagged)
            check.caught_by_detector[defect] = check.caught_by_detector.get(defect, 0) + int(by_detector)
            check.caught_by_consistency[defect] = check.caught_by_consistency.get(defect, 0) + int(by_consistency)
        else:
            check.n_clean += 1
            check.false_rejects += int(flagged)
            check.false_rejects_by_detector += int(by_detector)
            check.false_rejects_by_consistency += int(by_consistency)
    return check


def run_critique_check(work_dir: Path, n: int = 200, size: int = 512, seed: int = 3, share: float = 0.2,
                       detector: object = None, classes: tuple[str, ...] = COCO_BENCH_CLASSES,
                       zoom: bool = True, consistency: bool = True) -> CritiqueCheck:
    """Write the injected boxes-only COCO (`write_injected_coco`) and audit it as `synthloop critique --detector`
    does (embedded judges, pixel checks, the recognisability judge over `detector`, default YOLOv3-tiny, zoomed
    views unless `zoom` is False, the label consistency judge unless `consistency` is False)."""
    from synthloop.tools.critic.audit import audit_coco

    truth = write_injected_coco(work_dir, n, size, seed, share, classes=classes)
    rows = audit_coco(Path(work_dir) / "coco.json", Path(work_dir) / "images", recognisability=True,
                      detector=detector, zoom=zoom, consistency=consistency)  # type: ignore[arg-type]
    return score_critique(rows, truth)


def format_critique_check(check: CritiqueCheck) -> str:
    """Per defect: caught by the audit (and by the recognisability judge alone); clean false rejects."""
    lines = [f"critique of a boxes-only COCO file, {check.n_images} images:"]
    for defect, total in check.injected.items():
        lines.append(f"  {defect:<12} caught {check.caught[defect]}/{total} ({check.caught[defect] / total:.0%}); by "
                     f"the recognisability judge alone {check.caught_by_detector[defect]}/{total}, by label "
                     f"consistency alone {check.caught_by_consistency.get(defect, 0)}/{total}")
    if check.n_clean:
        lines.append(f"  untouched images rejected: {check.false_rejects}/{check.n_clean} "
                     f"({check.false_rejects / check.n_clean:.1%}); by the recognisability judge alone "
                     f"{check.false_rejects_by_detector}/{check.n_clean}, by label consistency alone "
                     f"{check.false_rejects_by_consistency}/{check.n_clean}")
    return "\n".join(lines)
