"""Per-split JSON task outputs (captions, refs, scene graphs) that share the COCO instances file's ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthloop.tools.export.base import BaseExporter
from synthloop.tools.export.coco import ImageIds, exported_instances, image_record, split_ids
from synthloop.tools.io import atomic_write_json
from synthloop.tools.types import Sample, TaskSpec


@dataclass(frozen=True)
class QueuedSample:
    """The little a per-split file keeps of one sample until close: its COCO image entry (without an id),
    the indices of its exported instances, and the exporter's own payload."""

    sample_id: str
    image: dict[str, Any]
    exported: list[int]
    payload: Any


class SplitFileExporter(BaseExporter):
    """An exporter that writes one JSON file per split of the spec (empty splits included) whose image and
    annotation ids are those of the COCO instances file.

    Subclasses give `payload(sample)` (small: strings and indices, never pixels) and `build(split, entries)`,
    which receives (queued sample, its `ImageIds`) in COCO order and returns the file's JSON value.
    """

    file_pattern = "annotations/{split}.json"

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Start a new export into `out_dir`."""
        super().setup(out_dir, spec)
        self._queued: dict[str, dict[str, QueuedSample]] = {name: {} for name in spec.splits.names()}

    def payload(self, sample: Sample) -> Any:
        """What the file needs of one sample (override)."""
        raise NotImplementedError

    def build(self, split: str, entries: list[tuple[QueuedSample, ImageIds]]) -> Any:
        """The JSON value of one split's file (override)."""
        raise NotImplementedError

    def export_sample(self, sample: Sample) -> None:
        """Keep what the file needs of one sample; files are written on close."""
        self.check_sample(sample)
        queued = self._queued[sample.split]
        if sample.id in queued:
            raise ValueError(f"sample {sample.id} exported twice")
        image = image_record(sample, 0)
        del image["id"]
        exported = [k for k, _ in exported_instances(sample)]
        queued[sample.id] = QueuedSample(sample.id, image, exported, self.payload(sample))

    def close(self) -> None:
        """Write one file per split."""
        for split, queued in self._queued.items():
            ids = split_ids({sample_id: entry.exported for sample_id, entry in queued.items()})
            entries = [(queued[sample_id], ids[sample_id]) for sample_id in sorted(queued)]
            atomic_write_json(self.out_dir / self.file_pattern.format(split=split), self.build(split, entries))
