"""Typed questions: the graph routes by a question's source, not its wording; old spec files still load;
under --yes a plan that cannot deliver a task or format stops with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthloop.agent.config import RunConfig
from synthloop.agent.errors import UserInputError
from synthloop.agent.planner import plan_request, revise_spec
from synthloop.agent.runner import start_run
from synthloop.agent.specfile import load_spec_file
from synthloop.tools.types import Notice, ObjectSpec, Question, TaskSpec

CONFIG = RunConfig(batch_size=4, workers=1)
SMALL = TaskSpec(objects=[ObjectSpec(name="cup")], n_images=2, width=64, height=64)


class Recorder:
    """A planner/reviser pair that returns scripted specs and records what it was given."""

    def __init__(self, planned: list[TaskSpec], revised: list[TaskSpec] | None = None) -> None:
        self.planned, self.revised = list(planned), list(revised or [])
        self.requests: list[str] = []
        self.messages: list[str] = []

    def plan(self, request: str) -> TaskSpec:
        self.requests.append(request)
        return self.planned.pop(0)

    def revise(self, spec: TaskSpec, message: str) -> TaskSpec:
        self.messages.append(message)
        return self.revised.pop(0)


def _replies(*replies: dict) -> tuple[list[dict], object]:
    shown: list[dict] = []
    queue = iter(replies)

    def reply(payload: dict) -> dict:
        shown.append(payload)
        return next(queue)

    return shown, reply


def test_plain_string_questions_of_old_spec_files_load_as_planner_questions(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**SMALL.model_dump(mode="json"), "questions": ["Which objects?"]}))
    spec = load_spec_file(path)
    assert spec.questions == [Question(source="planner", text="Which objects?")]
    assert spec.model_dump(mode="json")["questions"] == [{"source": "planner", "text": "Which objects?"}]
    assert str(spec.questions[0]) == "Which objects?"


def test_an_answer_to_an_edit_question_goes_to_the_reviser_whatever_its_wording(tmp_path: Path) -> None:
    asking = SMALL.model_copy(update={"questions": [Question(source="revision", text="Which size?")]})
    scripted = Recorder([SMALL], [asking, SMALL])
    shown, reply = _replies({"action": "message", "text": "huge"}, {"action": "answer", "text": "64x64"},
                            {"action": "cancel"})
    start_run(tmp_path / "out", CONFIG, request="cups", planner=scripted.plan, reviser=scripted.revise,
              on_interrupt=reply)
    assert scripted.requests == ["cups"] and scripted.messages == ["huge", "64x64"]
    assert shown[1]["questions"] == ["Which size?"]  # the payload carries the questions' texts


def test_an_answer_to_a_planner_question_plans_again_with_it(tmp_path: Path) -> None:
    asking = SMALL.model_copy(update={"questions": [Question(source="planner", text="I could not apply it")]})
    scripted = Recorder([asking, SMALL])
    _, reply = _replies({"action": "answer", "text": "cups"}, {"action": "cancel"})
    start_run(tmp_path / "out", CONFIG, request="images", planner=scripted.plan, reviser=scripted.revise,
              on_interrupt=reply)
    assert scripted.requests == ["images", "images cups"] and scripted.messages == []


def test_an_answer_to_a_language_question_replaces_the_request(tmp_path: Path) -> None:
    shown, reply = _replies({"action": "answer", "text": "200 images of cats and dogs"}, {"action": "cancel"})
    requests: list[str] = []

    def planner(request: str) -> TaskSpec:
        requests.append(request)
        return plan_request(request, None)

    start_run(tmp_path / "out", CONFIG, request="Erstelle 200 Bilder von Katzen und Hunden", planner=planner,
              reviser=lambda spec, message: revise_spec(spec, message, None), on_interrupt=reply)
    assert requests == ["Erstelle 200 Bilder von Katzen und Hunden", "200 images of cats and dogs"]
    assert shown[0]["spec"]["questions"][0]["source"] == "language"
    assert shown[1]["spec"]["objects"][0]["name"] == "cat" and shown[1]["questions"] == []


@pytest.mark.parametrize(
    ("about", "refused"), [("task", True), ("format", True), ("style", False), ("class", False)]
)
def test_yes_refuses_only_an_undeliverable_task_or_format(tmp_path: Path, about: str, refused: bool) -> None:
    notice = Notice(kind="cannot_deliver", text="keypoints", reason="no joints are known", about=about)
    spec = SMALL.model_copy(update={"notices": [notice]})
    if refused:
        with pytest.raises(UserInputError, match=r"^cannot deliver keypoints \(no joints are known\)") as caught:
            start_run(tmp_path / "out", CONFIG, request="cups", planner=lambda request: spec, auto_approve=True)
        assert "\n" not in str(caught.value)
    else:
        assert start_run(tmp_path / "out", CONFIG, request="cups", planner=lambda request: spec,
                         auto_approve=True).kept == 2


def test_not_understood_words_do_not_stop_a_yes_run(tmp_path: Path) -> None:
    spec = SMALL.model_copy(update={"notices": [Notice(kind="not_understood", text="flurbish")]})
    assert start_run(tmp_path / "out", CONFIG, request="cups", planner=lambda request: spec,
                     auto_approve=True).kept == 2


def test_cli_generate_yes_with_keypoints_exits_2_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "synthloop.agent.cli", "generate", "4 images of cups with keypoints, 64x64",
         "--out", str(tmp_path / "out"), "--yes"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("error: cannot deliver keypoints") and "Traceback" not in out.stderr
