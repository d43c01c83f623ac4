"""The run's record files (spec, manifest, rejections) and `export_all`, which writes a finished dataset.

DIR/spec.json          the TaskSpec actually run (indented JSON)
DIR/manifest.jsonl     one kept sample per line, sorted by id: exactly `Sample.model_dump(mode="json")`,
                       so every line reads back with `Sample.model_validate` (provenance lives in the
                       Sample: layout, prompt, seed, backend ids, verdicts, image hash, rating)
DIR/rejected.jsonl     one rejected attempt per line, sorted by (index, attempt, id) when rows have them

`export_all` streams: it reads the samples once, in chunks of `CHUNK`, and hands each chunk to every
exporter, so its memory does not depend on how many samples the dataset holds. It is one `session.ExportSession`
opened, fed and closed at once; the loop keeps a session open and feeds it each sample as it is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from synthloop.tools.export.base import Exporter
from synthloop.tools.export.streaming import DuplicateKeyError, SortedSpool, write_lines
from synthloop.tools.io import atomic_write_text
from synthloop.tools.types import ExportFormat, Sample, TaskSpec

CHUNK = 64  # samples in memory at once during an export


def write_spec(out_dir: Path, spec: TaskSpec) -> Path:
    """Write `spec.json`; returns its path."""
    path = Path(out_dir) / "spec.json"
    atomic_write_text(path, spec.model_dump_json(indent=2) + "\n")
    return path


class ManifestExporter:
    """Writes manifest.jsonl (an exporter that needs no spec): the samples' lines are spooled by id and
    written in id order at close, each rated sample's line with its `rating` from `ratings` (sample id →
    rating, set before close: a ranking rates the final set)."""

    id = "manifest"

    def setup(self, out_dir: Path, spec: TaskSpec | None = None) -> None:
        """Start a new manifest for `out_dir`."""
        self._out_dir = Path(out_dir)
        self._lines = SortedSpool(self._out_dir)
        self.ratings: Mapping[str, float] = {}

    def export_sample(self, sample: Sample) -> None:
        """Spool one sample's line."""
        try:
            self._lines.add(sample.id, json.dumps(sample.model_dump(mode="json"), ensure_ascii=False))
        except DuplicateKeyError:
            raise ValueError(f"sample {sample.id} exported twice") from None

    def close(self) -> None:
        """Write manifest.jsonl."""
        write_lines(self._out_dir / "manifest.jsonl", (self._rated(key, line) for key, line in self._lines.items()))
        self._lines.close()

    def _rated(self, sample_id: str, line: str) -> str:
        """The line with the sample's rating: the bytes of dumping the sample with `rating` set."""
        if sample_id not in self.ratings:
            return line
        data = json.loads(line)
        data["rating"] = self.ratings[sample_id]
        return json.dumps(data, ensure_ascii=False)


def write_manifest(out_dir: Path, samples: Iterable[Sample]) -> Path:
    """Write `manifest.jsonl`, one sample per line sorted by id; returns its path."""
    manifest = ManifestExporter()
    manifest.setup(Path(out_dir))
    for sample in samples:
        manifest.export_sample(sample)
    manifest.close()
    return Path(out_dir) / "manifest.jsonl"


def read_manifest(out_dir: Path) -> list[Sample]:
    """The samples of `manifest.jsonl`, in file order."""
    return list(iter_jsonl(Path(out_dir) / "manifest.jsonl", Sample.model_validate_json))


def iter_jsonl(path: Path, parse: Any = json.loads) -> Iterator[Any]:
    """The non-blank lines of a JSON-lines file, parsed one at a time (`parse`: json.loads by default)."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield parse(line)


def row_dict(row: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    return row.model_dump(mode="json") if isinstance(row, BaseModel) else dict(row)


def _sortable_int(value: Any) -> str:
    """An int as text that sorts like the number (non-ints as -1), for (index, attempt) keys."""
    number = value if isinstance(value, int) and not isinstance(value, bool) else -1
    return f"{min(max(number, -(2**63)), 2**63 - 1) + 2**63:020d}"


class RejectedWriter:
    """Writes rejected.jsonl row by row, sorted at close by (index, attempt, id), ties in order of arrival."""

    def __init__(self, out_dir: Path) -> None:
        self._out_dir = Path(out_dir)
        self._rows = SortedSpool(self._out_dir)

    def add(self, row: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
        """Spool one row (a dict or a pydantic model); returns it as a dict."""
        data = row_dict(row)
        key = _sortable_int(data.get("index")) + _sortable_int(data.get("attempt")) + str(data.get("id", ""))
        self._rows.add(f"{key}\0{len(self._rows):012d}", json.dumps(data, ensure_ascii=False))
        return data

    def close(self) -> Path:
        """Write rejected.jsonl; returns its path."""
        path = self._out_dir / "rejected.jsonl"
        write_lines(path, (line for _, line in self._rows.items()))
        self._rows.close()
        return path


def write_rejected(out_dir: Path, rejected_rows: Iterable[Mapping[str, Any] | BaseModel]) -> Path:
    """Write `rejected.jsonl` (dicts or pydantic models, sorted by index, attempt, id); returns its path."""
    writer = RejectedWriter(out_dir)
    for row in rejected_rows:
        writer.add(row)
    return writer.close()


def iter_rejected_file(out_dir: Path) -> Iterator[dict[str, Any]]:
    """The rows of `rejected.jsonl`, one at a time (none when the file does not exist)."""
    path = Path(out_dir) / "rejected.jsonl"
    if path.exists():
        yield from iter_jsonl(path)


def read_rejected(out_dir: Path) -> list[dict[str, Any]]:
    """The rows of `rejected.jsonl` ([] when the file does not exist)."""
    return list(iter_rejected_file(out_dir))


def make_exporter(name: ExportFormat | str) -> Exporter:
    """A fresh exporter, by format or task-output name (through the exporter registry); heavy dependencies
    load only when that exporter is used."""
    from synthloop.tools.export.registry import EXPORTERS

    return EXPORTERS.build(name.value if isinstance(name, ExportFormat) else name)


def export_all(
    out_dir: Path,
    spec: TaskSpec,
    samples: Iterable[Sample],
    formats: Iterable[ExportFormat | str] | None = None,
    *,
    rejected_rows: Iterable[Mapping[str, Any] | BaseModel] | None = None,
    extra: Mapping[str, Any] | None = None,
    card: bool = True,
    executor: Executor | None = None,
    sections: Iterable[str] = (),
) -> dict[str, float]:
    """Write the finished dataset: spec.json, every format and task output, manifest.jsonl, rejected.jsonl,
    card.md.

    1. `formats` defaults to spec.formats; COCO is always written (validation and the card read it); the task
       outputs of spec.tasks (captions, refs, scene graphs, semantic maps) are written too
       (`registry.exporters_for`).
    2. `samples` is read once, in chunks of `CHUNK`; every exporter (the manifest and the card included) gets
       each chunk (setup → export_sample → close). Given sorted by id (as `agent.store.iter_kept` does) the
       spools append as they go; any other order gives the same files. Memory stays flat either way.
    3. `rejected.jsonl` is written only when `rejected_rows` is given (the loop may own that file); the card
       counts the rows given, or else those of an existing rejected.jsonl.
    4. With an `executor`, the exporters work on each chunk, and close, concurrently (they share no files).
    5. The card, written last, gets `extra` plus the timings of the exporters and records, and `sections`
       (markdown other steps wrote, e.g. the reference layout report) before its sample grid.
    Returns the busy seconds of each step, e.g. {"export_coco_s": 0.12, ..., "records_s": 0.1, "card_s": 0.3}.
    A thin wrapper over `session.ExportSession` (open, add every sample, close), for a set already finished.
    """
    from synthloop.tools.export.session import ExportSession, export_in_chunks

    session = ExportSession(out_dir, spec, formats, card=card, executor=executor)
    export_in_chunks(session, samples, CHUNK)
    return session.close(rejected_rows=rejected_rows, extra=extra, sections=sections)
