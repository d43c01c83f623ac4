"""Per-split JSON files whose image and annotation ids are those of the COCO instances file: the instances
file itself and the task outputs (captions, refs, scene graphs).

Each sample is reduced on arrival to a small entry (its COCO image entry without an id, the indices of its
exported instances, the exporter's payload: strings, numbers, RLE counts, never pixels) and spooled to disk
under its id. `close` reads the entries back once in id order, numbers them per split as the COCO file
does, streams each file's arrays to temporary files and joins every file atomically: memory stays flat in
the number of samples, and the bytes are those of building each file whole.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from synthloop.tools.export.base import BaseExporter
from synthloop.tools.export.coco_records import ImageIds, SplitNumbering, exported_instances, image_record
from synthloop.tools.export.streaming import DuplicateKeyError, JsonArray, SortedSpool, write_json_document
from synthloop.tools.types import Sample, TaskSpec


@dataclass(frozen=True)
class QueuedSample:
    """What a per-split file keeps of one sample until close: its COCO image entry (without an id), the
    indices of its exported instances, and the exporter's own payload (a JSON value)."""

    sample_id: str
    image: dict[str, Any]
    exported: list[int]
    payload: Any


class SplitFileExporter(BaseExporter):
    """An exporter that writes one JSON file per split of the spec (empty splits included).

    Subclasses give
    - `arrays`: the keys of the file's arrays that grow with the samples (("",): the file is one list);
    - `payload(sample)`: what the file needs of one sample, as a JSON value;
    - `elements(split, entry, ids, counters)`: the (array key, element) pairs one sample adds, in file order;
      `counters` is the split's own running numbers (e.g. sentences so far);
    - `document(split, arrays)`: the file's JSON value with the arrays in place (default: the one list).
    """

    file_pattern = "annotations/{split}.json"
    arrays: ClassVar[tuple[str, ...]] = ("",)

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Start a new export into `out_dir`."""
        super().setup(out_dir, spec)
        self._folder = self.path(spec.splits.names()[0]).parent
        self._folder.mkdir(parents=True, exist_ok=True)
        self._spool = SortedSpool(self._folder)

    def path(self, split: str) -> Path:
        """The file of one split."""
        return self.out_dir / self.file_pattern.format(split=split)

    def payload(self, sample: Sample) -> Any:
        """What the file needs of one sample (override)."""
        raise NotImplementedError

    def elements(
        self, split: str, entry: QueuedSample, ids: ImageIds, counters: Counter[str]
    ) -> Iterator[tuple[str, Any]]:
        """The (array key, element) pairs one sample adds (override)."""
        raise NotImplementedError

    def document(self, split: str, arrays: dict[str, JsonArray]) -> Any:
        """The file's JSON value with its arrays in place (default: the file is the one list)."""
        return arrays[""]

    def export_sample(self, sample: Sample) -> None:
        """Spool what the files need of one sample; they are written on close."""
        self.check_sample(sample)
        image = image_record(sample, 0)
        del image["id"]
        exported = [k for k, _ in exported_instances(sample)]
        entry = [sample.split, image, exported, self.payload(sample)]
        try:
            self._spool.add(sample.id, json.dumps(entry, ensure_ascii=False))
        except DuplicateKeyError:
            raise ValueError(f"sample {sample.id} exported twice") from None

    def close(self) -> None:
        """Write one file per split from the spooled entries, in sample-id order."""
        splits = self.spec.splits.names()
        numbering = {split: SplitNumbering() for split in splits}
        counters: dict[str, Counter[str]] = {split: Counter() for split in splits}
        arrays = {split: {key: JsonArray(self._folder) for key in self.arrays} for split in splits}
        try:
            for sample_id, text in self._spool.items():
                split, image, exported, payload = json.loads(text)
                entry = QueuedSample(sample_id, image, exported, payload)
                ids = numbering[split].next(exported)
                for key, element in self.elements(split, entry, ids, counters[split]):
                    arrays[split][key].append(element)
            for split in splits:
                write_json_document(self.path(split), self.document(split, arrays[split]))
        finally:
            for by_key in arrays.values():
                for array in by_key.values():
                    array.close()
            self._spool.close()
            self.finish()
