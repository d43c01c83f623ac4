"""The whole graph: plan → approve → layout → render → annotate → critique → export, with a scripted planner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pycocotools.coco import COCO

from synthloop.agent.config import RunConfig
from synthloop.agent.errors import UserInputError
from synthloop.agent.runner import resume_run, start_run
from synthloop.tools.critic.base import BaseJudge, JudgeInput
from synthloop.tools.types import Decision, ExportFormat, ObjectSpec, Question, Task, TaskSpec, Verdict

SPEC = TaskSpec(
    objects=[ObjectSpec(name="cup", min_count=1, max_count=2), ObjectSpec(name="plate", min_count=0, max_count=2)],
    n_images=12, width=96, height=96, tasks=[Task.detection, Task.instance_segmentation],
    formats=[ExportFormat.coco, ExportFormat.yolo], seed=3, request="a dozen cups and plates",
)
CONFIG = RunConfig(batch_size=5, workers=2)


class ScriptedPlanner:
    """Returns queued specs, records the requests it saw."""

    def __init__(self, *specs: TaskSpec) -> None:
        self.specs = list(specs)
        self.requests: list[str] = []

    def __call__(self, request: str) -> TaskSpec:
        self.requests.append(request)
        return self.specs.pop(0)


def _annotation_bytes(out: Path) -> dict[str, bytes]:
    files = sorted((out / "annotations").glob("*.json")) + sorted((out / "yolo" / "labels").rglob("*.txt"))
    return {str(p.relative_to(out)): p.read_bytes() for p in files}


def test_request_runs_through_the_whole_loop_with_approval(tmp_path: Path) -> None:
    planner = ScriptedPlanner(SPEC)
    asked: list[dict] = []

    def approve(payload: dict) -> dict:
        asked.append(payload)
        return {"action": "approve"}

    summary = start_run(tmp_path / "out", CONFIG, request="a dozen cups and plates", planner=planner,
                        on_interrupt=approve)
    assert planner.requests == ["a dozen cups and plates"]
    assert len(asked) == 1 and asked[0]["kind"] == "approve" and asked[0]["spec"]["n_images"] == 12
    assert summary.exported and summary.kept == 12
    coco_images = sum(len(COCO(str(f)).getImgIds()) for f in (tmp_path / "out" / "annotations").glob("*.json"))
    assert coco_images == 12
    manifest = (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    assert len(manifest) == 12 and len({json.loads(line)["id"] for line in manifest}) == 12
    assert json.loads((tmp_path / "out" / "spec.json").read_text())["n_images"] == 12


def test_a_question_is_answered_then_planned_again(tmp_path: Path) -> None:
    unclear = SPEC.model_copy(update={"questions": [Question(text="Which objects should the images contain?")]})
    planner = ScriptedPlanner(unclear, SPEC)
    replies = iter([{"action": "answer", "text": "cups and plates"}, {"action": "approve"}])
    summary = start_run(tmp_path / "out", CONFIG, request="some images", planner=planner,
                        on_interrupt=lambda payload: next(replies))
    assert planner.requests == ["some images", "some images cups and plates"]
    assert summary.kept == 12


def test_cancel_ends_the_run_without_generating(tmp_path: Path) -> None:
    summary = start_run(tmp_path / "out", CONFIG, request="cups", planner=ScriptedPlanner(SPEC),
                        on_interrupt=lambda payload: {"action": "cancel"})
    assert summary.cancelled and summary.kept == 0 and not (tmp_path / "out" / "images").exists()


def test_auto_approve_refuses_a_spec_with_an_open_question(tmp_path: Path) -> None:
    unclear = SPEC.model_copy(update={"questions": [Question(text="Which objects should the images contain?")]})
    with pytest.raises(UserInputError, match="Which objects"):
        start_run(tmp_path / "out", CONFIG, request="some images", planner=ScriptedPlanner(unclear),
                  auto_approve=True)


def test_same_spec_and_seed_give_byte_identical_annotations(tmp_path: Path) -> None:
    start_run(tmp_path / "a", CONFIG, spec=SPEC, auto_approve=True)
    start_run(tmp_path / "b", RunConfig(batch_size=3, workers=1), spec=SPEC, auto_approve=True)
    first, second = _annotation_bytes(tmp_path / "a"), _annotation_bytes(tmp_path / "b")
    assert first and first == second
    other = SPEC.model_copy(update={"seed": 4})
    start_run(tmp_path / "c", CONFIG, spec=other, auto_approve=True)
    assert _annotation_bytes(tmp_path / "c") != first


class RejectOddFirstAttempts(BaseJudge):
    """A judge that rejects the first attempt of every odd sample index (to exercise the repair loop)."""

    id = "test.reject_odd"

    def judge(self, item: JudgeInput) -> Verdict:
        bad = item.sample.index % 2 == 1 and item.sample.attempt == 0
        return Verdict(judge=self.id, decision=Decision.reject if bad else Decision.accept,
                       reasons=["odd first attempt"] if bad else [])


def test_rejected_samples_are_retried_and_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from synthloop.agent import backends

    original = backends.make_judges
    monkeypatch.setattr("synthloop.agent.runner.make_judges",
                        lambda config, dup, **kw: [*original(config, dup, **kw), RejectOddFirstAttempts()])
    summary = start_run(tmp_path / "out", CONFIG, spec=SPEC, auto_approve=True)
    assert summary.kept == 12 and summary.rejected == 6
    rows = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == [1, 3, 5, 7, 9, 11]
    assert all("test.reject_odd: odd first attempt" in r["reasons"] for r in rows)
    assert all((tmp_path / "out" / r["image_path"]).is_file() for r in rows)
    kept_attempts = {json.loads(line)["index"]: json.loads(line)["attempt"]
                     for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()}
    assert kept_attempts[1] == 1 and kept_attempts[2] == 0


class RejectEverything(BaseJudge):
    id = "test.reject_all"

    def judge(self, item: JudgeInput) -> Verdict:
        return Verdict(judge=self.id, decision=Decision.reject, reasons=["no"])


def test_attempt_budget_bounds_the_repair_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("synthloop.agent.runner.make_judges", lambda config, dup, **kw: [RejectEverything()])
    spec = SPEC.model_copy(update={"n_images": 4})
    summary = start_run(tmp_path / "out", CONFIG, spec=spec, auto_approve=True)
    assert summary.kept == 0 and summary.exported
    assert summary.attempts == 12  # n_images × max_total_attempts_factor (3.0)
    assert "attempt budget exhausted" in summary.stop_reason


class Crash(RuntimeError):
    pass


def test_a_killed_run_resumes_to_the_same_dataset(tmp_path: Path) -> None:
    start_run(tmp_path / "whole", CONFIG, spec=SPEC, auto_approve=True)

    kept: list[str] = []

    def crash_after_seven(event: str, data: dict) -> None:
        if event == "kept":
            kept.append(str(data["id"]))
            if len(kept) == 7:
                raise Crash("killed")

    with pytest.raises(Crash):
        start_run(tmp_path / "cut", CONFIG, spec=SPEC, auto_approve=True, progress=crash_after_seven)
    summary = resume_run(tmp_path / "cut")
    assert summary.kept == 12 and summary.exported
    assert _annotation_bytes(tmp_path / "cut") == _annotation_bytes(tmp_path / "whole")
    manifest_ids = [json.loads(line)["id"] for line in (tmp_path / "cut" / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest_ids) == len(set(manifest_ids)) == 12
    images = sorted(p.name for p in (tmp_path / "cut" / "images").rglob("*.png"))
    assert images == sorted(p.name for p in (tmp_path / "whole" / "images").rglob("*.png"))


def test_conversational_edits_are_shown_again_before_running(tmp_path: Path) -> None:
    seen: list[dict] = []

    def reviser(spec: TaskSpec, message: str) -> TaskSpec:
        assert message == "make it 4"
        return spec.model_copy(update={"n_images": 4})

    replies = iter([{"action": "message", "text": "make it 4"}, {"action": "approve"}])

    def reply(payload: dict) -> dict:
        seen.append(payload)
        return next(replies)

    summary = start_run(tmp_path / "out", CONFIG, request="cups", planner=ScriptedPlanner(SPEC), reviser=reviser,
                        on_interrupt=reply)
    assert [p["spec"]["n_images"] for p in seen] == [12, 4]
    assert summary.kept == 4


def test_a_hand_edited_spec_is_validated_and_shown_again(tmp_path: Path) -> None:
    edited = SPEC.model_copy(update={"n_images": 3}).model_dump(mode="json")
    replies = iter([{"action": "edit", "spec": {**edited, "n_images": -1}}])
    with pytest.raises(UserInputError, match="edited spec is invalid"):
        start_run(tmp_path / "bad", CONFIG, request="cups", planner=ScriptedPlanner(SPEC),
                  on_interrupt=lambda payload: next(replies))
    replies = iter([{"action": "edit", "spec": edited}, {"action": "approve"}])
    summary = start_run(tmp_path / "out", CONFIG, request="cups", planner=ScriptedPlanner(SPEC),
                        on_interrupt=lambda payload: next(replies))
    assert summary.kept == 3


def test_stateful_critics_are_rebuilt_from_kept_records(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from synthloop.agent.runner import build_deps
    from synthloop.agent.store import restore_from_checkpoint
    from synthloop.tools.critic.rules import ClassBalanceJudge

    start_run(tmp_path / "out", CONFIG, spec=SPEC, auto_approve=True)
    rows = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    visible = sum(1 for row in rows for inst in row["annotation"]["instances"] if inst["area"] > 0)
    with ThreadPoolExecutor(1) as pool:
        deps = build_deps(tmp_path / "out", CONFIG, planner=ScriptedPlanner(), auto_approve=True, progress=None,
                          executor=pool)
    restore_from_checkpoint(deps, in_flight=[rows[-1]])  # as if the last sample's step had not finished
    balance = next(j for j in deps.judges if isinstance(j, ClassBalanceJudge))
    last = sum(1 for inst in rows[-1]["annotation"]["instances"] if inst["area"] > 0)
    assert sum(balance.counts.values()) == visible - last
    assert len(deps.duplicates) == 11
    assert not (tmp_path / "out" / ".work" / "kept" / f"{rows[-1]['id']}.json").exists()
