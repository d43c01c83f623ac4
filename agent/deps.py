"""Loaded backends and per-run resources, passed to every node as the LangGraph runtime context.

Nothing here is checkpointed: on resume the runner builds `Deps` again from the config and the output
directory (the duplicate index is rebuilt from the kept records on disk).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from synthloop.agent.config import RunConfig
from synthloop.agent.engines.base import Engine
from synthloop.agent.engines.prefetch import RenderPrefetch
from synthloop.tools.annotate.base import Annotator
from synthloop.tools.critic.base import Judge
from synthloop.tools.critic.duplicates import DuplicateIndex
from synthloop.tools.critic.pairwise import PairwiseJudge
from synthloop.tools.export.session import ExportSession
from synthloop.tools.layout.base import LayoutSampler
from synthloop.tools.llm.client import LLMClient
from synthloop.tools.render.base import Renderer, RenderResult
from synthloop.tools.types import TaskSpec

Planner = Callable[[str], TaskSpec]
# Applies one conversational edit ("make it 300", "add trucks", "YOLO instead") to a spec.
Reviser = Callable[[TaskSpec, str], TaskSpec]
ProgressCallback = Callable[[str, dict], None]


@dataclass
class Timers:
    """Seconds spent per phase, accumulated across the run (thread-safe)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a block and add it to `name`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self.seconds[name] += elapsed


@dataclass
class Deps:
    """Everything a node needs besides the state."""

    config: RunConfig
    out_dir: Path
    planner: Planner
    sampler: LayoutSampler
    renderer: Renderer
    annotator: Annotator
    judges: list[Judge]
    duplicates: DuplicateIndex
    executor: ThreadPoolExecutor  # light work (hashing, judging, export); backends go through `engine`
    engine: Engine  # holds the loaded renderer and annotator (`renderer` / `annotator` are its views of them)
    auto_approve: bool = False
    reviser: Reviser | None = None
    progress: ProgressCallback | None = None
    timers: Timers = field(default_factory=Timers)
    pairwise: PairwiseJudge | None = None  # picks best-of-n winners
    # Language labels: the LLM paraphrases captions / proposes relations (when the config turns that on), the
    # VLM captions and checks relations (when one is configured). Both optional.
    llm_client: LLMClient | None = None
    vlm_client: LLMClient | None = None
    # Renders of the batch in flight, by sample id. Lost on a crash; nodes re-render (deterministic) then.
    scratch: dict[str, RenderResult] = field(default_factory=dict)
    candidates: dict[str, list[RenderResult]] = field(default_factory=dict)  # best-of-n renders, by sample id
    # Renders of the next fresh samples, started while the current batch is judged (pipelining); None = off.
    prefetch: RenderPrefetch | None = None
    # The dataset being exported while the loop runs: kept samples are added as they are kept, the export node
    # closes it. Opened on first use in a process (`store.export_session`), rebuilt from the kept records.
    export_session: ExportSession | None = None

    @property
    def work_dir(self) -> Path:
        """Where per-sample records and the checkpoint live (hidden inside the output directory)."""
        return self.out_dir / ".work"

    def report(self, event: str, **data: object) -> None:
        """Tell the front-end (progress bar, chat) what happened."""
        if self.progress is not None:
            self.progress(event, data)
