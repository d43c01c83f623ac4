"""Edit verdicts become concrete, bounded repairs, recorded in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthloop.agent.config import RunConfig
from synthloop.agent.runner import start_run
from synthloop.tools.critic.base import BaseJudge, JudgeInput
from synthloop.tools.critic.repair import drop_instances, parse_fix, plan_repair
from synthloop.tools.types import Annotation, Decision, Instance, ObjectSpec, Relation, TaskSpec, Verdict

SPEC = TaskSpec(
    objects=[ObjectSpec(name="cup", min_count=1, max_count=2), ObjectSpec(name="plate", min_count=0, max_count=2)],
    n_images=8, width=96, height=96, seed=5, tasks=["detection", "instance_segmentation"],
)


@pytest.mark.parametrize(
    ("fix", "kind", "instances"),
    [
        ("drop annotation 3", "drop_instances", (3,)),
        ("Remove instances 1, 4 and 6", "drop_instances", (1, 4, 6)),
        ("delete boxes 2,3", "drop_instances", (2, 3)),
        ("re-render with softer light", "rerender", ()),
        ("move the cup away from the plate", "relayout", ()),
        ("objects overlap too much", "relayout", ()),
        (None, "rerender", ()),
    ],
)
def test_parse_fix(fix: str | None, kind: str, instances: tuple[int, ...]) -> None:
    action = parse_fix(fix)
    assert (action.kind, action.instances) == (kind, instances)


def test_plan_repair_merges_drops_and_prefers_relayout() -> None:
    drop_a = Verdict(judge="a", decision="edit", fix="drop annotation 1")
    drop_b = Verdict(judge="b", decision="edit", fix="drop annotation 4")
    move = Verdict(judge="c", decision="edit", fix="move the fork")
    accept = Verdict(judge="d", decision="accept")
    merged = plan_repair([drop_a, accept, drop_b])
    assert merged.kind == "drop_instances" and merged.instances == (1, 4)
    assert "a: drop annotation 1" in merged.describe()
    assert plan_repair([drop_a, move]).kind == "relayout"


def test_drop_instances_reindexes_relations() -> None:
    inst = [Instance(category="cup", bbox=(0, 0, 4, 4), area=16) for _ in range(3)]
    relations = [Relation(subject=0, predicate="left of", object=2), Relation(subject=1, predicate="above", object=2)]
    out = drop_instances(Annotation(instances=inst, relations=relations), (1,))
    assert len(out.instances) == 2
    assert [(r.subject, r.predicate, r.object) for r in out.relations] == [(0, "left of", 1)]
    with pytest.raises(ValueError, match="out of range"):
        drop_instances(Annotation(instances=inst), (5,))


class DropPlates(BaseJudge):
    """Asks to drop every plate annotation (as a detector judge would for boxes on nothing)."""

    id = "test.drop_plates"

    def judge(self, item: JudgeInput) -> Verdict:
        instances = item.sample.annotation.instances if item.sample.annotation else []
        plates = [i for i, inst in enumerate(instances) if inst.category == "plate"]
        if not plates:
            return Verdict(judge=self.id, decision=Decision.accept)
        return Verdict(judge=self.id, decision=Decision.edit, reasons=["plates are not wanted"],
                       fix="drop annotations " + ", ".join(map(str, plates)))


class RerenderFirstAttempt(BaseJudge):
    id = "test.rerender"

    def judge(self, item: JudgeInput) -> Verdict:
        if item.sample.attempt == 0 and item.sample.index == 2:
            return Verdict(judge=self.id, decision=Decision.edit, reasons=["too dark"], fix="re-render brighter")
        return Verdict(judge=self.id, decision=Decision.accept)


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _add_judge(monkeypatch: pytest.MonkeyPatch, extra) -> None:
    from synthloop.agent import backends

    original = backends.make_judges
    monkeypatch.setattr("synthloop.agent.runner.make_judges",
                        lambda config, dup, **kw: [*original(config, dup, **kw), extra])


def test_drop_edits_are_applied_in_place_and_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _add_judge(monkeypatch, DropPlates())
    summary = start_run(tmp_path / "out", RunConfig(batch_size=4), spec=SPEC, auto_approve=True)
    assert summary.kept == 8 and summary.rejected == 0
    rows = _manifest(tmp_path / "out")
    assert all(inst["category"] != "plate" for row in rows for inst in row["annotation"]["instances"])
    repaired = [row for row in rows if row["repairs"]]
    assert repaired, "the seeded layouts contain plates, so some samples must have been repaired"
    assert all(row["repairs"][0].startswith("drop_instances") and "test.drop_plates" in row["repairs"][0]
               for row in repaired)
    coco = json.loads((tmp_path / "out" / "annotations" / "instances_train.json").read_text())
    plate_id = next(c["id"] for c in coco["categories"] if c["name"] == "plate")
    assert all(a["category_id"] != plate_id for a in coco["annotations"])


def test_rerender_keeps_the_layout_and_changes_the_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _add_judge(monkeypatch, RerenderFirstAttempt())
    summary = start_run(tmp_path / "out", RunConfig(batch_size=4), spec=SPEC, auto_approve=True)
    assert summary.kept == 8 and summary.rejected == 1
    rejected = json.loads((tmp_path / "out" / "rejected.jsonl").read_text().splitlines()[0])
    kept = next(row for row in _manifest(tmp_path / "out") if row["index"] == 2)
    assert kept["attempt"] == 1 and kept["layout"] == rejected["layout"] and kept["seed"] != rejected["seed"]
    assert kept["repairs"] == ["rerender (test.rerender: re-render brighter) after attempt 0"]
