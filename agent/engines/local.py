"""The local engine (the default): threads on this machine.

It reads each backend's declared capabilities:
- a `batched` backend (a GPU pipeline) gets whole batches in one `render_batch` / `annotate_batch` call, from
  one thread at a time (a lock per backend), so a model is never driven from two threads at once;
- a per-image backend (the CPU compositor) gets one request per call, spread over `workers` render threads.
Rendering (and the PNG encoding that follows it) runs on the engine's own urgent-first thread pool, so
prefetched renders never delay the batch in hand; annotation and `map` run on the run's light-work executor.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future

from synthloop.agent.engines.base import (
    BusyClock,
    EngineError,
    OnResult,
    PriorityPool,
    R,
    Rendered,
    T,
    render_and_encode,
    results_in_order,
)
from synthloop.tools.annotate.base import AnnotateRequest, Annotator
from synthloop.tools.render.base import Renderer, RenderRequest, RenderResult
from synthloop.tools.types import Annotation


class LocalEngine:
    """Threads on this machine; batched backends get whole batches from one thread."""

    name = "local"

    def __init__(self, renderer: Renderer, annotator: Annotator, executor: Executor, *, workers: int = 2) -> None:
        self.renderer = renderer
        self.annotator = annotator
        self.executor = executor
        self.busy = BusyClock()
        self._pool = PriorityPool(workers, name="synthloop-render")
        self._locks = {id(renderer): threading.Lock(), id(annotator): threading.Lock()}

    def submit_renders(self, requests: Sequence[RenderRequest], *, png_level: int | None = None,
                       urgent: bool = True) -> list[Future[Rendered]]:
        """One future per request: rendered (and PNG-encoded when `png_level` is set) on the render threads."""
        items = list(requests)
        if not items:
            return []
        if not self.renderer.capabilities.batched:
            return [self._pool.submit(lambda r=r: render_and_encode(self.renderer, [r], png_level, self.busy.add)[0],
                                      urgent=urgent) for r in items]
        futures: list[Future[Rendered]] = [Future() for _ in items]

        def whole_batch() -> None:
            with self._locks[id(self.renderer)]:
                start = time.time()
                results = self.renderer.render_batch(items)
                self.busy.add(start, time.time())
            if len(results) != len(items):
                raise EngineError(f"{self.renderer.id} returned {len(results)} results for {len(items)} requests")
            for future, result in zip(futures, results, strict=True):
                self._pool.submit(lambda f=future, res=result: f.set_result(self._encoded(res, png_level)),
                                  urgent=urgent)

        def fail_all(done: Future[None]) -> None:
            if done.exception() is not None:
                for future in futures:
                    if not future.done():
                        future.set_exception(done.exception())  # type: ignore[arg-type]

        self._pool.submit(whole_batch, urgent=urgent).add_done_callback(fail_all)
        return futures

    def _encoded(self, result: RenderResult, png_level: int | None) -> Rendered:
        if png_level is None:
            return Rendered(result)
        from synthloop.tools.io import encode_png

        start = time.time()
        png = encode_png(result.image, compress_level=png_level)
        self.busy.add(start, time.time())
        return Rendered(result, png)

    def render(self, requests: Sequence[RenderRequest], on_result: OnResult | None = None) -> list[RenderResult]:
        """Render every request (results in request order; `on_result(i, result)` as each arrives, in order)."""
        return results_in_order(self.submit_renders(requests), on_result)

    def annotate(self, requests: Sequence[AnnotateRequest]) -> list[Annotation]:
        """Annotate every request (results in request order)."""
        items = list(requests)
        if not items:
            return []
        if self.annotator.capabilities.batched:
            with self._locks[id(self.annotator)]:
                results = self.annotator.annotate_batch(items)
            if len(results) != len(items):
                raise EngineError(f"{self.annotator.id} returned {len(results)} results for {len(items)} requests")
            return results
        return list(self.executor.map(lambda r: self.annotator.annotate_batch([r])[0], items))

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`fn` over `items` on the light-work threads, results in order."""
        return list(self.executor.map(fn, items))

    def worker_cpu_seconds(self) -> float:
        """Nothing outside this process: the render threads' CPU time is the process's own."""
        return 0.0

    def close(self) -> None:
        """Stop the render threads (prefetched work not started is cancelled); the executor is the runner's."""
        self._pool.close()
