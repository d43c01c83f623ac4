"""Diffusion in the loop, on the CPU with tiny random models (tests/diffusion_tiny.py, a tiny SAM): every control
mode with a model annotator gives a dataset `validate` accepts, with model provenance, label certificates and
the checks made for model labels (certificate and boundary judges) on by default; refine with the exact
annotator keeps them off; an `edit` verdict asking for an image change is applied by the InstructPix2Pix
editor (`edit_model`), labelled again by SAM, judged again, and exported as an edit pair.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import diffusion_tiny

from synthloop.agent.config import RunConfig
from synthloop.agent.runner import start_run
from synthloop.evals.tiny_sam import tiny_sam
from synthloop.tools.critic.base import BaseJudge, JudgeInput
from synthloop.tools.critic.registry import JUDGES
from synthloop.tools.export.validate import validate_dataset
from synthloop.tools.render.diffusion.model_files import folder_hash
from synthloop.tools.render.diffusion.options import DiffusionError
from synthloop.tools.render.diffusion.renderer import DiffusionRenderer
from synthloop.tools.seeding import derive_seed
from synthloop.tools.types import Decision, Layout, ObjectSpec, Task, TaskSpec, Verdict

SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=1, max_count=2), ObjectSpec(name="plate", min_count=0,
                                                                                      max_count=1)],
                n_images=3, width=64, height=64, seed=3, scene="kitchen table",
                tasks=[Task.detection, Task.instance_segmentation])
MODEL_LABEL_JUDGES = {"rules.certificate", "rules.boundary"}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {"sd": diffusion_tiny.tiny_sd(root / "sd"), "inpaint": diffusion_tiny.tiny_inpaint(root / "inpaint"),
            "controlnet": diffusion_tiny.tiny_controlnet(root / "controlnet"),
            "pix2pix": diffusion_tiny.tiny_pix2pix(root / "pix2pix"), "sam": tiny_sam(root / "sam")}


def _renderer(models: dict[str, Path], control: str, **extra: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"backend": "diffusion", "model": str(models["inpaint" if control == "inpaint" else "sd"]),
                             "control": control, "steps": 2, "batch_size": 2, "device": "cpu", **extra}
    if control == "controlnet":
        block |= {"controlnet": str(models["controlnet"]), "control_map": "segmentation"}
    if control in ("controlnet", "refine"):
        block["composite"] = "compositor"
    return block


def _sam(models: dict[str, Path]) -> dict[str, Any]:
    return {"backend": "sam", "model": str(models["sam"]), "device": "cpu"}


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_the_edit_model_declares_image_edits(models: dict[str, Path]) -> None:
    plain = DiffusionRenderer(model=str(models["sd"]))
    editing = DiffusionRenderer(model=str(models["sd"]), edit_model=str(models["pix2pix"]), edit_steps=2)
    assert not plain.capabilities.edits_images and editing.capabilities.edits_images
    assert not DiffusionRenderer.capabilities.edits_images, "the class keeps its declared defaults"
    with pytest.raises(DiffusionError, match="edit_steps"):
        DiffusionRenderer(model=str(models["sd"]), edit_model=str(models["pix2pix"]), edit_steps=0)


@pytest.mark.parametrize("control", ["none", "inpaint", "controlnet"])
def test_generated_images_with_sam_labels_make_a_valid_checked_dataset(models: dict[str, Path], control: str,
                                                                       tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = RunConfig(renderer=_renderer(models, control), annotator=_sam(models), batch_size=4)
    summary = start_run(out, config, spec=SPEC, auto_approve=True)
    assert summary.kept > 0
    assert validate_dataset(out) == []
    model = models["inpaint" if control == "inpaint" else "sd"]
    rows = _rows(out / "manifest.jsonl")
    for row in [*rows, *_rows(out / "rejected.jsonl")]:
        assert row["backend"]["renderer"] == "diffusion" and row["backend"]["mode"] == control
        assert row["backend"]["model"] == str(model)
        assert row["backend"]["revision"] == f"sha256:{folder_hash(model.resolve())}"
        assert {v["judge"] for v in row["verdicts"]} >= MODEL_LABEL_JUDGES, "model labels are checked by default"
    instances = [inst for row in rows for inst in row["annotation"]["instances"]]
    assert instances and all(inst["source"] == "sam" and inst["certificate"] for inst in instances)
    assert all({"layout", "sam_iou"} <= set(inst["certificate"]["sources"]) for inst in instances)
    coco = json.loads((out / "annotations" / "instances_train.json").read_text())
    assert all("certificate" in ann for ann in coco["annotations"])


def test_refine_with_exact_labels_keeps_the_model_label_checks_off(models: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = RunConfig(renderer=_renderer(models, "refine"), annotator="exact", batch_size=4)
    summary = start_run(out, config, spec=SPEC, auto_approve=True)
    assert summary.kept > 0 and validate_dataset(out) == []
    for row in _rows(out / "manifest.jsonl"):
        assert row["backend"]["mode"] == "refine"
        assert not MODEL_LABEL_JUDGES & {v["judge"] for v in row["verdicts"]}
        assert {inst["source"] for inst in row["annotation"]["instances"]} == {"exact"}
        assert all(inst["certificate"] for inst in row["annotation"]["instances"])


class AskForRedCups(BaseJudge):
    """A VLM stand-in: asks sample 1 for red cups until the loop has edited it."""

    id = "test.red_cups_please"

    def judge(self, item: JudgeInput) -> Verdict:
        if item.sample.index == 1 and not item.sample.render_info.get("edits"):
            return Verdict(judge=self.id, decision=Decision.edit, reasons=["the cup is not red"],
                           fix="make the cup red")
        return Verdict(judge=self.id, decision=Decision.accept)


@pytest.fixture
def red_cups_judge() -> Iterator[str]:
    JUDGES.register(AskForRedCups.id, AskForRedCups)
    yield AskForRedCups.id
    JUDGES.unregister(AskForRedCups.id)


def test_an_instruction_edit_is_applied_by_instruct_pix2pix(models: dict[str, Path], red_cups_judge: str,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "out"
    renderer = _renderer(models, "none", edit_model=str(models["pix2pix"]), edit_steps=2)
    # The run's own checks stay on; their thresholds are relaxed so the random models' pixels are kept.
    config = RunConfig(renderer=renderer, annotator={**_sam(models), "min_predicted_iou": 0.0}, batch_size=4,
                       judges=[red_cups_judge, {"backend": "rules.certificate", "min_agreement": 0.0}],
                       boundary_evidence=False)
    summary = start_run(out, config, spec=SPEC, auto_approve=True)
    assert validate_dataset(out) == []
    edited = next(row for row in _rows(out / "manifest.jsonl") if row["index"] == 1)
    assert (edited["attempt"], summary.rejected) == (0, 0), "edited in place, not re-rendered"
    assert edited["repairs"] == ['edit_image "make the cup red" (test.red_cups_please: make the cup red)']
    [pair] = _rows(out / "edits" / "edits.jsonl")
    seed = derive_seed(edited["seed"], "edit")
    assert (pair["id"], pair["instruction"], pair["seed"]) == ("000001", "make the cup red", seed)
    assert pair["editor"] == {"editor": "instruct_pix2pix", "model": str(models["pix2pix"]),
                              "revision": f"sha256:{folder_hash(models['pix2pix'].resolve())}"}
    # A fresh renderer reproduces both images: the render from the sample's seed, the edit from the derived seed.
    fresh = DiffusionRenderer(**{k: v for k, v in renderer.items() if k != "backend"})
    source = fresh.render(Layout.model_validate(edited["layout"]), SPEC, edited["seed"], prompt=edited["prompt"]).image
    assert np.array_equal(_pixels(out / pair["source"]), source)
    result = fresh.edit_image(source, "make the cup red", seed)
    assert not np.array_equal(result, source)
    assert np.array_equal(_pixels(out / pair["result"]), result)
    assert np.array_equal(_pixels(out / edited["image_path"]), result), "the dataset holds the edited image"
    assert {inst["source"] for inst in edited["annotation"]["instances"]} == {"sam"}, "labelled again by SAM"
    assert [v["decision"] for v in edited["verdicts"] if v["judge"] == red_cups_judge] == ["accept"]


def test_synthloop_run_with_diffusion_and_sam(models: dict[str, Path], tmp_path: Path) -> None:
    spec, config, out = tmp_path / "spec.yaml", tmp_path / "config.yaml", tmp_path / "out"
    spec.write_text(yaml.safe_dump({**SPEC.model_dump(mode="json"), "n_images": 2, "formats": ["coco", "yolo"]}))
    config.write_text(yaml.safe_dump({"renderer": _renderer(models, "none"), "annotator": _sam(models),
                                      "batch_size": 2}))
    run = [sys.executable, "-m", "synthloop.agent.cli"]
    result = subprocess.run([*run, "run", str(spec), "--out", str(out), "--config", str(config)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    validated = subprocess.run([*run, "validate", str(out)], capture_output=True, text=True, timeout=300)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert {row["backend"]["annotator"] for row in _rows(out / "manifest.jsonl")} == {f"sam:{models['sam']}"}
