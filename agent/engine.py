"""Execution engines: who calls the backends, from which threads, in which batches.

Nodes hand whole batches to the engine and get results back in request order; the engine owns concurrency.
`LocalEngine` (the default) reads each backend's declared capabilities:
- a `batched` backend (a GPU pipeline) gets the whole batch in one `render_batch` / `annotate_batch` call,
  from one thread at a time (a lock per backend), so a model is never driven from two threads at once;
- a per-image backend (the CPU compositor) gets one request per call, spread over the worker threads.
`on_result(i, result)` runs in the worker thread right after request i is done (PNG encoding overlaps
rendering that way). Results never depend on the engine, batch size or thread count: every request carries
its own seed.

Another engine (Ray) implements the same four methods in one file of its own and is chosen by name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol, TypeVar

from synthloop.tools.annotate.base import AnnotateRequest, Annotator
from synthloop.tools.render.base import Renderer, RenderRequest, RenderResult
from synthloop.tools.types import Annotation

T = TypeVar("T")
R = TypeVar("R")
OnResult = Callable[[int, Any], None]


class Engine(Protocol):
    """Runs the loop's backend calls."""

    name: str

    def render(self, requests: Sequence[RenderRequest], on_result: OnResult | None = None) -> list[RenderResult]:
        """Render every request (results in request order)."""
        ...

    def annotate(self, requests: Sequence[AnnotateRequest]) -> list[Annotation]:
        """Annotate every request (results in request order)."""
        ...

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Apply a light, thread-safe function to every item (judging, hashing)."""
        ...

    def close(self) -> None:
        """Release what the engine holds (the executor itself belongs to its creator)."""
        ...


class LocalEngine:
    """Threads on this machine; batched backends get whole batches from one thread."""

    name = "local"

    def __init__(self, renderer: Renderer, annotator: Annotator, executor: Executor) -> None:
        self.renderer = renderer
        self.annotator = annotator
        self.executor = executor
        self._locks = {id(renderer): threading.Lock(), id(annotator): threading.Lock()}

    def _run(self, backend: Any, batch_call: Callable[[list[Any]], list[Any]], requests: Sequence[Any],
             on_result: OnResult | None) -> list[Any]:
        items = list(requests)
        if not items:
            return []
        if backend.capabilities.batched:
            with self._locks[id(backend)]:
                results = batch_call(items)
            if len(results) != len(items):
                raise RuntimeError(f"{backend.id} returned {len(results)} results for {len(items)} requests")
            if on_result is not None:
                list(self.executor.map(lambda pair: on_result(*pair), enumerate(results)))
            return results

        def one(pair: tuple[int, Any]) -> Any:
            index, request = pair
            result = batch_call([request])[0]
            if on_result is not None:
                on_result(index, result)
            return result

        return list(self.executor.map(one, enumerate(items)))

    def render(self, requests: Sequence[RenderRequest], on_result: OnResult | None = None) -> list[RenderResult]:
        """Render every request (results in request order)."""
        return self._run(self.renderer, self.renderer.render_batch, requests, on_result)

    def annotate(self, requests: Sequence[AnnotateRequest]) -> list[Annotation]:
        """Annotate every request (results in request order)."""
        return self._run(self.annotator, self.annotator.annotate_batch, requests, None)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`fn` over `items` on the worker threads, results in order."""
        return list(self.executor.map(fn, items))

    def close(self) -> None:
        """Nothing to release: the executor belongs to the runner."""
