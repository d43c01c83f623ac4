"""Referring expressions export, RefCOCO style.

On-disk layout (under the output directory DIR), written when `referring_expressions` is in spec.tasks:

    DIR/annotations/refs_{split}.json   one file per split of the spec, empty splits included

The file is a JSON list of refs, the shape of RefCOCO's `refs(unc).p` (so code that reads that list reads
this one; the images, annotations and categories are those of `instances_{split}.json`). One ref per
`ReferringExpression` of a sample:
    {ref_id, ann_id (the instance's annotation id in instances_{split}.json), image_id, category_id, split,
     file_name, sent_ids, sentences: [{sent_id, sent, raw, tokens}]}
`raw` is the sentence as generated; `tokens` its lower-cased words; `sent` the tokens joined by spaces (as in
RefCOCO). ref_id and sent_id count from 1 within the file. A ref to an instance that the COCO file leaves out
(area 0: nothing visible) is not written; the card counts them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synthloop.tools.export.coco_records import ImageIds, category_ids
from synthloop.tools.export.split_file import QueuedSample, SplitFileExporter
from synthloop.tools.types import Sample, TaskSpec

_WORD = re.compile(r"\w+(?:'\w+)*")


def tokenize(sentence: str) -> list[str]:
    """Lower-cased words of a sentence, punctuation dropped ("The red cup, left." → [the, red, cup, left])."""
    return _WORD.findall(sentence.lower())


def sample_refs(sample: Sample) -> list[tuple[int, str, list[str]]]:
    """(instance index, class, sentences) of each referring expression of a sample; an index outside the
    instance list is refused."""
    if sample.annotation is None:
        return []
    instances = sample.annotation.instances
    refs = []
    for ref in sample.annotation.referring:
        if ref.instance >= len(instances):
            raise ValueError(
                f"sample {sample.id}: referring expression for instance {ref.instance}, "
                f"but the sample has {len(instances)} instances"
            )
        refs.append((ref.instance, instances[ref.instance].category, list(ref.sentences)))
    return refs


def ref_rows(
    split: str, class_ids: dict[str, int], entry: QueuedSample, ids: ImageIds, first_ref: int, first_sent: int
) -> list[dict[str, Any]]:
    """The refs of one sample, numbered on from `first_ref` and `first_sent`; refs to instances the COCO file
    leaves out are not written."""
    refs: list[dict[str, Any]] = []
    sent_id = first_sent - 1
    for index, category, sentences in entry.payload:
        if index not in ids.ann_ids:
            continue
        sentence_rows = []
        for raw in sentences:
            sent_id += 1
            tokens = tokenize(raw)
            sentence_rows.append({"sent_id": sent_id, "sent": " ".join(tokens), "raw": raw, "tokens": tokens})
        refs.append(
            {
                "ref_id": first_ref + len(refs),
                "ann_id": ids.ann_ids[index],
                "image_id": ids.image_id,
                "category_id": class_ids[category],
                "split": split,
                "file_name": entry.image["file_name"],
                "sent_ids": [row["sent_id"] for row in sentence_rows],
                "sentences": sentence_rows,
            }
        )
    return refs


class RefsExporter(SplitFileExporter):
    """Writes `annotations/refs_{split}.json` (see the module docstring)."""

    id = "refs"
    file_pattern = "annotations/refs_{split}.json"

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Start a new export into `out_dir`."""
        super().setup(out_dir, spec)
        self._class_ids = category_ids(spec)

    def payload(self, sample: Sample) -> list[tuple[int, str, list[str]]]:
        """The sample's referring expressions."""
        return sample_refs(sample)

    def elements(
        self, split: str, entry: QueuedSample, ids: ImageIds, counters: Counter[str]
    ) -> Iterator[tuple[str, Any]]:
        """The sample's refs."""
        rows = ref_rows(split, self._class_ids, entry, ids, counters["refs"] + 1, counters["sentences"] + 1)
        counters["refs"] += len(rows)
        counters["sentences"] += sum(len(row["sentences"]) for row in rows)
        return (("", row) for row in rows)
