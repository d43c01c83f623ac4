"""The synthloop state machine.

    START ─► plan ─► approve ─► layout ─► render ─► annotate ─(select)─► critique ─┐
              ▲       │  ▲ │       ▲                                              │
              └answer─┘  └─┘edit   └──────────────── not enough kept ─────────────┤
                                                                                  └─► export ─► END
A spec given up front skips `plan`; `select` (best-of-n) runs only when more than one render per layout is
asked for; an empty batch (attempt budget spent) goes straight to export.
"""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from synthloop.agent import nodes
from synthloop.agent.deps import Deps
from synthloop.agent.routing import (
    route_after_annotate,
    route_after_approve,
    route_after_critique,
    route_after_layout,
    route_start,
)
from synthloop.agent.state import RunState


def build_graph(checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    """Compile the graph; `Deps` is supplied per invocation as the runtime context."""
    builder = StateGraph(RunState, context_schema=Deps)
    builder.add_node("plan", nodes.plan)
    builder.add_node("approve", nodes.approve)
    builder.add_node("layout", nodes.layout)
    builder.add_node("render", nodes.render)
    builder.add_node("annotate", nodes.annotate)
    builder.add_node("select", nodes.select)
    builder.add_node("critique", nodes.critique)
    builder.add_node("export", nodes.export)

    builder.add_conditional_edges(START, route_start)
    builder.add_edge("plan", "approve")
    builder.add_conditional_edges("approve", route_after_approve)
    builder.add_conditional_edges("layout", route_after_layout)
    builder.add_edge("render", "annotate")
    builder.add_conditional_edges("annotate", route_after_annotate)
    builder.add_edge("select", "critique")
    builder.add_conditional_edges("critique", route_after_critique)
    builder.add_edge("export", END)
    return builder.compile(checkpointer=checkpointer, name="synthloop")
