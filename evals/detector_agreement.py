"""Detector-agreement judge on the defect benchmark: catch rates of the defects it owns, false rejects.

Runs `DetectorAgreementJudge` over clean compositor samples and over the same samples with one annotation-only
defect injected (`evals/defects.py`): the pixels stay, so a detector sees the same image both times. Which
judge reason a defect should raise, by construction:

    missing_box  (an object lost its annotation)   → "extra" (detected, not annotated)
    extra_box    (a box where no object is)        → "missing" (annotated, not detected)
    relabel      (an annotation's class swapped)   → "wrong_class"
    box_shift / box_mask_shift (box moved ≥ 60%)   → "shifted", or "missing" + "extra" when it no longer overlaps

Two detectors:
- `OracleDetector`: returns the clean sample's own visible instances as detections, optionally with box jitter,
  misses and false positives (seeded per image). With no noise, catch rates are what the matching promises;
  the noise rows show how a detector's errors turn into false rejects.
- any real `Detector`, e.g. YOLOv3-tiny COCO through the Darknet backend (`--yolo DIR`).

Run: `python -m synthloop.evals.detector_agreement [--n 100] [--size 512] [--yolo DIR]`. Measured, not asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from dataclasses import dataclass, field

import numpy as np

from synthloop.evals.defects import INJECTORS, clean_items
from synthloop.tools.critic.base import JudgeInput
from synthloop.tools.critic.detector import Detection, Detector, DetectorAgreementJudge
from synthloop.tools.types import Decision, Instance

DETECTOR_DEFECTS = ("missing_box", "extra_box", "relabel", "box_shift", "box_mask_shift")
EXPECTED_KIND = {"missing_box": "extra", "extra_box": "missing", "relabel": "wrong_class", "box_shift": "shifted",
                 "box_mask_shift": "shifted"}
KINDS = ("missing", "extra", "shifted", "wrong_class")


def _key(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


class OracleDetector:
    """Detects exactly the objects in the clean pixels (their exact labels), with optional seeded noise.

    `jitter`: box noise, standard deviation as a fraction of the box side; `miss`: probability of missing an
    object; `false_positives`: mean number of spurious boxes per image (random class and place).
    """

    vocabulary = None

    def __init__(self, items: list[JudgeInput], *, jitter: float = 0.0, miss: float = 0.0,
                 false_positives: float = 0.0, seed: int = 0) -> None:
        self.truth: dict[str, list[Instance]] = {
            _key(it.image): [i for i in it.sample.annotation.instances if i.area > 0] for it in items}
        self.jitter, self.miss, self.false_positives, self.seed = jitter, miss, false_positives, seed
        self.id = f"oracle(jitter={jitter}, miss={miss}, fp={false_positives})"

    def detect(self, image: np.ndarray, class_names: list[str]) -> list[Detection]:
        key = _key(image)
        rng = np.random.default_rng([self.seed, int(key[:12], 16)])
        height, width = image.shape[:2]
        found = []
        for inst in self.truth.get(key, []):
            if inst.category not in class_names or rng.random() < self.miss:
                continue
            x, y, w, h = inst.bbox
            dx, dy, dw, dh = rng.normal(0.0, self.jitter, 4) * [w, h, w, h]
            x0, y0 = max(0.0, x + dx), max(0.0, y + dy)
            x1, y1 = min(width, x + dx + w + dw), min(height, y + dy + h + dh)
            if x1 > x0 and y1 > y0:
                found.append(Detection(inst.category, (x0, y0, x1 - x0, y1 - y0), float(rng.uniform(0.6, 0.95))))
        for _ in range(rng.poisson(self.false_positives)):
            w, h = rng.uniform(0.05, 0.2, 2) * [width, height]
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            found.append(Detection(class_names[int(rng.integers(len(class_names)))], (x, y, w, h),
                                   float(rng.uniform(0.5, 0.9))))
        return found


class CachedDetector:
    """Remembers detections per image content: injected defects reuse the clean image's detections."""

    def __init__(self, detector: Detector) -> None:
        self.inner = detector
        self.vocabulary = detector.vocabulary
        self.id = detector.id
        self.cache: dict[tuple[str, tuple[str, ...]], list[Detection]] = {}
        self.seconds = 0.0
        self.calls = 0

    def detect(self, image: np.ndarray, class_names: list[str]) -> list[Detection]:
        key = (_key(image), tuple(class_names))
        if key not in self.cache:
            start = time.perf_counter()
            self.cache[key] = self.inner.detect(image, class_names)
            self.seconds += time.perf_counter() - start
            self.calls += 1
        return self.cache[key]


@dataclass
class Row:
    """One benchmark row: how many samples, how many not accepted, how often each reason kind came up."""

    n: int = 0
    caught: int = 0
    kinds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    recall: list[float] = field(default_factory=list)
    precision: list[float] = field(default_factory=list)


def run(detector: Detector, n: int = 100, size: int = 512, seed: int = 0, items: list[JudgeInput] | None = None,
        **judge_kwargs: object) -> tuple[dict[str, Row], float]:
    """Rows for clean samples and each detector defect; also the detector's seconds per distinct image."""
    items = items if items is not None else clean_items(n, size, seed)
    cached = CachedDetector(detector)
    judge = DetectorAgreementJudge(cached, **judge_kwargs)
    rows = {name: Row() for name in ("clean", *DETECTOR_DEFECTS)}

    def tally(row: Row, item: JudgeInput) -> None:
        result = judge.agreement(item)
        verdict = judge.judge(item)
        row.n += 1
        row.caught += verdict.decision != Decision.accept
        for kind in {d.kind for d in result.defects}:
            row.kinds[kind] += 1
        row.recall.append(verdict.scores["recall"])
        row.precision.append(verdict.scores["precision"])

    for item in items:
        tally(rows["clean"], item)
    for defect in DETECTOR_DEFECTS:
        for item in items:
            injected = INJECTORS[defect](item, np.random.default_rng([seed, item.sample.index, len(defect)]))
            if injected is not None:
                tally(rows[defect], injected.item)
    return rows, cached.seconds / max(1, cached.calls)


def format_rows(title: str, rows: dict[str, Row], seconds: float) -> str:
    """Plain-text table: not-accepted rate per row (false rejects on clean), how often the reason kind the defect
    should raise came up ('seen': the honest catch rate when the clean rate is high), and every kind seen."""
    lines = [title, f"{'row':<16}{'n':>5}{'caught':>9}{'expected kind':>15}{'seen':>7}  kinds seen (share of samples)"]
    for name, row in rows.items():
        rate = row.caught / row.n if row.n else float("nan")
        expected = EXPECTED_KIND.get(name, "-")
        seen = f"{row.kinds[expected] / row.n:.0%}" if name in EXPECTED_KIND and row.n else "-"
        kinds = ", ".join(f"{k} {v / row.n:.0%}" for k, v in row.kinds.items() if v) if row.n else ""
        label = "clean (FR)" if name == "clean" else name
        lines.append(f"{label:<16}{row.n:>5}{rate:>9.1%}{expected:>15}{seen:>7}  {kinds or 'none'}")
    clean = rows["clean"]
    lines.append(f"clean: mean recall {np.mean(clean.recall):.2f}, mean precision {np.mean(clean.precision):.2f} "
                 f"(detector vs exact labels); detector {1000 * seconds:.1f} ms per image")
    return "\n".join(lines)


NOISE = {"perfect": {}, "jitter 5%": {"jitter": 0.05}, "jitter 15%": {"jitter": 0.15},
         "miss 10%": {"miss": 0.1}, "0.2 FP/image": {"false_positives": 0.2},
         "jitter 5%, miss 10%, 0.2 FP": {"jitter": 0.05, "miss": 0.1, "false_positives": 0.2}}


def main(argv: list[str] | None = None) -> None:
    """Print the oracle tables, and the YOLOv3-tiny one when `--yolo DIR` is given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--yolo", help="directory with a Darknet cfg, weights and names (e.g. YOLOv3-tiny COCO)")
    parser.add_argument("--no-oracle", action="store_true")
    args = parser.parse_args(argv)
    items = clean_items(args.n, args.size, args.seed)
    if not args.no_oracle:
        for name, noise in NOISE.items():
            rows, seconds = run(OracleDetector(items, seed=args.seed, **noise), seed=args.seed, items=items)
            print(format_rows(f"\noracle detector, {name}: {args.n} samples at {args.size}²", rows, seconds))
    if args.yolo:
        from synthloop.tools.critic.detectors import load_detector

        yolo = load_detector("yolov3_darknet", args.yolo, options={"aliases": {"plate": "bowl"}})
        rows, seconds = run(yolo, seed=args.seed, items=items, min_score=0.2, extra_score=0.3)
        print(format_rows(f"\nYOLOv3-tiny COCO (plate→bowl), {args.n} samples at {args.size}²", rows, seconds))


if __name__ == "__main__":
    main()
