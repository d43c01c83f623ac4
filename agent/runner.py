"""Starting, driving and resuming runs: output directory checks, checkpointer, deps, interrupts.

A run lives in its output directory: `.work/run.json` (what was asked and with which config),
`.work/checkpoints.sqlite` (LangGraph's SQLite checkpointer, one thread per run) and the per-sample records
(see `store.py`). `resume_run` rebuilds everything from there.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command, StateSnapshot

from synthloop.agent.backends import (
    check_compatible,
    make_judges,
    make_language_llm,
    make_pairwise_judge,
    make_sampler,
    make_vlm_client,
)
from synthloop.agent.config import RunConfig
from synthloop.agent.deps import Deps, Planner, ProgressCallback, Reviser
from synthloop.agent.engines import check_engine, make_engine
from synthloop.agent.engines.prefetch import RenderPrefetch
from synthloop.agent.errors import UserInputError
from synthloop.agent.graph import build_graph
from synthloop.agent.store import drop_export_session, restore_from_checkpoint
from synthloop.tools.critic.duplicates import DuplicateIndex
from synthloop.tools.io import atomic_write_json
from synthloop.tools.types import TaskSpec

RUN_FILE = ".work/run.json"
CHECKPOINT_FILE = ".work/checkpoints.sqlite"
CHECKPOINTS_KEPT = 2  # per thread: the latest (what resume reads) and the one before it
InterruptHandler = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class RunSummary:
    """What a finished (or stopped) run produced."""

    out_dir: Path
    n_images: int = 0
    kept: int = 0
    rejected: int = 0
    attempts: int = 0
    seconds: float = 0.0
    exported: bool = False
    cancelled: bool = False
    stop_reason: str = ""
    spec: TaskSpec | None = None
    phase_seconds: dict[str, float] = field(default_factory=dict)
    busy_seconds: float = 0.0  # renderer busy time: some worker rendering or encoding an image (union)
    worker_cpu_seconds: float = 0.0  # CPU time of worker processes (Ray actors; threads count in this process)


def prepare_new_out_dir(out_dir: Path) -> None:
    """Create `out_dir` for a new run, refusing a file, a non-empty folder or an existing run."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserInputError(f"output path {out_dir} is a file, not a directory")
    if out_dir.is_dir() and any(p for p in out_dir.iterdir() if not _is_empty_work_dir(p)):
        if (out_dir / RUN_FILE).is_file():
            raise UserInputError(f"{out_dir} already holds a synthloop run: `synthloop resume {out_dir}` "
                                 "continues it; choose a new --out for a new run")
        raise UserInputError(f"output directory {out_dir} is not empty; choose a new or empty directory")
    try:
        (out_dir / ".work").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot create output directory {out_dir}: {exc.strerror}") from exc


def _is_empty_work_dir(path: Path) -> bool:
    """A `.work/` left by a run killed before it wrote anything (it does not make the folder a run)."""
    return path.name == ".work" and path.is_dir() and not any(path.iterdir())


def build_deps(
    out_dir: Path,
    config: RunConfig,
    planner: Planner,
    *,
    auto_approve: bool,
    progress: ProgressCallback | None,
    executor: ThreadPoolExecutor,
    reviser: Reviser | None = None,
) -> Deps:
    """Load the configured backends (in the engine: local threads or Ray actors) and check that they fit
    together, before anything runs (the stateful judges learn the samples already kept in `_drive`, from what
    the checkpoint says). The caller closes `deps.engine` when the run ends."""
    duplicates = DuplicateIndex()
    engine = make_engine(config, executor)
    try:
        check_compatible(engine.renderer, engine.annotator)
        sampler = make_sampler(config.layout)
    except BaseException:
        engine.close()
        raise
    pipelined = config.executor.pipeline and not engine.renderer.capabilities.stateful
    deps = Deps(
        config=config, out_dir=out_dir, planner=planner, sampler=sampler,
        renderer=engine.renderer, annotator=engine.annotator, engine=engine,
        prefetch=RenderPrefetch(engine, capacity=config.batch_size * config.best_of_n,
                                png_level=config.png_compress_level) if pipelined else None,
        judges=make_judges(config, duplicates, exact_labels=engine.annotator.capabilities.exact_labels),
        duplicates=duplicates, executor=executor,
        auto_approve=auto_approve, progress=progress, reviser=reviser,
        pairwise=make_pairwise_judge(config, duplicates)
        if config.best_of_n > 1 or config.rank_matches_per_sample > 0 else None,
        llm_client=make_language_llm(config), vlm_client=make_vlm_client(config.vlm) if config.vlm else None,
    )
    return deps


def _release(deps: Deps) -> None:
    """End what a run holds when it stops: an export session still open (a run stopped before its export: its
    background adds stop; a resume rebuilds it from the records), then the engine."""
    try:
        drop_export_session(deps)
    finally:
        deps.engine.close()


def _no_planner(request: str) -> TaskSpec:
    raise UserInputError("this run has no planner: it was started from a spec file")


def _first_input(request: str | None, spec: TaskSpec | None, config: RunConfig) -> dict[str, Any]:
    return {
        "request": request or (spec.request if spec else ""), "spec": spec.model_dump(mode="json") if spec else None,
        "answers": [], "messages": [], "retry_slots": [], "batch": [],
        "next_index": 0, "kept": 0, "rejected": 0, "attempts": 0, "best_of_n": config.best_of_n,
    }


def _in_flight(checkpoint: StateSnapshot) -> list[dict[str, Any]]:
    """The samples whose step had not finished at the last checkpoint. A task that finished after it has its
    result saved as a pending write (LangGraph applies it on resume without running the task again): then the
    batch that result leaves is what is in flight."""
    batch = (checkpoint.values or {}).get("batch", [])
    for task in checkpoint.tasks:
        if task.result is not None and "batch" in task.result:
            batch = task.result["batch"]
    return list(batch)


def prune_checkpoints(saver: SqliteSaver, thread_id: str, keep: int = CHECKPOINTS_KEPT) -> None:
    """Delete all but the `keep` newest checkpoints of the run's thread, with their pending writes, so the
    SQLite file stops growing with every step (freed pages are reused). Resume reads only the newest
    checkpoint and its pending writes (`SqliteSaver.get_tuple`: the highest checkpoint_id, and the `writes`
    rows under that id), and the graph never walks back through parents: nothing it reads is removed."""
    with saver.cursor() as cursor:  # the saver's own lock and transaction
        namespaces = cursor.execute("SELECT DISTINCT checkpoint_ns FROM checkpoints WHERE thread_id = ?",
                                    (thread_id,)).fetchall()
        for (namespace,) in namespaces:
            row = cursor.execute(
                "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
                "ORDER BY checkpoint_id DESC LIMIT 1 OFFSET ?", (thread_id, namespace, keep - 1)).fetchone()
            if row is None:
                continue
            for table in ("writes", "checkpoints"):
                cursor.execute(f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id < ?",
                               (thread_id, namespace, row[0]))


def _drive(
    out_dir: Path,
    thread_id: str,
    first_input: Any,
    deps: Deps,
    on_interrupt: InterruptHandler | None,
) -> RunSummary:
    """Run the graph until it ends, answering interrupts. `first_input` None means resume: the records on disk
    are first made to agree with the last checkpoint (see `store.restore_from_checkpoint`); a run killed
    before its first checkpoint starts again from the input recorded in run.json."""
    started, started_wall = time.perf_counter(), time.time()
    workers_cpu_before = deps.engine.worker_cpu_seconds()
    graph_config = {"configurable": {"thread_id": thread_id}, "recursion_limit": 1_000_000}
    with closing(sqlite3.connect(out_dir / CHECKPOINT_FILE, check_same_thread=False)) as connection:
        saver = SqliteSaver(connection)
        graph = build_graph(saver)
        value = first_input
        if first_input is None:
            try:
                checkpoint = graph.get_state(graph_config)
            except Exception as exc:  # damaged bytes on disk surface as any error of the deserialiser
                raise UserInputError(f"the checkpoint {out_dir / CHECKPOINT_FILE} is unreadable "
                                     f"({type(exc).__name__}: {exc}); the run cannot be resumed") from exc
            if not checkpoint.values:
                if any((deps.work_dir / "kept").glob("*.json")) or (deps.work_dir / "rejected").is_dir():
                    raise UserInputError(f"the checkpoint {out_dir / CHECKPOINT_FILE} is empty but the run has "
                                         "records: it was damaged, and the run cannot be resumed")
                run = read_run_file(out_dir)
                spec = TaskSpec.model_validate(run["spec"]) if run.get("spec") else None
                value = _first_input(run.get("request"), spec, deps.config)
            restore_from_checkpoint(deps, _in_flight(checkpoint))
        while True:
            pending = None
            # durability="sync": a step's checkpoint is on disk before the next step starts writing records.
            for chunk in graph.stream(value, graph_config, context=deps, stream_mode="updates", durability="sync"):
                if "__interrupt__" in chunk:
                    pending = chunk["__interrupt__"][0].value
                prune_checkpoints(saver, thread_id)
            if pending is None:
                break
            if on_interrupt is None:
                raise UserInputError("the run waits for approval of its spec; pass --yes to approve it "
                                     "non-interactively")
            value = Command(resume=on_interrupt(pending))
        state = graph.get_state(graph_config).values
    spec = TaskSpec.model_validate(state["spec"]) if state.get("spec") else None
    return RunSummary(
        out_dir=out_dir, n_images=spec.n_images if spec else 0, kept=state.get("kept", 0),
        rejected=state.get("rejected", 0), attempts=state.get("attempts", 0),
        seconds=time.perf_counter() - started, exported=bool(state.get("exported")),
        cancelled=bool(state.get("cancelled")), stop_reason=state.get("stop_reason", ""), spec=spec,
        phase_seconds=dict(deps.timers.seconds), busy_seconds=deps.engine.busy.busy_seconds(since=started_wall),
        worker_cpu_seconds=deps.engine.worker_cpu_seconds() - workers_cpu_before,
    )


def start_run(
    out_dir: Path,
    config: RunConfig,
    *,
    request: str | None = None,
    spec: TaskSpec | None = None,
    planner: Planner | None = None,
    reviser: Reviser | None = None,
    auto_approve: bool = False,
    on_interrupt: InterruptHandler | None = None,
    progress: ProgressCallback | None = None,
) -> RunSummary:
    """Start a new run from a request (planned by `planner`) or from a ready spec."""
    if (request is None) == (spec is None):
        raise ValueError("give exactly one of request or spec")
    if spec is None and planner is None:
        raise ValueError("a run from a request needs a planner")
    out_dir = Path(out_dir)
    check_engine(config.executor)
    prepare_new_out_dir(out_dir)
    thread_id = uuid.uuid4().hex
    atomic_write_json(out_dir / RUN_FILE, {
        "thread_id": thread_id, "request": request, "spec": spec.model_dump(mode="json") if spec else None,
        "auto_approve": auto_approve, "config": config.model_dump(mode="json"),
    }, indent=2)
    first_input = _first_input(request, spec, config)
    with ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="synthloop") as executor:
        deps = build_deps(out_dir, config, planner or _no_planner, auto_approve=auto_approve,
                          progress=progress, executor=executor, reviser=reviser)
        try:
            return _drive(out_dir, thread_id, first_input, deps, on_interrupt)
        finally:
            _release(deps)


def read_run_file(out_dir: Path) -> dict[str, Any]:
    """The run description of an existing run directory."""
    run_file = Path(out_dir) / RUN_FILE
    if not run_file.is_file():
        raise UserInputError(f"{out_dir} holds no synthloop run (no {RUN_FILE})")
    try:
        return json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise UserInputError(f"cannot read {run_file}: {exc}") from exc


# What `resume --config` may change: where the LLM and the VLM are reached, not what the run makes.
VLM_ENDPOINT_FIELDS = frozenset({"base_url", "model", "api_key_env", "timeout_s", "connect_timeout_s", "max_call_s",
                                 "max_retry_after_s", "max_retries", "structured_output"})


def resume_config(stored: RunConfig, new: RunConfig) -> RunConfig:
    """The run's stored config with the LLM section and the VLM endpoint of `new` (`resume DIR --config FILE`),
    and its executor when `new` sets one (the engine never changes the dataset).

    Anything else `new` sets explicitly to another value than the run started with (a backend, a threshold,
    the VLM judge on or off, its sampling) would change the dataset half-way: refused with one line naming it.
    """
    fields = new.model_fields_set - {"llm", "vlm", "executor"}
    changed = sorted(name for name in fields if getattr(new, name) != getattr(stored, name))
    vlm = stored.vlm
    if "vlm" in new.model_fields_set and new.vlm is not None and stored.vlm is not None:
        changed += [f"vlm.{k}" for k in sorted(type(new.vlm).model_fields)
                    if k not in VLM_ENDPOINT_FIELDS and getattr(new.vlm, k) != getattr(stored.vlm, k)]
        vlm = stored.vlm.model_copy(update={k: getattr(new.vlm, k) for k in VLM_ENDPOINT_FIELDS})
    elif "vlm" in new.model_fields_set and new.vlm != stored.vlm:
        changed.append("vlm (the VLM judge on or off)")
    if changed:
        raise UserInputError("resume --config may change only the llm and vlm endpoint sections, not "
                             f"{', '.join(changed)} (the run started with other values)")
    executor = new.executor if "executor" in new.model_fields_set else stored.executor
    return stored.model_copy(update={"llm": new.llm, "vlm": vlm, "executor": executor})


def resume_run(
    out_dir: Path,
    *,
    planner: Planner | None = None,
    reviser: Reviser | None = None,
    on_interrupt: InterruptHandler | None = None,
    progress: ProgressCallback | None = None,
    config: RunConfig | None = None,
) -> RunSummary:
    """Continue an interrupted run from its last checkpoint, with the config it started with; `config` points it at
    other LLM / VLM endpoints (see `resume_config`), recorded in run.json for later resumes."""
    out_dir = Path(out_dir)
    run = read_run_file(out_dir)
    stored = RunConfig.model_validate(run["config"])
    config = stored if config is None else resume_config(stored, config)
    check_engine(config.executor)
    if config != stored:
        atomic_write_json(out_dir / RUN_FILE, {**run, "config": config.model_dump(mode="json")}, indent=2)
    with ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="synthloop") as executor:
        deps = build_deps(out_dir, config, planner or _no_planner, auto_approve=bool(run.get("auto_approve")),
                          progress=progress, executor=executor, reviser=reviser)
        try:
            return _drive(out_dir, run["thread_id"], None, deps, on_interrupt)
        finally:
            _release(deps)
