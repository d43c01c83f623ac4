"""The dataset card's counts, gathered one sample at a time: images and instances per split and class, COCO
size buckets, box-size statistics, instances per image, provenance, and the first samples for the picture.

Nothing here grows with the number of samples: counters are bounded by the classes, splits and backends,
box sizes go into a histogram on a 1/8-pixel grid (exact for whole and half pixels; medians otherwise within
1/16 px), and the picture keeps the first 16 samples by id.
"""

from __future__ import annotations

from collections import Counter

from synthloop.tools.export.card_tasks import Smallest
from synthloop.tools.types import Instance, Sample, TaskSpec

SMALL_AREA, MEDIUM_AREA = 32**2, 96**2  # COCO's area thresholds
GRID_MAX = 16
HISTOGRAM_STEPS_PER_PX = 8


def size_bucket(area: float) -> str:
    """COCO size class of an instance area."""
    return "small" if area < SMALL_AREA else "medium" if area < MEDIUM_AREA else "large"


def exported(sample: Sample) -> list[Instance]:
    """Instances the exports contain (area 0 is skipped there too)."""
    return [i for i in (sample.annotation.instances if sample.annotation else []) if i.area > 0]


class ValueHistogram:
    """Count, min, max and median of many values in bounded memory (see the module docstring)."""

    def __init__(self) -> None:
        self._steps: Counter[int] = Counter()
        self.count = 0
        self.min = self.max = 0.0

    def add(self, value: float) -> None:
        """Count one value."""
        self.min = value if not self.count else min(self.min, value)
        self.max = value if not self.count else max(self.max, value)
        self._steps[round(value * HISTOGRAM_STEPS_PER_PX)] += 1
        self.count += 1

    def median(self) -> float:
        """The median (the mean of the two middle values for an even count), as `statistics.median`."""
        if not self.count:
            raise ValueError("no values")
        wanted = sorted({(self.count - 1) // 2, self.count // 2})
        found: list[float] = []
        seen = 0
        for step in sorted(self._steps):
            seen += self._steps[step]
            while wanted and wanted[0] < seen:
                found.append(step / HISTOGRAM_STEPS_PER_PX)
                wanted.pop(0)
            if not wanted:
                break
        return found[0] if len(found) == 1 else (found[0] + found[1]) / 2


class CardStats:
    """The card's dataset counts (see the module docstring)."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.images = 0
        self.images_per_split: Counter[str] = Counter()
        self.per_split: dict[str, Counter[str]] = {s: Counter() for s in spec.splits.names()}
        self._other_splits: dict[str, str] = {}  # a split the spec lacks → the smallest sample id in it
        self.images_with: Counter[str] = Counter()
        self.buckets: Counter[str] = Counter()
        self.widths, self.heights = ValueHistogram(), ValueHistogram()
        self.per_image_min = self.per_image_max = self.instances = 0
        self.backends: Counter[tuple[str, str]] = Counter()
        self.judges: Counter[str] = Counter()
        self.first: Smallest[str, Sample] = Smallest(GRID_MAX)
        # Where objects came from (renderers that record it, e.g. copy_paste): per class, objects per
        # (source, kind, licence) and the distinct exemplars used; the measured difficulty per image.
        self.asset_uses: dict[str, Counter[tuple[str, str, str]]] = {}
        self.assets_seen: dict[str, set[str]] = {}
        self.difficulty = ValueHistogram()

    def add(self, sample: Sample) -> None:
        """Count one kept sample."""
        instances = exported(sample)
        n = len(instances)
        self.per_image_min = n if not self.images else min(self.per_image_min, n)
        self.per_image_max = max(self.per_image_max, n)
        self.images += 1
        self.instances += n
        self.images_per_split[sample.split] += 1
        if sample.split not in self.per_split:
            self.per_split[sample.split] = Counter()
        if sample.split not in self.spec.splits.names():
            self._other_splits[sample.split] = min(self._other_splits.get(sample.split, sample.id), sample.id)
        for inst in instances:
            self.per_split[sample.split][inst.category] += 1
            self.buckets[size_bucket(inst.area)] += 1
            self.widths.add(inst.bbox[2])
            self.heights.add(inst.bbox[3])
        self.images_with.update({inst.category for inst in instances})
        self.backends.update(sorted(sample.backend.items()))
        self.judges.update(v.judge for v in sample.verdicts)
        self.first.add(sample.id, sample)
        objects_info = sample.render_info.get("objects", [])
        if len(objects_info) == len(sample.layout.objects):
            for obj, info in zip(sample.layout.objects, objects_info, strict=True):
                key = (str(info.get("source", "?")), str(info.get("kind", "?")), str(info.get("licence", "?")))
                self.asset_uses.setdefault(obj.category, Counter())[key] += 1
                self.assets_seen.setdefault(obj.category, set()).add(str(info.get("asset", "?")))
        score = sample.difficulty_score if sample.difficulty_score is not None else \
            sample.render_info.get("difficulty_score")
        if isinstance(score, int | float):
            self.difficulty.add(float(score))

    @property
    def splits(self) -> list[str]:
        """The spec's splits, then any other split a sample named (in order of their first sample id)."""
        others = sorted(self._other_splits, key=lambda split: self._other_splits[split])
        return [*self.spec.splits.names(), *others]

    def class_counts(self) -> dict[str, Counter[str]]:
        """Instances per class, per split (every split of `splits`)."""
        return {split: self.per_split.get(split, Counter()) for split in self.splits}
