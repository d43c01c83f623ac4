"""Export memory does not grow with the number of samples.

The export node's path is measured with tracemalloc (deterministic: Python and numpy allocations, not the
process RSS or time): kept records and rejected rows on disk as a run leaves them, streamed by
`store.iter_kept` / `store.iter_rejected` into `export_all` with every format and task output and the card.
Every chunk of samples weighs the same (eight rich test samples, cloned under new ids, in chunks of eight),
so the peak for many chunks must stay within a small bound of the peak for a few. The export that held every
sample in memory grew by ~18 KB per sample here (2.6 MB from 16 to 160 samples).
"""

from __future__ import annotations

import gc
import shutil
import sys
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from export_testdata import ALL_TASKS, make_samples, make_spec

from synthloop.agent.store import iter_kept, iter_rejected, write_kept
from synthloop.tools.export import records
from synthloop.tools.export.records import export_all
from synthloop.tools.io import atomic_write_json

CHUNK = 8
SMALL, LARGE = 2 * CHUNK, 20 * CHUNK
# Allowed growth of the peak from SMALL to LARGE samples. Not zero, because of bounded interpreter caches that
# tracemalloc sees filling: CPython's method cache keeps up to 4096 recently looked-up attribute names alive
# (Pillow builds its codec names per call), ≤ 4096 × 64 B; pydantic's JSON string cache keeps each new id.
BOUND_BYTES = 320 * 1024
TABLE_RESIZE_BYTES = 512 * 1024


@contextmanager
def interned_string_headroom() -> Iterator[None]:
    """Room in CPython's table of interned strings for the exports to come.

    pathlib (Python 3.11) interns every path part, so each file name an export touches is inserted there; when
    the table is full it is reallocated whole (~2 MB), and that one allocation would land in the peak of
    whichever export happens to fill it. Interning throwaway strings (kept alive) until tracemalloc sees the
    table reallocated leaves it with at least as many free slots as it holds entries.
    """
    filler: list[str | None] = [None] * 2_000_000  # allocated before tracing: only the table's growth shows
    tracemalloc.start()
    try:
        for k in range(len(filler)):
            before = tracemalloc.get_traced_memory()[0]
            filler[k] = sys.intern(f"headroom {k}")
            if tracemalloc.get_traced_memory()[0] - before > TABLE_RESIZE_BYTES:
                break
        else:
            pytest.fail("the interned-string table never grew")
    finally:
        tracemalloc.stop()
    yield
    del filler


def _prepare_run(out: Path, n: int) -> None:
    """A finished run's records: `n` kept samples (the eight rich test samples over and over, under new ids),
    and a rejected attempt for every fifth."""
    templates = make_samples(out / "templates", CHUNK, width=48, height=32, rich=True)
    work = out / ".work"
    for index in range(n):
        template = templates[index % CHUNK]
        sample_id = f"c{index:05d}"
        sample = template.model_copy(update={"id": sample_id, "index": index,
                                             "image_path": f"images/{template.split}/{sample_id}.png"})
        (out / sample.image_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "templates" / template.image_path, out / sample.image_path)
        write_kept(work, sample)
        if index % 5 == 0:
            atomic_write_json(work / "rejected" / f"{sample_id}-a0.json", {
                "id": sample_id, "index": index, "attempt": 0, "reasons": [f"rules: box {index} too small"],
            })
    shutil.rmtree(out / "templates")


def _export_peak(out: Path) -> int:
    """Peak traced bytes of exporting the run at `out` (its records prepared beforehand)."""
    spec = make_spec(formats=("coco", "yolo", "voc", "hf"), tasks=ALL_TASKS, width=48, height=32)
    work = out / ".work"
    gc.collect()
    tracemalloc.start()
    try:
        export_all(out, spec, iter_kept(work), rejected_rows=iter_rejected(work), extra={"stop_reason": "done"})
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_export_memory_is_flat_in_the_number_of_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "CHUNK", CHUNK)  # small chunks: what grows per sample is not hidden by one chunk
    for name, n in (("small", SMALL), ("large", LARGE)):
        _prepare_run(tmp_path / name, n)
    _export_peak(tmp_path / "small")  # first use: imports, compiled patterns, fonts
    with interned_string_headroom():
        peak_small = _export_peak(tmp_path / "small")
        peak_large = _export_peak(tmp_path / "large")
    assert (tmp_path / "large" / "manifest.jsonl").read_text().count("\n") == LARGE
    assert (tmp_path / "large" / "rejected.jsonl").read_text().count("\n") == LARGE // 5
    assert peak_large - peak_small < BOUND_BYTES, (peak_small, peak_large)
