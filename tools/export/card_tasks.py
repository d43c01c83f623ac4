"""The card's task sections: what each task of the spec delivered, a section per task output (counts and
examples), and the label-certificate agreement histogram when instances carry certificates.

`TaskStats` gathers them one sample at a time (counters and the first examples by sample id, never the
samples), so the card's memory stays flat however large the dataset. It counts what the exports contain:
instances with area 0, and refs or relations that point at them, are left out there, so they are counted as
dropped here.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

import numpy as np

from synthloop.tools.export.coco_records import category_ids, exported_instances
from synthloop.tools.export.semantic import BACKGROUND, IGNORE, IGNORE_BELOW_AGREEMENT, sample_semantic_map
from synthloop.tools.types import Sample, Task, TaskSpec

EXAMPLES = 3
HISTOGRAM_BINS = 10
AGREEMENT_UNITS = 10**9  # agreements are summed in billionths: the mean does not depend on the samples' order
K = TypeVar("K")
V = TypeVar("V")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


class Smallest(Generic[K, V]):
    """The `k` values with the smallest keys seen so far (the first examples by sample id, whatever the
    order of arrival); keys are unique."""

    def __init__(self, k: int) -> None:
        self.k = k
        self._keys: list[K] = []
        self._values: list[V] = []

    def add(self, key: K, value: V) -> None:
        """Offer one value."""
        if len(self._keys) >= self.k and not key < self._keys[-1]:  # type: ignore[operator]
            return
        at = bisect.bisect(self._keys, key)  # type: ignore[type-var]
        self._keys.insert(at, key)
        self._values.insert(at, value)
        del self._keys[self.k :], self._values[self.k :]

    def values(self) -> list[V]:
        """The kept values, smallest key first."""
        return list(self._values)


# ------------------------------------------------------------------------------------------- the statistics


class TaskStats:
    """What each task delivered, gathered one sample at a time; `markdown()` writes the card part."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self._class_ids = category_ids(spec)
        self._semantic = Task.semantic_segmentation in spec.tasks
        self.samples = self.instances = self.masked = 0
        # captions
        self.captioned = self.n_captions = self.caption_words = 0
        self.caption_examples: Smallest[str, str] = Smallest(EXAMPLES)
        # referring expressions
        self.referred = self.sentences = self.refs_dropped = 0
        self.ref_examples: Smallest[tuple[str, int], str] = Smallest(EXAMPLES)
        # scene graph
        self.predicates: Counter[str] = Counter()
        self.relation_sources: Counter[str] = Counter()
        self.with_relations = self.relations_dropped = 0
        self.relation_examples: Smallest[str, str] = Smallest(EXAMPLES)
        # semantic maps
        self.pixels: Counter[int] = Counter()
        # certificates
        self.certified = self.below = 0
        self.agreement_sum_nano, self.agreement_min = 0, 1.0  # the sum in integer units: exact in any order
        self.agreement_bins = [0] * HISTOGRAM_BINS
        self.certificate_sources: Counter[str] = Counter()

    def add(self, sample: Sample) -> None:
        """Count one kept sample."""
        self.samples += 1
        exported = exported_instances(sample)
        visible = {k: inst.category for k, inst in exported}
        self.instances += len(exported)
        self.masked += sum(inst.segmentation is not None for _, inst in exported)
        annotation = sample.annotation
        if annotation is not None and annotation.captions:
            self.captioned += 1
            self.n_captions += len(annotation.captions)
            self.caption_words += sum(len(c.split()) for c in annotation.captions)
            self.caption_examples.add(sample.id, f"- `{sample.id}`: {annotation.captions[0]}")
        refs = annotation.referring if annotation is not None else []
        kept_refs = [r for r in refs if r.instance in visible]
        self.refs_dropped += len(refs) - len(kept_refs)
        self.referred += len({r.instance for r in kept_refs})
        self.sentences += sum(len(r.sentences) for r in kept_refs)
        for n, ref in enumerate(kept_refs):
            self.ref_examples.add((sample.id, n), f"- `{sample.id}` {visible[ref.instance]}: \"{ref.sentences[0]}\"")
        relations = list(annotation.relations) if annotation is not None else []
        kept = [r for r in relations if r.subject in visible and r.object in visible]
        self.relations_dropped += len(relations) - len(kept)
        self.with_relations += bool(kept)
        self.predicates.update(r.predicate for r in kept)
        self.relation_sources.update(r.source for r in kept)
        if kept:
            first = kept[0]
            self.relation_examples.add(
                sample.id, f"- `{sample.id}`: {visible[first.subject]} *{first.predicate}* {visible[first.object]}")
        if self._semantic:
            values, counts = np.unique(sample_semantic_map(sample, self._class_ids), return_counts=True)
            self.pixels.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
        for _, inst in exported:
            if inst.certificate is None:
                continue
            agreement = inst.certificate.agreement
            self.certified += 1
            self.agreement_sum_nano += round(agreement * AGREEMENT_UNITS)
            self.agreement_min = min(self.agreement_min, agreement)
            self.below += agreement < IGNORE_BELOW_AGREEMENT
            # Bin k holds [k/10, (k+1)/10), the last one 1.0 too; the small epsilon keeps 0.3 out of [0.2, 0.3).
            self.agreement_bins[min(int(agreement * HISTOGRAM_BINS + 1e-9), HISTOGRAM_BINS - 1)] += 1
            self.certificate_sources.update(list(inst.certificate.sources))

    # --------------------------------------------------------------------------------------- sections

    def _captions(self) -> tuple[str, str]:
        delivered = f"{self.captioned}/{self.samples} images captioned, {self.n_captions} captions"
        if self.samples - self.captioned:
            delivered += f"; **{self.samples - self.captioned} images without a caption**"
        words = f"Words per caption: mean {self.caption_words / self.n_captions:.1f}.\n" if self.n_captions else ""
        return delivered, "\n".join(["## Captions\n", f"{delivered}.", words, *self.caption_examples.values()])

    def _refs(self) -> tuple[str, str]:
        delivered = f"{self.referred}/{self.instances} objects referred to, {self.sentences} sentences"
        if self.instances and not self.referred:
            delivered += "; **none delivered**"
        md = ["## Referring expressions\n", f"{delivered}."]
        if self.refs_dropped:
            md.append(f"Left out: {self.refs_dropped} referring expressions naming objects with no visible pixels.")
        return delivered, "\n".join([*md, "", *self.ref_examples.values()])

    def _scene_graph(self) -> tuple[str, str]:
        total = sum(self.predicates.values())
        delivered = f"{total} relations in {self.with_relations}/{self.samples} images"
        sources = ", ".join(f"{k} {v}" for k, v in sorted(self.relation_sources.items())) or "-"
        md = ["## Scene graph\n", f"{delivered}; by source: {sources}."]
        if self.relations_dropped:
            md.append(f"Left out: {self.relations_dropped} relations joining objects with no visible pixels.")
        if self.predicates:
            ordered = sorted(self.predicates.items(), key=lambda kv: (-kv[1], kv[0]))
            rows = [[p, c, _share(c, total)] for p, c in ordered]
            md.append("\n" + _table(["predicate", "relations", "share"], rows))
        return delivered, "\n".join([*md, *self.relation_examples.values()])

    def _semantic_section(self) -> tuple[str, str]:
        total = sum(self.pixels.values())
        delivered = f"{self.samples} class maps, {_share(self.pixels[IGNORE], total)} of pixels ignore"
        names = {BACKGROUND: "background", **{cid: name for name, cid in self._class_ids.items()},
                 IGNORE: "ignore (255)"}
        rows = [[value, names[value], _share(self.pixels[value], total)] for value in sorted(names)]
        md = [
            "## Semantic segmentation\n",
            f"{delivered}. `semantic/{{split}}/{{id}}.png`: pixel = COCO category id; ignore marks pixels claimed "
            f"by masks of different classes, masks whose certificate agreement is below {IGNORE_BELOW_AGREEMENT}, "
            "and the boxes of objects without a mask.\n",
            _table(["value", "class", "pixels"], rows),
        ]
        return delivered, "\n".join(md)

    def _certificates(self) -> str:
        if not self.certified:
            return ""
        peak = max(max(self.agreement_bins), 1)
        rows = [
            [f"[{k / HISTOGRAM_BINS:.1f}, {(k + 1) / HISTOGRAM_BINS:.1f}{']' if k == HISTOGRAM_BINS - 1 else ')'}",
             c, "█" * round(20 * c / peak)]
            for k, c in enumerate(self.agreement_bins)
        ]  # fmt: skip
        mean = self.agreement_sum_nano / AGREEMENT_UNITS / self.certified
        return "\n".join([
            "## Label certificates\n",
            f"{self.certified}/{self.instances} objects carry a certificate (the `certificate` key of the COCO "
            f"annotation); agreement mean {mean:.3f}, min {self.agreement_min:.3f}; "
            f"{self.below} below {IGNORE_BELOW_AGREEMENT}.",
            "Sources seen: " + ", ".join(f"{k} ({v})" for k, v in sorted(self.certificate_sources.items())) + ".\n",
            _table(["agreement", "objects", "bar"], rows),
        ])  # fmt: skip

    def _masks(self) -> str:
        text = f"{self.masked}/{self.instances} objects with a mask"
        return text + (f"; {self.instances - self.masked} box only" if self.masked < self.instances else "")

    def markdown(self) -> str:
        """The 'What each task delivered' table, one section per task output, the certificate histogram (when
        any instance has a certificate)."""
        sections = {
            Task.semantic_segmentation: self._semantic_section,
            Task.captioning: self._captions,
            Task.referring_expressions: self._refs,
            Task.scene_graph: self._scene_graph,
        }
        rows, parts = [], []
        for task in self.spec.tasks:
            if task in sections:
                delivered, section = sections[task]()
                parts.append(section)
            elif task is Task.instance_segmentation:
                delivered = self._masks()
            else:
                delivered = f"{self.instances} boxes in {self.samples} images"
            rows.append([task.value, OUTPUTS[task], delivered])
        md = ["## What each task delivered\n", _table(["task", "output", "delivered"], rows), *parts]
        certificates = self._certificates()
        if certificates:
            md.append(certificates)
        return "\n\n".join(part.strip("\n") for part in md)


OUTPUTS: dict[Task, str] = {
    Task.detection: "`annotations/instances_{split}.json` (boxes)",
    Task.instance_segmentation: "`annotations/instances_{split}.json` (RLE masks)",
    Task.semantic_segmentation: "`semantic/{split}/{id}.png`, `semantic/classes.json`",
    Task.captioning: "`annotations/captions_{split}.json`",
    Task.referring_expressions: "`annotations/refs_{split}.json`",
    Task.scene_graph: "`annotations/scene_graphs_{split}.json`",
}


def task_sections(spec: TaskSpec, samples: Iterable[Sample]) -> str:
    """Markdown: the 'What each task delivered' table, one section per task output, the certificate
    histogram (when any instance has a certificate)."""
    stats = TaskStats(spec)
    for sample in samples:
        stats.add(sample)
    return stats.markdown()
