"""`langgraph.json`: the module-level graph loads, and runs without a runtime context (default Deps)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

ROOT = Path(__file__).resolve().parents[1]


def test_langgraph_json_points_at_a_compiled_graph() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    path, _, name = config["graphs"]["synthloop"].partition(":")
    assert (ROOT / path).is_file() and name == "graph"
    from synthloop.agent import langgraph_entry

    assert langgraph_entry.graph.name == "synthloop" and langgraph_entry.graph.context_schema is None


def test_the_graph_runs_without_a_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from synthloop.agent.graph import build_graph

    monkeypatch.setenv("SYNTHLOOP_PLANNER", "scripted_planner:make_planner")
    monkeypatch.setenv("SYNTHLOOP_LANGGRAPH_OUT", str(tmp_path))
    graph = build_graph(InMemorySaver())
    graph.context_schema = None  # as in langgraph_entry: the server passes {} as the context
    config = {"configurable": {"thread_id": "thread-1"}}
    first = graph.invoke({"request": "3 cups"}, config, context={})
    assert first["__interrupt__"][0].value["kind"] == "approve"
    graph.invoke(Command(resume={"action": "message", "text": "make it 4"}), config)
    done = graph.invoke(Command(resume={"action": "approve"}), config)
    assert done["kept"] == 4 and done["exported"]
    assert len((tmp_path / "thread-1" / "manifest.jsonl").read_text().splitlines()) == 4
