"""The real planner and reviser through the graph: a question, an answer, conversational edits, approval."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from synthloop.agent.config import RunConfig
from synthloop.agent.errors import UserInputError
from synthloop.agent.planner import NO_CLASS_QUESTION, plan_request, revise_spec
from synthloop.agent.runner import start_run
from synthloop.tools.types import TaskSpec

CONFIG = RunConfig(batch_size=4, workers=1)


class Planner:
    """The deterministic planner, recording what it was asked."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    def __call__(self, request: str) -> TaskSpec:
        self.requests.append(request)
        return plan_request(request, None)


def reviser(spec: TaskSpec, message: str) -> TaskSpec:
    return revise_spec(spec, message, None)


def test_question_answer_edits_then_approval(tmp_path: Path) -> None:
    planner = Planner()
    shown: list[dict] = []
    replies = iter([
        {"action": "answer", "text": "cups and plates"},
        {"action": "message", "text": "make it 4, 64x64"},
        {"action": "message", "text": "YOLO instead"},
        {"action": "approve"},
    ])

    def reply(payload: dict) -> dict:
        shown.append(payload)
        return next(replies)

    summary = start_run(tmp_path / "out", CONFIG, request="500 images for detection", planner=planner,
                        reviser=reviser, on_interrupt=reply)
    assert shown[0]["questions"] == [NO_CLASS_QUESTION]
    assert planner.requests == ["500 images for detection", "500 images for detection cups and plates"]
    assert [p["spec"]["n_images"] for p in shown] == [500, 500, 4, 4]
    assert summary.kept == 4
    spec = json.loads((tmp_path / "out" / "spec.json").read_text())
    assert [o["name"] for o in spec["objects"]] == ["cup", "plate"]
    assert (spec["width"], spec["height"], spec["formats"]) == (64, 64, ["yolo"])
    assert (tmp_path / "out" / "yolo" / "data.yaml").is_file()


def test_an_edit_that_is_not_understood_asks_and_the_answer_goes_back_to_the_reviser(tmp_path: Path) -> None:
    planner = Planner()
    shown: list[dict] = []
    replies = iter([{"action": "message", "text": "blorp"}, {"action": "answer", "text": "make it 3"},
                    {"action": "approve"}])

    def reply(payload: dict) -> dict:
        shown.append(payload)
        return next(replies)

    summary = start_run(tmp_path / "out", CONFIG, request="8 images of cups, 64x64", planner=planner,
                        reviser=reviser, on_interrupt=reply)
    assert "blorp" in shown[1]["questions"][0]
    assert planner.requests == ["8 images of cups, 64x64"]  # not planned again from scratch
    assert shown[2]["spec"]["n_images"] == 3 and shown[2]["questions"] == []
    assert summary.kept == 3


def test_yes_refuses_a_plan_with_a_question(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="open question"):
        start_run(tmp_path / "out", CONFIG, request="make a dataset", planner=Planner(), auto_approve=True)


@pytest.mark.parametrize(
    ("typed", "reply"),
    [("", {"action": "approve"}), ("yes", {"action": "approve"}), ("n", {"action": "cancel"}),
     ("make it 300", {"action": "message", "text": "make it 300"}),
     ("YOLO instead", {"action": "message", "text": "YOLO instead"})],
)
def test_typed_changes_at_the_approval_prompt_become_edits(monkeypatch: pytest.MonkeyPatch, typed: str,
                                                          reply: dict) -> None:
    from synthloop.agent.cli import _interactive_approval, _Progress

    monkeypatch.setattr("sys.stdin", io.StringIO(typed + "\n"))
    monkeypatch.setattr("builtins.input", lambda prompt="": typed)
    spec = plan_request("cups", None)
    assert _interactive_approval(_Progress())({"spec": spec.model_dump(mode="json")}) == reply
