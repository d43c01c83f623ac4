"""Instruction edits as repairs (InstructDiffusion): an `edit` verdict that asks for an image change is applied by
the renderer's editor, the edited image is annotated again and judged once more, and the pair is exported.

Toy backends keep this on the CPU in seconds: `Painter` draws grey boxes on a dark background without an instance
map (like a diffusion model) and edits by lifting the red channel (its edit depends on the seed); `RedProbe`
labels boxes with the mean red inside them (a model annotator: its labels follow the pixels); `RedCups` asks
for "make the cup red" while a cup's box is not red. The diffusion editor itself runs in test_diffusion_loop.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw

from synthloop.agent.backends import make_judges
from synthloop.agent.config import RunConfig, load_config
from synthloop.agent.runner import resume_run, start_run
from synthloop.tools.annotate.base import BaseAnnotator
from synthloop.tools.annotate.registry import ANNOTATORS
from synthloop.tools.backend import Capabilities
from synthloop.tools.critic.base import BaseJudge, JudgeInput
from synthloop.tools.critic.duplicates import DuplicateIndex, pixel_sha256
from synthloop.tools.critic.registry import JUDGES
from synthloop.tools.critic.repair import parse_fix, plan_repair
from synthloop.tools.export.validate import validate_dataset
from synthloop.tools.geometry import scale_box
from synthloop.tools.render.base import BaseRenderer, RenderResult, can_edit_images, edit_provenance
from synthloop.tools.render.compositor import CompositorRenderer
from synthloop.tools.render.registry import RENDERERS
from synthloop.tools.seeding import derive_seed
from synthloop.tools.types import Annotation, Decision, Instance, Layout, ObjectSpec, TaskSpec, Verdict

SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=1, max_count=2), ObjectSpec(name="plate", min_count=0,
                                                                                      max_count=1)],
                n_images=6, width=80, height=64, seed=11, tasks=["detection"])
RED = 0.75  # a cup whose box's mean red is below this (of 255) is "not red"


# --- toy backends -------------------------------------------------------------------------------------------

def _pixel_box(obj: Any, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = scale_box(obj.box, width, height)
    return round(x0), round(y0), round(x1), round(y1)


class Painter(BaseRenderer):
    """Grey boxes (a grey per object) on a dark seeded background; no instance map. Edits lift the red channel
    to at least 200 plus a seeded amount."""

    id = "test.painter"
    capabilities = Capabilities(edits_images=True)
    edits: ClassVar[list[tuple[str, int]]] = []

    def render(self, layout, spec, seed, *, prompt=""):  # type: ignore[no-untyped-def]
        rng = np.random.default_rng(seed)
        image = Image.fromarray(rng.integers(0, 40, (layout.height, layout.width, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(image)
        for k, obj in sorted(enumerate(layout.objects), key=lambda pair: pair[1].depth):
            x0, y0, x1, y1 = _pixel_box(obj, layout.width, layout.height)
            grey = 110 + 30 * (k % 4)
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=(grey, grey, grey))
        return RenderResult(image=np.asarray(image), backend={"renderer": self.id, "model": "painter"})

    def edit_image(self, image: np.ndarray, instruction: str, seed: int) -> np.ndarray:
        type(self).edits.append((instruction, seed))
        lift = 200 + int(np.random.default_rng(seed).integers(0, 50))
        edited = image.copy()
        edited[..., 0] = np.maximum(edited[..., 0], lift)
        return edited

    def edit_provenance(self) -> dict[str, str]:
        return {"editor": "test.tint", "model": "tint-v1"}


class PainterWithoutEditor(Painter):
    """The same pixels, no edit capability."""

    id = "test.painter_plain"
    capabilities = Capabilities()


class ExactPainter(Painter):
    """The same pixels and an exact instance map (read by the exact annotator), and the edit capability."""

    id = "test.painter_exact"
    capabilities = Capabilities(edits_images=True, exact_labels=True, provides_masks=True)

    def render(self, layout, spec, seed, *, prompt=""):  # type: ignore[no-untyped-def]
        result = super().render(layout, spec, seed)
        labels = np.zeros((layout.height, layout.width), dtype=np.int32)
        for k, obj in sorted(enumerate(layout.objects), key=lambda pair: pair[1].depth):
            x0, y0, x1, y1 = _pixel_box(obj, layout.width, layout.height)
            labels[y0:y1, x0:x1] = k + 1
        result.instance_map = labels
        result.amodal_areas = [max(1, int((labels == k + 1).sum())) for k in range(len(layout.objects))]
        return result


def mean_red(image: np.ndarray, bbox: tuple[float, float, float, float]) -> float:
    x, y, w, h = (round(v) for v in bbox)
    return float(image[y:y + h, x:x + w, 0].mean()) / 255.0 if w > 0 and h > 0 else 0.0


class RedProbe(BaseAnnotator):
    """A model annotator (labels not exact): layout boxes, each scored by the mean red inside it."""

    id = "test.red_probe"
    capabilities = Capabilities()

    def annotate(self, layout, render, spec):  # type: ignore[no-untyped-def]
        instances = []
        for k, obj in enumerate(layout.objects):
            x0, y0, x1, y1 = _pixel_box(obj, layout.width, layout.height)
            bbox = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
            instances.append(Instance(category=obj.category, bbox=bbox, area=int((x1 - x0) * (y1 - y0)),
                                      source=self.id, layout_index=k,
                                      score=round(mean_red(render.image, bbox), 4)))
        return Annotation(instances=instances)


class RedCups(BaseJudge):
    """Asks for red cups, looking at the pixels."""

    id = "test.red_cups"

    def judge(self, item: JudgeInput) -> Verdict:
        annotation = item.sample.annotation
        pale = [i for i, inst in enumerate(annotation.instances if annotation else [])
                if inst.category == "cup" and mean_red(item.image, inst.bbox) < RED]
        if not pale:
            return Verdict(judge=self.id, decision=Decision.accept)
        return Verdict(judge=self.id, decision=Decision.edit, reasons=[f"cups {pale} are not red"],
                       fix="make the cup red")


class Stubborn(BaseJudge):
    """Asks sample 1's first attempt to be brightened, whatever its pixels (an edit that never satisfies)."""

    id = "test.stubborn"

    def judge(self, item: JudgeInput) -> Verdict:
        if item.sample.index == 1 and item.sample.attempt == 0:
            return Verdict(judge=self.id, decision=Decision.edit, reasons=["too dark"], fix="brighten the image")
        return Verdict(judge=self.id, decision=Decision.accept)


@pytest.fixture
def toys() -> Iterator[None]:
    added = [(RENDERERS, cls) for cls in (Painter, PainterWithoutEditor, ExactPainter)]
    added += [(ANNOTATORS, RedProbe), (JUDGES, RedCups), (JUDGES, Stubborn)]
    for registry, cls in added:
        registry.register(cls.id, cls)
    Painter.edits.clear()
    yield
    for registry, cls in added:
        registry.unregister(cls.id)


def _config(renderer: str = Painter.id, annotator: str = RedProbe.id, judge: str = RedCups.id) -> RunConfig:
    # The boundary judge (on by default for model labels) is left out: these runs are about the edits.
    return RunConfig(renderer=renderer, annotator=annotator, judges=[judge], boundary_evidence=False, batch_size=4)


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _layout(row: dict[str, Any]) -> Layout:
    return Layout.model_validate(row["layout"])


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".work" not in p.parts and p.name != "card.md"}


# --- reading instructions -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("fix", "kind", "instruction"), [
    ("make the cup red", "edit_image", "make the cup red"),
    ("Brighten the image.", "edit_image", "Brighten the image"),
    ("remove the fork", "edit_image", "remove the fork"),
    ("please add a shadow under the plate", "edit_image", "please add a shadow under the plate"),
    ("remove annotation 2", "drop_instances", ""),
    ("remove the annotations", "rerender", ""),  # about the labels, not the pixels
    ("re-render with softer light", "rerender", ""),
    ("regenerate the image", "rerender", ""),
    ("move the cup away from the plate", "relayout", ""),
    ("the image is too dark", "rerender", ""),  # a complaint, not an instruction
    (None, "rerender", ""),
])
def test_instructions_about_the_image_become_edits(fix: str | None, kind: str, instruction: str) -> None:
    action = parse_fix(fix)
    assert (action.kind, action.instruction) == (kind, instruction)


def test_plan_repair_edits_only_with_an_editor() -> None:
    red = Verdict(judge="vlm", decision="edit", fix="make the cup red")
    bright = Verdict(judge="light", decision="edit", fix="brighten the image")
    drop = Verdict(judge="cert", decision="edit", fix="drop annotation 1")
    again = Verdict(judge="q", decision="edit", fix="re-render")
    move = Verdict(judge="m", decision="edit", fix="move the fork")
    edit = plan_repair([red, bright, red], can_edit=True)
    assert (edit.kind, edit.instruction) == ("edit_image", "make the cup red; brighten the image")
    assert edit.describe() == ('edit_image "make the cup red; brighten the image" (vlm: make the cup red; '
                               'light: brighten the image; vlm: make the cup red)')
    assert plan_repair([red, drop], can_edit=True).kind == "edit_image"  # the edited image is labelled again
    assert plan_repair([red, again], can_edit=True).kind == "rerender"
    assert plan_repair([red, move], can_edit=True).kind == "relayout"
    assert plan_repair([drop], can_edit=True).kind == "drop_instances"
    assert plan_repair([red]).kind == "rerender", "without an editor an image change is a re-render"


def test_renderers_edit_only_when_they_declare_it() -> None:
    compositor = CompositorRenderer()
    assert not compositor.capabilities.edits_images and not can_edit_images(compositor)
    with pytest.raises(NotImplementedError, match="cannot edit"):
        compositor.edit_image(np.zeros((8, 8, 3), np.uint8), "make it red", 0)
    assert edit_provenance(compositor) == {"editor": "compositor"}
    assert can_edit_images(Painter()) and not can_edit_images(PainterWithoutEditor())


# --- judges for model labels ----------------------------------------------------------------------------------

def _ids(config: RunConfig, exact: bool) -> list[str]:
    return [judge.id for judge in make_judges(config, DuplicateIndex(), exact_labels=exact)]


def test_model_labels_turn_on_the_certificate_and_boundary_judges() -> None:
    assert RunConfig().boundary_evidence is None
    model = _ids(RunConfig(), exact=False)
    assert "rules.certificate" in model and "rules.boundary" in model
    exact = _ids(RunConfig(), exact=True)
    assert "rules.certificate" not in exact and "rules.boundary" not in exact
    assert make_judges(RunConfig(), DuplicateIndex())[-1].id == exact[-1], "exact labels are the default"
    assert "rules.boundary" not in _ids(RunConfig(boundary_evidence=False), exact=False)
    assert "rules.boundary" in _ids(RunConfig(boundary_evidence=True), exact=True)
    own = RunConfig(judges=[{"backend": "rules.certificate", "min_agreement": 0.2}])
    certificates = [j for j in make_judges(own, DuplicateIndex(), exact_labels=False) if j.id == "rules.certificate"]
    assert len(certificates) == 1 and certificates[0].min_agreement == 0.2, "a configured one replaces the default"


@pytest.mark.parametrize(("text", "value"), [("boundary_evidence: true\n", True), ("boundary_evidence: false\n", False),
                                             ("boundary_evidence: null\n", None), ("batch_size: 4\n", None)])
def test_old_configs_keep_their_boundary_setting(tmp_path: Path, text: str, value: bool | None) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    config = load_config(path)
    assert config.boundary_evidence is value
    assert RunConfig.model_validate(yaml.safe_load(yaml.safe_dump(config.model_dump(mode="json")))) == config


# --- the loop -------------------------------------------------------------------------------------------------

def test_an_edit_verdict_is_applied_by_the_editor_and_judged_again(tmp_path: Path, toys: None) -> None:
    out = tmp_path / "out"
    summary = start_run(out, _config(), spec=SPEC, auto_approve=True)
    assert (summary.kept, summary.rejected) == (SPEC.n_images, 0), "every edit satisfied the critic in place"
    assert validate_dataset(out) == []
    rows = _rows(out / "manifest.jsonl")
    edited = [row for row in rows if row["repairs"]]
    assert edited, "grey cups are not red: the judge must have asked for edits"
    pairs = _rows(out / "edits" / "edits.jsonl")
    assert [p["id"] for p in pairs] == [row["id"] for row in edited]
    painter = Painter()
    for row, pair in zip(edited, pairs, strict=True):
        assert row["repairs"] == ['edit_image "make the cup red" (test.red_cups: make the cup red)']
        seed = derive_seed(row["seed"], "edit")
        assert pair == {"id": row["id"], "split": row["split"], "attempt": 0, "instruction": "make the cup red",
                        "seed": seed, "source": f"edits/{row['id']}-a0-src.png",
                        "result": f"edits/{row['id']}-a0-dst.png", "image": row["image_path"],
                        "editor": {"editor": "test.tint", "model": "tint-v1"},
                        "causes": ["test.red_cups: make the cup red"]}
        assert row["render_info"]["edits"][0]["seed"] == seed and row["backend"]["editor"] == "tint-v1"
        source = painter.render(_layout(row), SPEC, row["seed"]).image  # the render of the sample's own seed
        assert np.array_equal(_pixels(out / pair["source"]), source)
        result = _pixels(out / pair["result"])
        assert np.array_equal(result, painter.edit_image(source, "make the cup red", seed))
        assert np.array_equal(_pixels(out / row["image_path"]), result), "the dataset holds the edited image"
        assert row["image_sha256"] == pixel_sha256(result)
        # Annotated again, through the engine, on the edited pixels.
        for inst in row["annotation"]["instances"]:
            assert inst["score"] == round(mean_red(result, inst["bbox"]), 4) >= RED
        final = [v for v in row["verdicts"] if v["judge"] == RedCups.id]
        assert [v["decision"] for v in final] == ["accept"], "judged once more, on the edited image"
    assert all(not row["repairs"] and "edits" not in row["render_info"] for row in rows if row not in edited)


def test_edits_are_deterministic(tmp_path: Path, toys: None) -> None:
    start_run(tmp_path / "a", _config(), spec=SPEC, auto_approve=True)
    start_run(tmp_path / "b", _config(), spec=SPEC, auto_approve=True)
    first, second = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert any(name.startswith("edits/") for name in first)
    assert first == second, "same spec and seed → the same edits, images and manifest, byte for byte"


class Crash(Exception):
    pass


def test_a_run_killed_after_an_edit_resumes_to_the_same_bytes(tmp_path: Path, toys: None) -> None:
    start_run(tmp_path / "whole", _config(), spec=SPEC, auto_approve=True)
    kept: list[str] = []

    def crash_after_an_edit(event: str, data: dict) -> None:
        if event == "kept":
            kept.append(str(data["id"]))
            if (tmp_path / "cut" / "edits").is_dir() and len(kept) >= 2:
                raise Crash("killed")

    with pytest.raises(Crash):
        start_run(tmp_path / "cut", _config(), spec=SPEC, auto_approve=True, progress=crash_after_an_edit)
    summary = resume_run(tmp_path / "cut")
    assert summary.kept == SPEC.n_images
    whole, cut = _tree(tmp_path / "whole"), _tree(tmp_path / "cut")
    assert any(name.startswith("edits/") for name in whole)
    assert cut == whole, "edits made again after the resume are the same edits"


def test_without_an_editor_an_image_instruction_is_a_rerender(tmp_path: Path, toys: None) -> None:
    out = tmp_path / "out"
    summary = start_run(out, _config(renderer=PainterWithoutEditor.id), spec=SPEC, auto_approve=True)
    assert Painter.edits == [] and not (out / "edits").exists()
    rejected = _rows(out / "rejected.jsonl")
    assert rejected and summary.rejected == len(rejected)
    retried = {row["index"]: row for row in _rows(out / "manifest.jsonl") if row["attempt"] > 0}
    for row in rejected:
        if row["index"] in retried and retried[row["index"]]["attempt"] == row["attempt"] + 1:
            kept = retried[row["index"]]
            assert kept["layout"] == row["layout"] and kept["seed"] != row["seed"]
            assert kept["repairs"][-1] == f"rerender (test.red_cups: make the cup red) after attempt {row['attempt']}"


def test_an_edit_the_critic_still_refuses_is_followed_by_a_rerender(tmp_path: Path, toys: None) -> None:
    out = tmp_path / "out"
    summary = start_run(out, _config(judge=Stubborn.id), spec=SPEC, auto_approve=True)
    assert (summary.kept, summary.rejected) == (SPEC.n_images, 1)
    assert [instruction for instruction, _ in Painter.edits] == ["brighten the image"]
    [rejected] = _rows(out / "rejected.jsonl")
    kept = next(row for row in _rows(out / "manifest.jsonl") if row["index"] == 1)
    assert (rejected["attempt"], kept["attempt"]) == (0, 1)
    assert kept["layout"] == rejected["layout"] and kept["seed"] != rejected["seed"]
    assert kept["repairs"] == ['edit_image "brighten the image" (test.stubborn: brighten the image)',
                               "rerender after attempt 0"]
    assert "edits" not in kept["render_info"]
    source = Painter().render(_layout(rejected), SPEC, rejected["seed"]).image
    edited = Painter().edit_image(source, "brighten the image", derive_seed(rejected["seed"], "edit"))
    assert np.array_equal(_pixels(out / rejected["image_path"]), edited), "the refused attempt's image is the edit"
    assert not (out / "edits").exists(), "pairs of refused edits are not exported"


def test_an_exact_annotator_keeps_the_rerender(tmp_path: Path, toys: None) -> None:
    """An edit would leave the exact annotator's instance map behind the pixels: the loop re-renders instead."""
    out = tmp_path / "out"
    config = _config(renderer=ExactPainter.id, annotator="exact", judge=Stubborn.id)
    summary = start_run(out, config, spec=SPEC, auto_approve=True)
    assert Painter.edits == [] and (summary.kept, summary.rejected) == (SPEC.n_images, 1)
    assert not (out / "edits").exists()
    kept = next(row for row in _rows(out / "manifest.jsonl") if row["index"] == 1)
    assert kept["attempt"] == 1
    assert kept["repairs"] == ["rerender (test.stubborn: brighten the image) after attempt 0"]
