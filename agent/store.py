"""Per-sample records on disk: the run's source of truth for kept and rejected samples.

Layout inside the output directory (hidden work area, removed from nothing: resume and export read it):
    .work/kept/{id}.json              one kept Sample (written atomically; rewriting it is idempotent)
    .work/rejected/{id}-a{k}.json     one rejected attempt with its verdicts
    rejected/{id}-a{k}.png            the rejected attempt's image, kept for inspection
A crash between two writes leaves either the old or the new file, and re-running the batch rewrites the
same content, so a resumed run neither loses nor duplicates a sample.

The dataset itself is exported while the loop runs (`export_session`): each kept sample goes to the run's
export session as it is kept, and the export node closes it. The session lives in memory; a process that
opens it (a resumed run) first feeds it every sample the records hold, so it sees what an uninterrupted run's
session saw. Per-sample files a killed process wrote for a sample that is not kept in the end are removed when
the session closes (each exporter removes the files it did not write in this session).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthloop.tools.export.session import ExportSession
from synthloop.tools.export.streaming import SortedSpool
from synthloop.tools.io import atomic_write_json
from synthloop.tools.types import Sample, TaskSpec

if TYPE_CHECKING:
    from synthloop.agent.deps import Deps


def kept_path(work_dir: Path, sample_id: str) -> Path:
    """Record path of a kept sample."""
    return work_dir / "kept" / f"{sample_id}.json"


def write_kept(work_dir: Path, sample: Sample) -> bool:
    """Record a kept sample; True when it had no record yet."""
    path = kept_path(work_dir, sample.id)
    new = not path.exists()
    atomic_write_json(path, sample.model_dump(mode="json"))
    return new


def rejected_row(sample: Sample, image_path: str) -> dict[str, Any]:
    """The rejected.jsonl row of one rejected attempt: what was tried and every reason it failed."""
    reasons = [f"{v.judge}: {r}" for v in sample.verdicts for r in v.reasons]
    return {
        "id": sample.id,
        "index": sample.index,
        "attempt": sample.attempt,
        "seed": sample.seed,
        "image_path": image_path,
        "reasons": reasons,
        "verdicts": [v.model_dump(mode="json") for v in sample.verdicts],
        "layout": sample.layout.model_dump(mode="json"),
        "backend": sample.backend,
    }


def record_rejection(work_dir: Path, out_dir: Path, sample: Sample) -> dict[str, Any]:
    """Move the attempt's image to rejected/ and record why it was rejected; returns the row."""
    name = f"{sample.id}-a{sample.attempt}"
    image_rel = f"rejected/{name}.png"
    source = out_dir / sample.image_path
    if source.exists():
        (out_dir / "rejected").mkdir(parents=True, exist_ok=True)
        os.replace(source, out_dir / image_rel)
    row = rejected_row(sample, image_rel)
    atomic_write_json(work_dir / "rejected" / f"{name}.json", row)
    return row


def observe_kept(deps: Deps, sample: Sample) -> None:
    """Tell the stateful judges (class balance, the duplicate index) about a kept sample."""
    for judge in deps.judges:
        if judge.capabilities.stateful:
            judge.observe(sample)


def export_session(deps: Deps, spec: TaskSpec) -> ExportSession:
    """The run's export session (`deps.export_session`), opened on first use in this process: it is fed, in the
    background on `deps.executor`, every sample already recorded as kept (on resume, exactly those the
    checkpoint counts: `restore_from_checkpoint` removed the others). Samples kept later are added with
    `add_kept`; the export node closes it."""
    if deps.export_session is None:
        session = ExportSession(deps.out_dir, spec, executor=deps.executor, background=deps.executor)
        try:
            for sample in iter_kept(deps.work_dir):
                session.submit(sample)
        except BaseException:
            session.discard()
            raise
        deps.export_session = session
    return deps.export_session


def add_kept(deps: Deps, session: ExportSession, sample: Sample) -> None:
    """Keep a sample: its record, the stateful judges, and (in the background) the export session. A sample
    that already had a record (a step run again in the same process, after a failure) is in the session
    already: it was fed when the session opened."""
    new = write_kept(deps.work_dir, sample)
    observe_kept(deps, sample)
    if new:
        session.submit(sample)


def drop_export_session(deps: Deps) -> None:
    """End the run's export session without writing more (a failed step, or the end of the process): the
    next use opens it again from the records."""
    session, deps.export_session = deps.export_session, None
    if session is not None:
        session.discard()


def restore_from_checkpoint(deps: Deps, in_flight: list[dict[str, Any]]) -> None:
    """Make the records agree with the last checkpoint, then rebuild the stateful judges from them.

    The checkpoint is saved after a node finishes, records while it runs: records of samples still in flight
    (the checkpoint's `batch`) were written by a step that did not finish, and that step runs again. They are
    removed first, so the stateful judges (class balance, duplicates) see exactly the samples the checkpoint
    counts as kept, and the re-run step decides as the uninterrupted run did. The export files such a step
    wrote are left: the export session, rebuilt from the kept records (`export_session`), writes the same bytes
    again for the samples kept again, and removes the others' when it closes.
    """
    work_dir, out_dir = deps.work_dir, deps.out_dir
    for sample in in_flight:
        sample_id, attempt = sample["id"], sample["attempt"]
        kept_path(work_dir, sample_id).unlink(missing_ok=True)  # a sample in flight was never kept before
        name = f"{sample_id}-a{attempt}"
        (work_dir / "rejected" / f"{name}.json").unlink(missing_ok=True)
        (out_dir / "rejected" / f"{name}.png").unlink(missing_ok=True)
    for sample in iter_kept(work_dir):
        observe_kept(deps, sample)


def _sorted_names(folder: Path, suffix: str) -> Iterator[str]:
    """The stems of the `*{suffix}` files in `folder`, sorted, without holding the listing in memory (a run
    may keep a million records: the names are sorted on disk, `SortedSpool`)."""
    if not folder.is_dir():
        return
    with SortedSpool() as names:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(suffix) and not entry.name.startswith("."):
                    names.add(entry.name[: -len(suffix)])
        yield from names.keys()


def kept_ids(work_dir: Path) -> Iterator[str]:
    """The ids of the kept samples, sorted."""
    return _sorted_names(work_dir / "kept", ".json")


def read_kept(work_dir: Path, sample_id: str) -> Sample:
    """One kept sample's record."""
    return Sample.model_validate_json(kept_path(work_dir, sample_id).read_text(encoding="utf-8"))


def iter_kept(work_dir: Path) -> Iterator[Sample]:
    """The kept samples sorted by id, read one at a time (memory flat in the number of samples)."""
    for sample_id in kept_ids(work_dir):
        yield read_kept(work_dir, sample_id)


def load_kept(work_dir: Path) -> list[Sample]:
    """All kept samples, sorted by id (in memory: prefer `iter_kept` for a whole run)."""
    return list(iter_kept(work_dir))


def iter_rejected(work_dir: Path) -> Iterator[dict[str, Any]]:
    """The rejected rows sorted by (index, attempt), read one at a time: the rows are spooled to disk under
    their sort key, so memory stays flat."""
    folder = work_dir / "rejected"
    if not folder.is_dir():
        return
    with SortedSpool() as rows:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(".json") and not entry.name.startswith("."):
                    row = json.loads(Path(entry.path).read_text(encoding="utf-8"))
                    key = f"{row['index']:020d}/{row['attempt']:020d}/{entry.name}"
                    rows.add(key, json.dumps(row, ensure_ascii=False))
        for _, text in rows.items():
            yield json.loads(text)


def load_rejected(work_dir: Path) -> list[dict[str, Any]]:
    """All rejected rows, sorted by (index, attempt) (in memory: prefer `iter_rejected` for a whole run)."""
    return list(iter_rejected(work_dir))
