"""Checkpoint pruning: the run's SQLite checkpoint keeps its newest checkpoints only, so it does not grow with
the run, and what resuming reads (the newest checkpoint, its pending writes, a pending interrupt) survives."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from synthloop.agent import runner
from synthloop.agent.config import RunConfig
from synthloop.agent.runner import CHECKPOINT_FILE, CHECKPOINTS_KEPT, prune_checkpoints, start_run
from synthloop.tools.types import ExportFormat, ObjectSpec, Task, TaskSpec

THREAD = {"configurable": {"thread_id": "t"}}


class Counting(TypedDict, total=False):
    n: int
    a: int
    b: int
    answer: str


@contextmanager
def _saver(path: Path) -> Iterator[SqliteSaver]:
    with closing(sqlite3.connect(path, check_same_thread=False)) as connection:
        yield SqliteSaver(connection)


def _rows(saver: SqliteSaver) -> tuple[set[str], set[str]]:
    """Checkpoint ids in `checkpoints`, and the checkpoint ids the `writes` rows belong to."""
    checkpoints = {r[0] for r in saver.conn.execute("SELECT checkpoint_id FROM checkpoints")}
    writes = {r[0] for r in saver.conn.execute("SELECT checkpoint_id FROM writes")}
    return checkpoints, writes


def _stream(graph: Any, value: Any, saver: SqliteSaver | None) -> None:
    for _ in graph.stream(value, THREAD, stream_mode="updates", durability="sync"):
        if saver is not None:
            prune_checkpoints(saver, "t")


def _loop_graph(saver: SqliteSaver, steps: int) -> Any:
    builder = StateGraph(Counting)
    builder.add_node("step", lambda state: {"n": state.get("n", 0) + 1})
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda state: END if state["n"] >= steps else "step")
    return builder.compile(checkpointer=saver)


def test_pruning_keeps_the_newest_checkpoints_and_the_same_result(tmp_path: Path) -> None:
    with _saver(tmp_path / "pruned.sqlite") as pruned, _saver(tmp_path / "whole.sqlite") as whole:
        _stream(_loop_graph(pruned, 40), {"n": 0}, pruned)
        _stream(_loop_graph(whole, 40), {"n": 0}, None)
        assert _loop_graph(pruned, 40).get_state(THREAD).values == _loop_graph(whole, 40).get_state(THREAD).values
        checkpoints, writes = _rows(pruned)
        assert len(checkpoints) == CHECKPOINTS_KEPT and writes <= checkpoints
        assert len(_rows(whole)[0]) > 40, "without pruning every step's checkpoint stays"


def test_pending_writes_of_the_newest_checkpoint_survive(tmp_path: Path) -> None:
    """Two tasks in one step, one fails: the other's result is a pending write of the newest checkpoint, and
    the resumed run uses it instead of running that task again (what `runner._in_flight` relies on)."""
    calls = {"a": 0, "b": 0}

    def a(state: Counting) -> dict[str, int]:
        calls["a"] += 1
        return {"a": 1}

    def b(state: Counting) -> dict[str, int]:
        calls["b"] += 1
        if calls["b"] == 1:
            raise RuntimeError("killed")
        return {"b": 1}

    with _saver(tmp_path / "c.sqlite") as saver:
        builder = StateGraph(Counting)
        builder.add_node("a", a)
        builder.add_node("b", b)
        builder.add_edge(START, "a")
        builder.add_edge(START, "b")
        graph = builder.compile(checkpointer=saver)
        with pytest.raises(RuntimeError, match="killed"):
            _stream(graph, {"n": 0}, saver)
        prune_checkpoints(saver, "t", keep=1)
        checkpoints, writes = _rows(saver)
        assert len(checkpoints) == 1 and writes == checkpoints, "the newest checkpoint keeps its pending writes"
        _stream(graph, None, saver)
        assert graph.get_state(THREAD).values == {"n": 0, "a": 1, "b": 1}
        assert calls == {"a": 1, "b": 2}, "a's saved result was used, not recomputed"


def test_an_interrupted_run_resumes_after_pruning(tmp_path: Path) -> None:
    def ask(state: Counting) -> dict[str, str]:
        return {"answer": str(interrupt("approve?"))}

    with _saver(tmp_path / "i.sqlite") as saver:
        builder = StateGraph(Counting)
        builder.add_node("count", lambda state: {"n": state.get("n", 0) + 1})
        builder.add_node("ask", ask)
        builder.add_edge(START, "count")
        builder.add_edge("count", "ask")
        graph = builder.compile(checkpointer=saver)
        _stream(graph, {"n": 0}, saver)
        prune_checkpoints(saver, "t", keep=1)
        assert graph.get_state(THREAD).interrupts[0].value == "approve?"
        _stream(graph, Command(resume="yes"), saver)
        assert graph.get_state(THREAD).values == {"n": 1, "answer": "yes"}


def _checkpoint_size(out: Path, n: int) -> int:
    spec = TaskSpec(
        objects=[ObjectSpec(name="cup", min_count=1, max_count=2), ObjectSpec(name="plate", min_count=0, max_count=2)],
        n_images=n, width=64, height=64, tasks=[Task.detection, Task.instance_segmentation],
        formats=[ExportFormat.coco], seed=3, request="cups and plates",
    )
    start_run(out, RunConfig(batch_size=2, workers=1), spec=spec, auto_approve=True)
    with closing(sqlite3.connect(out / CHECKPOINT_FILE)) as connection:
        assert connection.execute("SELECT count(*) FROM checkpoints").fetchone() == (CHECKPOINTS_KEPT,)
    return (out / CHECKPOINT_FILE).stat().st_size


def test_a_run_checkpoint_does_not_grow_with_the_number_of_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = _checkpoint_size(tmp_path / "small", 6)
    large = _checkpoint_size(tmp_path / "large", 30)
    assert large < 2 * small, (small, large)
    monkeypatch.setattr(runner, "prune_checkpoints", lambda saver, thread_id: None)
    with pytest.raises(AssertionError):  # the same run without pruning keeps every step's checkpoint
        _checkpoint_size(tmp_path / "unpruned", 30)
    assert (tmp_path / "unpruned" / CHECKPOINT_FILE).stat().st_size > 3 * large
