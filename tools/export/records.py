"""The run's record files (spec, manifest, rejections) and `export_all`, which writes a finished dataset.

DIR/spec.json          the TaskSpec actually run (indented JSON)
DIR/manifest.jsonl     one kept sample per line, sorted by id: exactly `Sample.model_dump(mode="json")`,
                       so every line reads back with `Sample.model_validate` (provenance lives in the
                       Sample: layout, prompt, seed, backend ids, verdicts, image hash, rating)
DIR/rejected.jsonl     one rejected attempt per line, sorted by (index, attempt, id) when rows have them
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from synthloop.tools.export.base import Exporter
from synthloop.tools.io import atomic_write_jsonl, atomic_write_text
from synthloop.tools.types import ExportFormat, Sample, TaskSpec


def write_spec(out_dir: Path, spec: TaskSpec) -> Path:
    """Write `spec.json`; returns its path."""
    path = Path(out_dir) / "spec.json"
    atomic_write_text(path, spec.model_dump_json(indent=2) + "\n")
    return path


def write_manifest(out_dir: Path, samples: Iterable[Sample]) -> Path:
    """Write `manifest.jsonl`, one sample per line sorted by id; returns its path."""
    path = Path(out_dir) / "manifest.jsonl"
    atomic_write_jsonl(path, (s.model_dump(mode="json") for s in sorted(samples, key=lambda s: s.id)))
    return path


def read_manifest(out_dir: Path) -> list[Sample]:
    """The samples of `manifest.jsonl`, in file order."""
    path = Path(out_dir) / "manifest.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Sample.model_validate_json(line) for line in lines if line.strip()]


def _row_dict(row: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    return row.model_dump(mode="json") if isinstance(row, BaseModel) else dict(row)


def _row_key(row: dict[str, Any]) -> tuple[int, int, str]:
    index, attempt = row.get("index"), row.get("attempt")
    return (
        index if isinstance(index, int) else -1,
        attempt if isinstance(attempt, int) else -1,
        str(row.get("id", "")),
    )


def write_rejected(out_dir: Path, rejected_rows: Iterable[Mapping[str, Any] | BaseModel]) -> Path:
    """Write `rejected.jsonl` (dicts or pydantic models, sorted by index, attempt, id); returns its path."""
    path = Path(out_dir) / "rejected.jsonl"
    rows = sorted((_row_dict(r) for r in rejected_rows), key=_row_key)
    atomic_write_jsonl(path, rows)
    return path


def read_rejected(out_dir: Path) -> list[dict[str, Any]]:
    """The rows of `rejected.jsonl` ([] when the file does not exist)."""
    path = Path(out_dir) / "rejected.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def make_exporter(name: ExportFormat | str) -> Exporter:
    """A fresh exporter, by format or task-output name (through the exporter registry); heavy dependencies
    load only when that exporter is used."""
    from synthloop.tools.export.registry import EXPORTERS

    return EXPORTERS.build(name.value if isinstance(name, ExportFormat) else name)


def _export_one(out_dir: Path, spec: TaskSpec, name: str, ordered: list[Sample]) -> float:
    start = time.perf_counter()
    exporter = make_exporter(name)
    exporter.setup(out_dir, spec)
    for sample in ordered:
        exporter.export_sample(sample)
    exporter.close()
    return time.perf_counter() - start


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
) -> dict[str, float]:
    """Write the finished dataset: spec.json, every format and task output, manifest.jsonl, rejected.jsonl,
    card.md.

    1. `formats` defaults to spec.formats; COCO is always written (validation and the card read it); the task
       outputs of spec.tasks (captions, refs, scene graphs, semantic maps) are written too
       (`registry.exporters_for`).
    2. Each exporter gets the samples sorted by id (setup → export_sample → close).
    3. `rejected.jsonl` is written only when `rejected_rows` is given (the loop may own that file).
    4. The card gets `extra` plus this function's own timings.
    5. With an `executor`, the exporters and the card run concurrently (they share no files); the card then
       lists the run's figures from `extra` but not the export timings, which are not known yet.
    Returns the seconds each step took, e.g. {"export_coco_s": 0.12, ..., "card_s": 0.3}.
    """
    from synthloop.tools.export.registry import exporters_for

    out_dir = Path(out_dir)
    ordered = sorted(samples, key=lambda s: s.id)
    chosen = exporters_for(spec, formats)
    timings: dict[str, float] = {}

    write_spec(out_dir, spec)
    pending: dict[str, Future[float]] = {}
    for name in chosen:
        if executor is None:
            timings[f"export_{name}_s"] = _export_one(out_dir, spec, name, ordered)
        else:
            pending[f"export_{name}_s"] = executor.submit(_export_one, out_dir, spec, name, ordered)
    start = time.perf_counter()
    write_manifest(out_dir, ordered)
    rows = [_row_dict(r) for r in rejected_rows] if rejected_rows is not None else None
    if rows is not None:
        write_rejected(out_dir, rows)
    timings["records_s"] = time.perf_counter() - start
    if card:
        from synthloop.tools.export.card import write_card

        def card_task() -> float:
            begin = time.perf_counter()
            card_rows = rows if rows is not None else read_rejected(out_dir)
            write_card(out_dir, spec, ordered, card_rows, {**(extra or {}), **timings})
            return time.perf_counter() - begin

        if executor is None:
            timings["card_s"] = card_task()
        else:
            pending["card_s"] = executor.submit(card_task)
    for name, future in pending.items():
        timings[name] = future.result()
    return timings
