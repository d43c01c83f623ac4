"""An export session: the dataset written while it is being made, finished once the set is final.

`records.export_all` writes a finished set in one go; a session splits that work in three, so a loop can do
most of it while it still renders:

1. open (`ExportSession(out_dir, spec, ...)`): spec.json, and `setup` of every exporter, the manifest and the
   card;
2. `add(sample)` as each sample is kept: every exporter's `export_sample`, i.e. the files of one sample (YOLO
   labels and image links, VOC XML and JPEG, semantic maps, HF image links, edit pairs) and the small entries
   spooled to disk for what needs the whole set (COCO images and annotations, metadata rows, manifest lines,
   card counts);
3. `close(...)`: what needs the final set in id order (COCO ids and JSON arrays, HF numbering, image sets,
   manifest.jsonl with the ratings of a ranking, rejected.jsonl, removal of files no kept sample wrote, the
   card).

Samples may be added in any order (the spools sort on disk): the bytes are those of `export_all` given the same
samples in id order. A kept sample is final: it is added once and never taken back.

`submit(sample)` adds in the background instead: samples queue (at most `max_pending`, so memory stays bounded;
beyond that `submit` waits) and one job at a time on the `background` executor adds them in the order given,
each job re-queued behind whatever the executor was given meanwhile, so it never holds a thread for long.
An error of a background add is raised by the next `submit`, by `wait` or by `close`.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from synthloop.tools.export.base import Exporter
from synthloop.tools.types import ExportFormat, Sample, TaskSpec

MAX_PENDING = 64  # samples queued for a background add at most


class _Timed:
    """An exporter and the seconds spent in it (setup, samples, close)."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self.seconds = 0.0

    def run(self, method: str, *args: Any) -> None:
        start = time.perf_counter()
        getattr(self.exporter, method)(*args)
        self.seconds += time.perf_counter() - start

    def feed(self, chunk: list[Sample]) -> None:
        start = time.perf_counter()
        for sample in chunk:
            self.exporter.export_sample(sample)
        self.seconds += time.perf_counter() - start


def _each(executor: Executor | None, timed: Iterable[_Timed], call: Any) -> None:
    """`call(t)` for every timed exporter, concurrently on `executor` when given; the first error is raised."""
    if executor is None:
        for item in timed:
            call(item)
        return
    for future in [executor.submit(call, item) for item in timed]:
        future.result()


class ExportSession:
    """One export of a dataset, fed sample by sample (see the module docstring).

    `formats` defaults to spec.formats (COCO and the task outputs of spec.tasks are always written:
    `registry.exporters_for`); `card` writes card.md; `executor` runs the exporters concurrently on a chunk
    (`add_chunk`) and at close; `background` is where `submit` adds samples.
    """

    def __init__(self, out_dir: Path, spec: TaskSpec, formats: Iterable[ExportFormat | str] | None = None, *,
                 card: bool = True, executor: Executor | None = None, background: Executor | None = None,
                 max_pending: int = MAX_PENDING) -> None:
        from synthloop.tools.export.card import CardExporter
        from synthloop.tools.export.records import ManifestExporter, make_exporter, write_spec
        from synthloop.tools.export.registry import exporters_for

        self.out_dir, self.spec = Path(out_dir), spec
        self._executor, self._background, self._max_pending = executor, background, max(1, max_pending)
        chosen = exporters_for(spec, formats)
        write_spec(self.out_dir, spec)
        self._manifest = ManifestExporter()
        self._steps = {f"export_{name}_s": _Timed(make_exporter(name)) for name in chosen}
        self._steps["records_s"] = _Timed(self._manifest)
        self._card = CardExporter() if card else None
        self._card_step = _Timed(self._card) if self._card is not None else None
        self._workers = [*self._steps.values(), *([self._card_step] if self._card_step else [])]
        self._pending: deque[Sample] = deque()
        self._changed = threading.Condition()
        self._draining = False
        self._error: BaseException | None = None
        self._ended = False
        _each(executor, self._workers, lambda t: t.run("setup", self.out_dir, spec))

    def add(self, sample: Sample) -> None:
        """Export one kept sample now, in this thread (each exporter in turn)."""
        for step in self._workers:
            step.feed([sample])

    def add_chunk(self, samples: list[Sample]) -> None:
        """Export several kept samples now, the exporters working concurrently on the `executor` when given."""
        _each(self._executor, self._workers, lambda t: t.feed(samples))

    def submit(self, sample: Sample) -> None:
        """Export one kept sample in the background (now, without a `background` executor); waits while
        `max_pending` samples are queued. Raises the error of an earlier background add."""
        if self._background is None:
            self.add(sample)
            return
        with self._changed:
            while len(self._pending) >= self._max_pending and self._error is None:
                self._changed.wait()
            self._raise_error()
            self._pending.append(sample)
            if not self._draining:
                self._background.submit(self._add_next)
                self._draining = True

    def _add_next(self) -> None:
        """Background job: add the oldest queued sample, then queue itself again while samples wait."""
        with self._changed:
            sample = self._pending.popleft() if self._pending else None
        try:
            if sample is not None and self._error is None:
                self.add(sample)
        except BaseException as exc:  # raised to the session's user by submit / wait / close
            with self._changed:
                self._error = exc
        with self._changed:
            again = bool(self._pending) and self._error is None and self._background is not None
            if again:
                try:
                    self._background.submit(self._add_next)  # type: ignore[union-attr]
                except RuntimeError as exc:  # the executor was shut down under the session
                    self._error, again = exc, False
            if not again:
                self._pending.clear()
                self._draining = False
            self._changed.notify_all()

    def wait(self) -> None:
        """Block until every submitted sample is exported; raises the error of a background add."""
        with self._changed:
            while self._draining:
                self._changed.wait()
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def close(self, *, rejected_rows: Iterable[Mapping[str, Any] | BaseModel] | None = None,
              extra: Mapping[str, Any] | None = None, sections: Iterable[str] = (),
              ratings: Mapping[str, float] | None = None) -> dict[str, float]:
        """Write the files that need the final set; returns the busy seconds of each step (as `export_all`).

        1. Waits for the background adds; the exporters then close (concurrently on the `executor`).
        2. manifest.jsonl carries `ratings` (sample id → rating, from a ranking) in each rated sample's line.
        3. rejected.jsonl is written only when `rejected_rows` is given (the loop may own that file); the card
           counts the rows given, or else those of an existing rejected.jsonl.
        4. The card, written last, gets `extra` plus the timings of the exporters and records, and `sections`
           (markdown other steps wrote) before its sample grid.
        """
        from synthloop.tools.export.records import RejectedWriter, iter_rejected_file, row_dict

        if self._ended:
            raise RuntimeError("the export session is closed")
        try:
            self.wait()
            self._manifest.ratings = dict(ratings or {})
            _each(self._executor, self._steps.values(), lambda t: t.run("close"))
            start = time.perf_counter()
            writer = RejectedWriter(self.out_dir) if rejected_rows is not None else None
            rows = rejected_rows if rejected_rows is not None else \
                iter_rejected_file(self.out_dir) if self._card else []
            for row in rows:
                data = writer.add(row) if writer is not None else row_dict(row)
                if self._card is not None:
                    self._card.add_rejected(data)
            if writer is not None:
                writer.close()
            self._steps["records_s"].seconds += time.perf_counter() - start
            timings = {name: step.seconds for name, step in self._steps.items()}
            if self._card is not None and self._card_step is not None:
                self._card.sections = list(sections)
                self._card.figures = {**(extra or {}), **timings}
                self._card_step.run("close")
                timings["card_s"] = self._card_step.seconds
            return timings
        finally:
            self._ended = True

    def discard(self) -> None:
        """End the session without writing more: queued samples are dropped and the running background add is
        waited for; the exporters' temporary files (anonymous, see `streaming`) go with them."""
        with self._changed:
            self._pending.clear()
            self._background = None  # a running job does not queue itself again
            while self._draining:
                self._changed.wait()
        self._ended = True
        self._steps, self._workers, self._card, self._card_step = {}, [], None, None


def export_in_chunks(session: ExportSession, samples: Iterable[Sample], chunk: int) -> None:
    """Add `samples` to `session` `chunk` at a time (the exporters work on a chunk concurrently)."""
    iterator = iter(samples)
    while batch := list(itertools.islice(iterator, chunk)):
        session.add_chunk(batch)
