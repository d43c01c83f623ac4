"""The Ray engine (`--executor ray [--address ADDR]`): render and annotate batches on Ray actors.

- Actors (`ray_actor.BackendActor`) build and hold the run's loaded renderer and annotator from its config
  blocks: one actor per GPU (`num_gpus=1`) when a backend computes on a GPU and the cluster has GPUs, else
  `workers` CPU actors.
- Batches are split into chunks across the actors (a batched backend: one chunk per actor; a per-image one:
  small chunks, for balance). Back pressure: at most `max_in_flight` chunks queued per actor; the rest wait on
  the driver, urgent work (the batch in hand, annotations) before prefetched renders.
- An actor that dies (its process killed, its node lost) is replaced by a new one and its chunks are sent
  again, the same requests: results are deterministic, so a retry changes nothing but time. A backend that
  raises is not retried: its error is the run's.
- `map` (the critic's light work) stays on local threads. The driver keeps a light view of the backends
  (`RemoteRenderer`, `RemoteAnnotator`: ids, capabilities, the plan review asked of an actor), so no model is
  loaded on the driver.
Ray is imported only here, when the engine is built; it is an optional extra (`pip install 'synthloop[ray]'`).
With `address` None a local Ray instance is started for the run (and stopped at the end); an already
initialised Ray (a test's, a notebook's) is used as it is. Busy intervals are measured on the workers with the
wall clock: on a multi-machine cluster, clock skew blurs the busy-time figure, not the dataset.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthloop.agent.engines.base import BusyClock, EngineError, OnResult, R, Rendered, T, results_in_order
from synthloop.agent.engines.ray_actor import BackendActor
from synthloop.agent.errors import UserInputError
from synthloop.tools.annotate.base import AnnotateRequest
from synthloop.tools.backend import BackendBlock, Capabilities
from synthloop.tools.render.base import RenderRequest, RenderResult, RenderReview
from synthloop.tools.types import Annotation, Layout, TaskSpec

RAY_MISSING = "the ray executor needs the ray package: pip install 'synthloop[ray]'"
POLL_S = 0.02  # how often the dispatcher looks for new work while chunks are in flight


def import_ray() -> Any:
    """The `ray` module, or one clear error naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise UserInputError(RAY_MISSING) from exc
    return ray


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, with one line, when a `host:port` or `ray://host:port` cluster address does not answer
    (Ray itself retries a dead address for minutes). `auto` and other forms are left to Ray."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        if address.startswith("ray://") or ":" in address:
            raise UserInputError(f"the Ray address {address!r} is not host:port, ray://host:port or auto")
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UserInputError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from exc


def actor_plan(resources: dict[str, float], *, workers: int, wants_gpu: bool) -> tuple[int, dict[str, float]]:
    """How many actors, with which resource request: one per GPU (`num_gpus=1`) when a backend wants a GPU and
    the cluster has some; else `workers` CPU actors, each asking for a share of the cluster's CPUs that lets
    them all be placed (at most one CPU each)."""
    gpus = int(resources.get("GPU", 0))
    if wants_gpu and gpus >= 1:
        return gpus, {"num_gpus": 1, "num_cpus": 1}
    cpus = float(resources.get("CPU", 1.0))
    return workers, {"num_cpus": min(1.0, cpus / workers)}


def wants_gpu(*blocks: BackendBlock) -> bool:
    """Whether any backend computes on a GPU (its `device` option, else its declared device, is not cpu)."""
    from synthloop.tools.annotate.registry import ANNOTATORS
    from synthloop.tools.render.registry import RENDERERS

    for block, registry in zip(blocks, (RENDERERS, ANNOTATORS), strict=False):
        device = block.options.get("device") or registry.capabilities(block.backend).device
        if str(device) != "cpu":
            return True
    return False


@dataclass
class _Chunk:
    """Part of a batch sent to one actor: `method(*args)`, its future, and how often it was tried."""

    method: str
    args: tuple[Any, ...]
    future: Future[Any]
    urgent: bool
    attempts: int = 0


class RayEngine:
    """Ray actors holding the loaded backends; chunks dispatched with back pressure and retried on actor death."""

    name = "ray"

    def __init__(self, renderer: BackendBlock, annotator: BackendBlock, executor: Executor, *, workers: int,
                 address: str | None = None, max_in_flight: int = 2, max_retries: int = 3) -> None:
        self._ray = ray = import_ray()
        self.executor = executor
        self.busy = BusyClock()
        self.max_in_flight = max_in_flight
        self.max_retries = max_retries
        self.restarts = 0  # actors replaced after dying
        self._queues: tuple[deque[_Chunk], deque[_Chunk]] = (deque(), deque())  # urgent, prefetched
        self._inflight: dict[Any, tuple[int, int, _Chunk]] = {}  # ref → (actor slot, its generation, chunk)
        self._wake = threading.Condition()
        self._closed = False
        self._dispatcher: threading.Thread | None = None
        self._actors: list[Any] = []
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            if address is not None:
                check_reachable(address)
            try:
                ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                         log_to_driver=False)
            except (ConnectionError, ValueError) as exc:
                raise UserInputError(f"cannot reach the Ray cluster at {address}: {_cause(exc)}") from exc
        self._blocks = (renderer, annotator)
        count, self._resources = actor_plan(ray.cluster_resources(), workers=workers,
                                            wants_gpu=wants_gpu(renderer, annotator))
        self._actor_class = ray.remote(max_restarts=0)(BackendActor)
        self._actors = [self._new_actor() for _ in range(count)]
        self._generation = [0] * count
        self._load = [0] * count
        try:
            described = ray.get([actor.describe.remote() for actor in self._actors])[0]
        except ray.exceptions.RayError as exc:
            self.close()
            raise UserInputError(f"the Ray workers could not build the run's backends: {_cause(exc)}") from exc
        self.renderer = RemoteRenderer(self, *described["renderer"])
        self.annotator = RemoteAnnotator(self, *described["annotator"])
        self._dispatcher = threading.Thread(target=self._dispatch, name="synthloop-ray-dispatch", daemon=True)
        self._dispatcher.start()

    @property
    def actors(self) -> int:
        """How many actors work for the run."""
        return len(self._actors)

    def _new_actor(self) -> Any:
        return self._actor_class.options(**self._resources).remote(*self._blocks)

    # -- the engine's methods ------------------------------------------------------------------------------

    def submit_renders(self, requests: Sequence[RenderRequest], *, png_level: int | None = None,
                       urgent: bool = True) -> list[Future[Rendered]]:
        """One future per request, rendered (and PNG-encoded when `png_level` is set) on the actors."""
        items = list(requests)
        futures: list[Future[Rendered]] = [Future() for _ in items]
        size = self._chunk_size(len(items), self.renderer.capabilities.batched)
        for start in range(0, len(items), size):
            chunk = self._submit("render", (items[start:start + size], png_level), urgent)
            chunk.add_done_callback(lambda done, part=futures[start:start + size]: self._deliver_renders(done, part))
        return futures

    def _deliver_renders(self, done: Future[Any], futures: list[Future[Rendered]]) -> None:
        if done.cancelled() or done.exception() is not None:
            error = done.exception() if not done.cancelled() else EngineError("the engine was closed")
            for future in futures:
                _settle(future, exception=error)
            return
        rendered, intervals = done.result()
        for start, end in intervals:
            self.busy.add(start, end)
        for future, value in zip(futures, rendered, strict=True):
            _settle(future, value=value)

    def render(self, requests: Sequence[RenderRequest], on_result: OnResult | None = None) -> list[RenderResult]:
        """Render every request (results in request order; `on_result(i, result)` on the driver as each
        arrives, in order)."""
        return results_in_order(self.submit_renders(requests), on_result)

    def annotate(self, requests: Sequence[AnnotateRequest]) -> list[Annotation]:
        """Annotate every request on the actors (results in request order)."""
        items = list(requests)
        size = self._chunk_size(len(items), self.annotator.capabilities.batched)
        chunks = [self._submit("annotate", (items[start:start + size],), True) for start in range(0, len(items), size)]
        return [annotation for chunk in chunks for annotation in chunk.result()]

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`fn` over `items` on local threads (light work), results in order."""
        return list(self.executor.map(fn, items))

    def review(self, spec: TaskSpec) -> RenderReview:
        """The renderer's review of `spec`, asked of the first actor."""
        return self._ray.get(self._actors[0].review.remote(spec))

    def call(self, method: str, *args: Any) -> Any:
        """`method(*args)` of the backends an actor holds (urgent; retried on another actor if it dies)."""
        return self._submit(method, args, True).result()

    def worker_cpu_seconds(self) -> float:
        """CPU seconds the live actors' processes have used (an actor that died took its count with it; Ray's
        own daemons are not counted)."""
        return float(sum(self._ray.get([actor.cpu_seconds.remote() for actor in self._actors])))

    def close(self) -> None:
        """Cancel queued work, stop the actors and the dispatcher; stop Ray when this engine started it."""
        with self._wake:
            self._closed = True
            for queue in self._queues:
                while queue:
                    queue.popleft().future.cancel()
            self._wake.notify_all()
        if self._dispatcher is not None and self._dispatcher is not threading.current_thread():
            self._dispatcher.join()
        for actor in self._actors:
            _kill(self._ray, actor)
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns_ray = False

    # -- dispatching --------------------------------------------------------------------------------------

    def _chunk_size(self, n: int, batched: bool) -> int:
        """A batched backend gets one chunk per actor; a per-image one four per actor (load balance, and
        short waits for urgent work behind prefetched chunks)."""
        per_actor = 1 if batched else 4
        return max(1, math.ceil(n / (len(self._actors) * per_actor)))

    def _submit(self, method: str, args: tuple[Any, ...], urgent: bool) -> Future[Any]:
        future: Future[Any] = Future()
        with self._wake:
            if self._closed:
                raise EngineError("the Ray engine is closed")
            self._queues[0 if urgent else 1].append(_Chunk(method, args, future, urgent))
            self._wake.notify()
        return future

    def _dispatch(self) -> None:
        """Send queued chunks to actors with room (urgent first), collect finished ones, retry after deaths."""
        ray = self._ray
        while True:
            with self._wake:
                if self._closed:
                    for _, _, chunk in self._inflight.values():
                        _settle(chunk.future, exception=EngineError("the Ray engine was closed"))
                    self._inflight.clear()
                    return
                self._send_queued()
                if not self._inflight:
                    self._wake.wait()
                    continue
                refs = list(self._inflight)
            ready, _ = ray.wait(refs, num_returns=1, timeout=POLL_S)
            for ref in ready:
                self._collect(ref)

    def _send_queued(self) -> None:
        for queue in self._queues:
            while queue:
                slot = min(range(len(self._actors)), key=lambda i: self._load[i])
                if self._load[slot] >= self.max_in_flight:
                    return
                chunk = queue.popleft()
                if chunk.attempts == 0 and not chunk.future.set_running_or_notify_cancel():
                    continue  # cancelled while it waited (a prefetched render no longer wanted)
                ref = getattr(self._actors[slot], chunk.method).remote(*chunk.args)
                self._inflight[ref] = (slot, self._generation[slot], chunk)
                self._load[slot] += 1

    def _collect(self, ref: Any) -> None:
        ray = self._ray
        with self._wake:
            slot, generation, chunk = self._inflight.pop(ref)
            self._load[slot] -= 1
        try:
            value = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                ray.exceptions.ObjectLostError) as exc:
            self._retry(slot, generation, chunk, exc)
        except ray.exceptions.RayTaskError as exc:
            _settle(chunk.future, exception=exc.as_instanceof_cause())
        except Exception as exc:  # handed to whoever waits on the chunk
            _settle(chunk.future, exception=exc)
        else:
            _settle(chunk.future, value=value)

    def _retry(self, slot: int, generation: int, chunk: _Chunk, error: Exception) -> None:
        """Replace the dead actor (once per death) and queue the chunk again, first in its queue."""
        with self._wake:
            if self._closed:
                _settle(chunk.future, exception=EngineError("the Ray engine was closed"))
                return
            if self._generation[slot] == generation:
                _kill(self._ray, self._actors[slot])
                self._actors[slot] = self._new_actor()
                self._generation[slot] += 1
                self.restarts += 1
            chunk.attempts += 1
            if chunk.attempts > self.max_retries:
                chunk.future.set_exception(EngineError(
                    f"a Ray actor died {chunk.attempts} times on the same {chunk.method} chunk: {_cause(error)}"))
                return
            self._queues[0 if chunk.urgent else 1].appendleft(chunk)


class RemoteRenderer:
    """The driver's view of the renderer the actors hold: id and capabilities, its review asked of an actor,
    renders through the engine."""

    def __init__(self, engine: RayEngine, backend_id: str, capabilities: Capabilities) -> None:
        self._engine = engine
        self.id = backend_id
        self.capabilities = capabilities

    def render(self, layout: Layout, spec: TaskSpec, seed: int, *, prompt: str = "") -> RenderResult:
        """Render one layout on an actor."""
        return self._engine.render([RenderRequest(layout, spec, seed, prompt)])[0]

    def render_batch(self, requests: Sequence[RenderRequest]) -> list[RenderResult]:
        """Render every request on the actors."""
        return self._engine.render(requests)

    def review(self, spec: TaskSpec) -> RenderReview:
        """The renderer's review of `spec`."""
        return self._engine.review(spec)

    def edit_image(self, image: np.ndarray, instruction: str, seed: int) -> np.ndarray:
        """The renderer's plain-language edit of `image`, applied on an actor (when it declares `edits_images`)."""
        return self._engine.call("edit_image", image, instruction, seed)

    def edit_provenance(self) -> dict[str, str]:
        """What applies the renderer's edits, as the actor's renderer records it."""
        return self._engine.call("edit_provenance")


class RemoteAnnotator:
    """The driver's view of the annotator the actors hold: id and capabilities, annotations through the
    engine."""

    def __init__(self, engine: RayEngine, backend_id: str, capabilities: Capabilities) -> None:
        self._engine = engine
        self.id = backend_id
        self.capabilities = capabilities

    def annotate(self, layout: Layout, render: RenderResult, spec: TaskSpec) -> Annotation:
        """Annotate one image on an actor."""
        return self._engine.annotate([AnnotateRequest(layout, render, spec)])[0]

    def annotate_batch(self, requests: Sequence[AnnotateRequest]) -> list[Annotation]:
        """Annotate every request on the actors."""
        return self._engine.annotate(requests)


def _settle(future: Future[Any], *, value: Any = None, exception: BaseException | None = None) -> None:
    """Resolve `future` unless it was cancelled meanwhile (a prefetched render dropped by its taker)."""
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(value)
    except InvalidStateError:
        pass


def _kill(ray: Any, actor: Any) -> None:
    """Stop an actor for good (one already gone needs nothing)."""
    with contextlib.suppress(Exception):  # a dead or unknown actor: nothing to stop
        ray.kill(actor, no_restart=True)


def _cause(exc: BaseException) -> str:
    """The last line of a Ray error (the worker's own exception, without its class name), for one line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return re.sub(r"^[\w.]+(Error|Exception): ", "", lines[-1]) if lines else type(exc).__name__
