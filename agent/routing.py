"""Routers: each looks at the state after a node and names the next node."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END

from synthloop.agent.state import RunState


def route_start(state: RunState) -> Literal["plan", "approve"]:
    """A run from a spec file skips planning."""
    return "approve" if state.get("spec") else "plan"


def route_after_approve(state: RunState) -> Literal["plan", "approve", "layout", "__end__"]:
    """Cancelled → end; an answer → plan again; an edit → show it again; approved → start generating."""
    if state.get("cancelled"):
        return END
    if state.get("spec") is None:
        return "plan"
    return "layout" if state.get("approved") else "approve"


def route_after_layout(state: RunState) -> Literal["render", "export"]:
    """An empty batch means the attempt budget is spent: export what was kept."""
    return "render" if state.get("batch") else "export"


def route_after_annotate(state: RunState) -> Literal["select", "critique"]:
    """Best-of-n runs pick a winner among each layout's candidates before the critic sees it."""
    return "select" if state.get("best_of_n", 1) > 1 else "critique"


def route_after_critique(state: RunState) -> Literal["layout", "export"]:
    """Loop until enough samples are kept (the layout node stops the loop when the budget is spent)."""
    spec = state.get("spec") or {}
    return "export" if state.get("kept", 0) >= spec.get("n_images", 0) else "layout"
