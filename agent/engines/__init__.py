"""Execution engines: who calls the backends, from which threads or workers, in which batches.

`local` (the default) runs them on threads here; `ray` on Ray actors holding the loaded models
(`--executor ray [--address ADDR]`, or `executor:` in the run config). Both implement `base.Engine`; the
render node pipelines through either (`prefetch.py`). Results never depend on the engine or its worker count.
"""

from __future__ import annotations

from concurrent.futures import Executor

from synthloop.agent.config import ExecutorConfig, RunConfig
from synthloop.agent.engines.base import BusyClock, Engine, EngineError, OnResult, Rendered
from synthloop.agent.engines.local import LocalEngine

__all__ = ["BusyClock", "Engine", "EngineError", "LocalEngine", "OnResult", "Rendered", "check_engine",
           "make_engine"]


def check_engine(executor: ExecutorConfig) -> None:
    """Refuse, before a run starts (before its folder is made), an engine that cannot be used here: Ray not
    installed, or a cluster address that does not answer (one line each)."""
    if executor.engine == "ray":
        import importlib.util

        from synthloop.agent.engines.ray_engine import RAY_MISSING, check_reachable

        if importlib.util.find_spec("ray") is None:
            from synthloop.agent.errors import UserInputError

            raise UserInputError(RAY_MISSING)
        if executor.address is not None:
            check_reachable(executor.address)


def make_engine(config: RunConfig, executor: Executor) -> Engine:
    """The engine the config names, holding the run's loaded renderer and annotator (on Ray: in its actors;
    `executor` runs the light work either way)."""
    if config.executor.engine == "ray":
        from synthloop.agent.engines.ray_engine import RayEngine

        return RayEngine(config.renderer, config.annotator, executor, workers=config.workers,
                         address=config.executor.address, max_in_flight=config.executor.max_in_flight)
    from synthloop.agent.backends import make_annotator, make_renderer

    return LocalEngine(make_renderer(config.renderer), make_annotator(config.annotator), executor,
                       workers=config.workers)
