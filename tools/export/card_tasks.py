"""The card's task sections: what each task of the spec delivered, a section per task output (counts and
examples), and the label-certificate agreement histogram when instances carry certificates.

Everything is computed from the kept samples (the card may be written while the exporters run), counting
what the exports contain: instances with area 0, and refs or relations that point at them, are left out
there, so they are counted as dropped here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from synthloop.tools.export.coco import category_ids, exported_instances
from synthloop.tools.export.semantic import BACKGROUND, IGNORE, IGNORE_BELOW_AGREEMENT, sample_semantic_map
from synthloop.tools.types import Relation, Sample, Task, TaskSpec

EXAMPLES = 3
HISTOGRAM_BINS = 10


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _visible(sample: Sample) -> dict[int, str]:
    """Index → class of the instances the exports contain."""
    return {k: inst.category for k, inst in exported_instances(sample)}


def _relations(sample: Sample) -> list[Relation]:
    return list(sample.annotation.relations) if sample.annotation is not None else []


# ------------------------------------------------------------------------------------------- per task


def _captions(samples: list[Sample]) -> tuple[str, str]:
    captioned = [s for s in samples if s.annotation is not None and s.annotation.captions]
    n_captions = sum(len(s.annotation.captions) for s in captioned)  # type: ignore[union-attr]
    words = [len(c.split()) for s in captioned for c in s.annotation.captions]  # type: ignore[union-attr]
    missing = len(samples) - len(captioned)
    delivered = f"{len(captioned)}/{len(samples)} images captioned, {n_captions} captions"
    if missing:
        delivered += f"; **{missing} images without a caption**"
    md = ["## Captions\n", f"{delivered}.", f"Words per caption: mean {np.mean(words):.1f}.\n" if words else ""]
    md += [f"- `{s.id}`: {s.annotation.captions[0]}" for s in captioned[:EXAMPLES]]  # type: ignore[union-attr]
    return delivered, "\n".join(md)


def _refs(samples: list[Sample]) -> tuple[str, str]:
    n_objects = referred = sentences = dropped = 0
    examples = []
    for sample in samples:
        visible = _visible(sample)
        n_objects += len(visible)
        refs = sample.annotation.referring if sample.annotation is not None else []
        kept = [r for r in refs if r.instance in visible]
        dropped += len(refs) - len(kept)
        referred += len({r.instance for r in kept})
        sentences += sum(len(r.sentences) for r in kept)
        examples += [f"- `{sample.id}` {visible[r.instance]}: \"{r.sentences[0]}\"" for r in kept]
    delivered = f"{referred}/{n_objects} objects referred to, {sentences} sentences"
    if n_objects and not referred:
        delivered += "; **none delivered**"
    md = ["## Referring expressions\n", f"{delivered}."]
    if dropped:
        md.append(f"Left out: {dropped} referring expressions naming objects with no visible pixels.")
    return delivered, "\n".join([*md, "", *examples[:EXAMPLES]])


def _scene_graph(samples: list[Sample]) -> tuple[str, str]:
    predicates: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    with_relations = dropped = 0
    examples = []
    for sample in samples:
        visible = _visible(sample)
        kept = [r for r in _relations(sample) if r.subject in visible and r.object in visible]
        dropped += len(_relations(sample)) - len(kept)
        with_relations += bool(kept)
        predicates.update(r.predicate for r in kept)
        sources.update(r.source for r in kept)
        examples += [f"- `{sample.id}`: {visible[r.subject]} *{r.predicate}* {visible[r.object]}" for r in kept[:1]]
    total = sum(predicates.values())
    delivered = f"{total} relations in {with_relations}/{len(samples)} images"
    md = ["## Scene graph\n", f"{delivered}; by source: " + (", ".join(f"{k} {v}" for k, v in sorted(sources.items()))
                                                           or "-") + "."]
    if dropped:
        md.append(f"Left out: {dropped} relations joining objects with no visible pixels.")
    if predicates:
        rows = [[p, c, _share(c, total)] for p, c in sorted(predicates.items(), key=lambda kv: (-kv[1], kv[0]))]
        md.append("\n" + _table(["predicate", "relations", "share"], rows))
    return delivered, "\n".join([*md, *examples[:EXAMPLES]])


def _semantic(spec: TaskSpec, samples: list[Sample]) -> tuple[str, str]:
    class_ids = category_ids(spec)
    pixels: Counter[int] = Counter()
    for sample in samples:
        values, counts = np.unique(sample_semantic_map(sample, class_ids), return_counts=True)
        pixels.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
    total = sum(pixels.values())
    delivered = f"{len(samples)} class maps, {_share(pixels[IGNORE], total)} of pixels ignore"
    names = {BACKGROUND: "background", **{cid: name for name, cid in class_ids.items()}, IGNORE: "ignore (255)"}
    rows = [[value, names[value], _share(pixels[value], total)] for value in sorted(names)]
    md = [
        "## Semantic segmentation\n",
        f"{delivered}. `semantic/{{split}}/{{id}}.png`: pixel = COCO category id; ignore marks pixels claimed by "
        f"masks of different classes, masks whose certificate agreement is below {IGNORE_BELOW_AGREEMENT}, and "
        "the boxes of objects without a mask.\n",
        _table(["value", "class", "pixels"], rows),
    ]
    return delivered, "\n".join(md)


def _certificates(samples: list[Sample]) -> str:
    certified = [inst.certificate for s in samples for _, inst in exported_instances(s) if inst.certificate]
    n_instances = sum(len(exported_instances(s)) for s in samples)
    if not certified:
        return ""
    agreement = np.array([c.agreement for c in certified])
    # Bin k holds [k/10, (k+1)/10), the last one 1.0 too; the small epsilon keeps 0.3 out of [0.2, 0.3).
    bins = np.minimum((agreement * HISTOGRAM_BINS + 1e-9).astype(int), HISTOGRAM_BINS - 1)
    counts = np.bincount(bins, minlength=HISTOGRAM_BINS)
    peak = max(int(counts.max()), 1)
    rows = [
        [f"[{k / HISTOGRAM_BINS:.1f}, {(k + 1) / HISTOGRAM_BINS:.1f}{']' if k == HISTOGRAM_BINS - 1 else ')'}",
         int(c), "█" * round(20 * int(c) / peak)]
        for k, c in enumerate(counts)
    ]  # fmt: skip
    sources = Counter(name for c in certified for name in c.sources)
    return "\n".join([
        "## Label certificates\n",
        f"{len(certified)}/{n_instances} objects carry a certificate (the `certificate` key of the COCO "
        f"annotation); agreement mean {agreement.mean():.3f}, min {agreement.min():.3f}; "
        f"{int((agreement < IGNORE_BELOW_AGREEMENT).sum())} below {IGNORE_BELOW_AGREEMENT}.",
        "Sources seen: " + ", ".join(f"{k} ({v})" for k, v in sorted(sources.items())) + ".\n",
        _table(["agreement", "objects", "bar"], rows),
    ])  # fmt: skip


# ------------------------------------------------------------------------------------------- the card part


def _boxes(samples: list[Sample]) -> str:
    n = sum(len(exported_instances(s)) for s in samples)
    return f"{n} boxes in {len(samples)} images"


def _masks(samples: list[Sample]) -> str:
    instances = [inst for s in samples for _, inst in exported_instances(s)]
    masked = sum(inst.segmentation is not None for inst in instances)
    text = f"{masked}/{len(instances)} objects with a mask"
    return text + (f"; {len(instances) - masked} box only" if masked < len(instances) else "")


OUTPUTS: dict[Task, str] = {
    Task.detection: "`annotations/instances_{split}.json` (boxes)",
    Task.instance_segmentation: "`annotations/instances_{split}.json` (RLE masks)",
    Task.semantic_segmentation: "`semantic/{split}/{id}.png`, `semantic/classes.json`",
    Task.captioning: "`annotations/captions_{split}.json`",
    Task.referring_expressions: "`annotations/refs_{split}.json`",
    Task.scene_graph: "`annotations/scene_graphs_{split}.json`",
}


def task_sections(spec: TaskSpec, samples: list[Sample]) -> str:
    """Markdown: the 'What each task delivered' table, one section per task output, the certificate
    histogram (when any instance has a certificate)."""
    sections: dict[Task, Callable[[], tuple[str, str]]] = {
        Task.semantic_segmentation: lambda: _semantic(spec, samples),
        Task.captioning: lambda: _captions(samples),
        Task.referring_expressions: lambda: _refs(samples),
        Task.scene_graph: lambda: _scene_graph(samples),
    }
    plain = {Task.detection: lambda: _boxes(samples), Task.instance_segmentation: lambda: _masks(samples)}
    rows, parts = [], []
    for task in spec.tasks:
        if task in sections:
            delivered, section = sections[task]()
            parts.append(section)
        else:
            delivered = plain[task]()
        rows.append([task.value, OUTPUTS[task], delivered])
    md = ["## What each task delivered\n", _table(["task", "output", "delivered"], rows), *parts]
    certificates = _certificates(samples)
    if certificates:
        md.append(certificates)
    return "\n\n".join(part.strip("\n") for part in md)
