"""What every execution engine offers the nodes, and the pieces engines share.

Nodes hand whole batches to the engine and get results back in request order; the engine owns concurrency.
Every request carries its own seed, so results never depend on the engine, the batch split or the number of
workers. Two ways to render:
- `render(requests)`: blocking, results in order (best-of-n candidates, re-renders after a resume);
- `submit_renders(requests, png_level=…, urgent=…)`: one future per request, each resolving to a `Rendered`
  (the result and, when asked, its PNG bytes encoded where it was rendered). The render node uses it to start
  the next batch's fresh samples while the current batch is annotated and critiqued (see `prefetch.py`);
  urgent work (the batch in hand, annotations) is served before prefetched work.
Every engine records its renderer busy time (`BusyClock`): the intervals during which a worker was rendering
or encoding an image, measured where the work ran.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from synthloop.tools.annotate.base import AnnotateRequest, Annotator
from synthloop.tools.render.base import Renderer, RenderRequest, RenderResult
from synthloop.tools.types import Annotation

T = TypeVar("T")
R = TypeVar("R")
OnResult = Callable[[int, Any], None]


class EngineError(RuntimeError):
    """An engine could not get a result (a worker kept dying, a backend broke its contract)."""


@dataclass
class Rendered:
    """One rendered request: the renderer's result and, when encoding was asked for, its PNG bytes."""

    result: RenderResult
    png: bytes | None = None


class BusyClock:
    """Renderer busy time: the union of the intervals during which some worker rendered or encoded an image.

    Intervals are wall-clock (`time.time()`) so that workers in other processes on the same machine can report
    theirs. Overlapping intervals are merged as they accumulate, so memory stays small on long runs.
    """

    def __init__(self) -> None:
        self._intervals: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def add(self, start: float, end: float) -> None:
        """Record that a worker was busy from `start` to `end` (seconds since the epoch)."""
        if end <= start:
            return
        with self._lock:
            self._intervals.append((start, end))
            if len(self._intervals) >= 4096:
                self._intervals = _merged(self._intervals)

    def busy_seconds(self, since: float | None = None, until: float | None = None) -> float:
        """Seconds covered by at least one interval, within [since, until] when given."""
        with self._lock:
            intervals = _merged(self._intervals)
            self._intervals = intervals
        low, high = since if since is not None else float("-inf"), until if until is not None else float("inf")
        return sum(max(0.0, min(end, high) - max(start, low)) for start, end in intervals)


def _merged(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted, non-overlapping intervals covering the same time."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def render_and_encode(renderer: Renderer, requests: Sequence[RenderRequest], png_level: int | None,
                      busy: Callable[[float, float], None]) -> list[Rendered]:
    """Render `requests` in one `render_batch` call, then encode each image when `png_level` is set; the busy
    intervals go to `busy`. Used by the local engine's workers and by Ray actors alike."""
    from synthloop.tools.io import encode_png

    start = time.time()
    results = renderer.render_batch(list(requests))
    if len(results) != len(requests):
        raise EngineError(f"renderer {renderer.id} returned {len(results)} results for {len(requests)} requests")
    rendered = []
    for result in results:
        png = encode_png(result.image, compress_level=png_level) if png_level is not None else None
        rendered.append(Rendered(result, png))
    busy(start, time.time())
    return rendered


def results_in_order(futures: Sequence[Future[Rendered]], on_result: OnResult | None = None) -> list[RenderResult]:
    """Wait for each render future in turn: the render results in request order, each handed to
    `on_result(i, result)` as it arrives (in order). How every engine's blocking `render` collects its results."""
    results = []
    for i, future in enumerate(futures):
        result = future.result().result
        if on_result is not None:
            on_result(i, result)
        results.append(result)
    return results


class PriorityPool:
    """A fixed set of worker threads taking jobs urgent-first, then in submission order.

    The local engine renders prefetched samples here at low priority; work for the batch in hand is urgent, so
    it never waits behind more than the jobs already running.
    """

    def __init__(self, workers: int, name: str = "synthloop-engine") -> None:
        self._queue: list[tuple[int, int, Callable[[], Any], Future[Any]]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], T], *, urgent: bool = True) -> Future[T]:
        """Run `fn` on a worker; its future holds the value or the exception."""
        future: Future[T] = Future()
        with self._ready:
            if self._closed:
                raise EngineError("the engine is closed")
            heapq.heappush(self._queue, (0 if urgent else 1, next(self._order), fn, future))
            self._ready.notify()
        return future

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if not self._queue:
                    return
                _, _, fn, future = heapq.heappop(self._queue)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def close(self) -> None:
        """Cancel the jobs not started, let running ones finish, stop the threads."""
        with self._ready:
            self._closed = True
            pending, self._queue = self._queue, []
            self._ready.notify_all()
        for *_, future in pending:
            future.cancel()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()


class Engine(Protocol):
    """Runs the loop's backend calls."""

    name: str
    renderer: Renderer
    annotator: Annotator
    busy: BusyClock

    def render(self, requests: Sequence[RenderRequest], on_result: OnResult | None = None) -> list[RenderResult]:
        """Render every request (results in request order; `on_result(i, result)` as each arrives)."""
        ...

    def submit_renders(self, requests: Sequence[RenderRequest], *, png_level: int | None = None,
                       urgent: bool = True) -> list[Future[Rendered]]:
        """Start rendering every request (encoding each image as PNG when `png_level` is set); one future each."""
        ...

    def annotate(self, requests: Sequence[AnnotateRequest]) -> list[Annotation]:
        """Annotate every request (results in request order)."""
        ...

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Apply a light, thread-safe function to every item (judging, hashing)."""
        ...

    def worker_cpu_seconds(self) -> float:
        """CPU seconds used by worker processes other than this one so far (0 for threads in this process)."""
        ...

    def close(self) -> None:
        """Stop the engine's workers (unstarted work is cancelled) and release what it holds."""
        ...
