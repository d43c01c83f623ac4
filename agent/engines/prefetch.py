"""Pipelining: renders started before their batch opens, so rendering never waits on critique and export.

While batch k is annotated and critiqued, the render node has already asked the engine (at low priority) for
the fresh samples that follow: their slots, seeds and layouts are known in advance (`derive_seed(spec.seed,
index, 0)`, the layout sampler is a function of spec and seed), while retries are only known once their batch
is judged and are rendered when it opens. A prefetched render is used only when the request the batch needs
is the very one that was prefetched (sample id, candidate, seed, layout, prompt and spec all equal), so results
are identical with or without it. At most `capacity` renders are held (bounded memory); they live in memory
only, so a crash loses nothing but time (resume re-renders, deterministically).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from synthloop.agent.engines.base import Engine, Rendered
from synthloop.tools.render.base import RenderRequest
from synthloop.tools.types import TaskSpec


@dataclass(frozen=True)
class PrefetchJob:
    """One render to start early: candidate `k` of sample `sample_id`, PNG-encoded when `encode`; `sample` is
    the sample it was made for (the layout node opens that one rather than sampling its layout again)."""

    sample_id: str
    k: int
    request: RenderRequest
    encode: bool
    sample: Any = None


class RenderPrefetch:
    """Renders started ahead of their batch, handed over only when the request matches exactly."""

    def __init__(self, engine: Engine, capacity: int, png_level: int) -> None:
        self.engine = engine
        self.capacity = capacity
        self.png_level = png_level
        self.hits = 0  # prefetched renders used
        self.discarded = 0  # prefetched renders whose request no longer matched
        self._held: dict[tuple[str, int], tuple[PrefetchJob, Future[Rendered]]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._held)

    def holds(self, sample_id: str, k: int = 0) -> bool:
        """Whether a render of candidate `k` of `sample_id` is held."""
        return (sample_id, k) in self._held

    def sample(self, sample_id: str, spec: TaskSpec) -> Any:
        """The sample a held render was made for, when it was made under `spec`; else None."""
        with self._lock:
            entry = self._held.get((sample_id, 0))
        if entry is None or entry[0].sample is None or entry[0].request.spec != spec:
            return None
        return entry[0].sample

    def offer(self, jobs: Sequence[PrefetchJob]) -> int:
        """Start the jobs not already held, within the capacity (low priority); returns how many started."""
        with self._lock:
            room = max(0, self.capacity - len(self._held))
            new = [job for job in jobs if (job.sample_id, job.k) not in self._held][:room]
            for encode in (True, False):
                group = [job for job in new if job.encode == encode]
                futures = self.engine.submit_renders([job.request for job in group], urgent=False,
                                                     png_level=self.png_level if encode else None)
                for job, future in zip(group, futures, strict=True):
                    self._held[(job.sample_id, job.k)] = (job, future)
            return len(new)

    def take(self, sample_id: str, k: int, request: RenderRequest, *, encode: bool) -> Future[Rendered] | None:
        """The prefetched render of candidate `k` of `sample_id` when it was made for exactly `request` (and
        encoded when `encode`); None otherwise (a render held for another request is dropped)."""
        with self._lock:
            entry = self._held.pop((sample_id, k), None)
            if entry is None:
                return None
            job, future = entry
            if job.request != request or (encode and not job.encode):
                future.cancel()
                self.discarded += 1
                return None
            self.hits += 1
            return future

    def clear(self) -> None:
        """Drop every held render (those not started are cancelled)."""
        with self._lock:
            for _, future in self._held.values():
                future.cancel()
            self._held.clear()
