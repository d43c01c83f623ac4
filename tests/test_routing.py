"""Routers name the next node from the state alone."""

from __future__ import annotations

from langgraph.graph import END

from synthloop.agent.routing import route_after_approve, route_after_critique, route_after_layout, route_start


def test_route_start() -> None:
    assert route_start({"request": "cups", "spec": None}) == "plan"
    assert route_start({"spec": {"n_images": 3}}) == "approve"


def test_route_after_approve() -> None:
    spec = {"n_images": 3}
    assert route_after_approve({"cancelled": True, "spec": spec}) == END
    assert route_after_approve({"spec": None}) == "plan"
    assert route_after_approve({"spec": spec, "approved": True}) == "layout"
    assert route_after_approve({"spec": spec, "approved": False}) == "approve"


def test_route_after_layout() -> None:
    assert route_after_layout({"batch": [{"id": "000001"}]}) == "render"
    assert route_after_layout({"batch": []}) == "export"


def test_route_after_critique() -> None:
    assert route_after_critique({"spec": {"n_images": 3}, "kept": 2}) == "layout"
    assert route_after_critique({"spec": {"n_images": 3}, "kept": 3}) == "export"


def test_route_after_annotate() -> None:
    from synthloop.agent.routing import route_after_annotate

    assert route_after_annotate({"best_of_n": 1}) == "critique"
    assert route_after_annotate({}) == "critique"
    assert route_after_annotate({"best_of_n": 3}) == "select"
