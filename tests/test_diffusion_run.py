"""`synthloop run` with the diffusion renderer (a tiny local model, CPU): a valid dataset whose manifest names
model, hash and mode; config mistakes are one `error:` line with exit code 2.

`control: refine` passes the composite's exact instance map through, so `annotator: exact` labels it; the
other modes need a model annotator (SAM / detector), and pairing them with `exact` is refused at start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import diffusion_tiny

from synthloop.tools.render.diffusion.model_files import folder_hash

SPEC = {"objects": [{"name": "cup", "min_count": 1, "max_count": 2}, {"name": "plate", "min_count": 0, "max_count": 1}],
        "n_images": 4, "width": 64, "height": 64, "tasks": ["detection", "instance_segmentation"],
        "formats": ["coco", "yolo"], "scene": "kitchen table", "seed": 3}


def synthloop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "synthloop.agent.cli", *args], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return diffusion_tiny.tiny_sd(tmp_path_factory.mktemp("models") / "tiny-sd")


def _files(tmp_path: Path, renderer: dict[str, Any], annotator: str = "exact") -> tuple[Path, Path]:
    spec, config = tmp_path / "spec.yaml", tmp_path / "config.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    config.write_text(yaml.safe_dump({"renderer": {"backend": "diffusion", **renderer}, "annotator": annotator,
                                      "batch_size": 4}))
    return spec, config


def test_refine_run_gives_a_valid_dataset_with_model_provenance(model: Path, tmp_path: Path) -> None:
    spec, config = _files(tmp_path, {"model": str(model), "control": "refine", "steps": 2, "batch_size": 2,
                                     "composite": "compositor"})
    out = tmp_path / "out"
    result = synthloop("run", str(spec), "--out", str(out), "--config", str(config))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for row in rows:
        assert row["backend"]["renderer"] == "diffusion" and row["backend"]["mode"] == "refine"
        assert row["backend"]["model"] == str(model)
        assert row["backend"]["revision"] == f"sha256:{folder_hash(model.resolve())}"
        info = row["render_info"]["diffusion"]
        assert (info["steps"], info["guidance"], info["strength"]) == (2, 7.5, 0.5)
        assert info["seed"] == row["seed"], "the torch seed is the sample's seed (seed_policy request)"
        assert {i["source"] for i in row["annotation"]["instances"]} == {"exact"}
    validated = synthloop("validate", str(out))
    assert validated.returncode == 0, validated.stdout + validated.stderr


@pytest.mark.parametrize(("renderer", "annotator", "needle"), [
    ({"control": "refine", "steps": 0}, "exact", "steps"),
    ({"control": "none"}, "exact", "does not provide"),
])
def test_config_mistakes_are_one_error_line(model: Path, tmp_path: Path, renderer: dict[str, Any], annotator: str,
                                            needle: str) -> None:
    spec, config = _files(tmp_path, {"model": str(model), **renderer}, annotator)
    result = synthloop("run", str(spec), "--out", str(tmp_path / "out"), "--config", str(config))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
