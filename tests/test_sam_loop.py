"""The whole loop on a renderer that does not know its masks (like a diffusion model) with the SAM annotator: a
tiny random SAM labels the images, the run keeps them with certified masks, and the export is a valid dataset."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from synthloop.agent.config import RunConfig
from synthloop.agent.errors import UserInputError
from synthloop.agent.runner import start_run
from synthloop.tools.backend import Capabilities
from synthloop.tools.export.validate import validate_dataset
from synthloop.tools.render.base import BaseRenderer, RenderResult
from synthloop.tools.render.registry import RENDERERS
from synthloop.tools.types import ObjectSpec, Task, TaskSpec

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("torch")
pytest.importorskip("transformers")

from synthloop.evals.tiny_sam import tiny_sam

SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=1, max_count=2), ObjectSpec(name="plate", min_count=0,
                                                                                      max_count=1)],
                n_images=4, width=64, height=64, seed=5, difficulty="easy",
                tasks=[Task.detection, Task.instance_segmentation])


class RectanglesRenderer(BaseRenderer):
    """Filled rectangles in the layout boxes over a seeded background, and no instance map."""

    id = "rectangles"
    capabilities = Capabilities()

    def render(self, layout, spec, seed, *, prompt=""):  # type: ignore[no-untyped-def]
        rng = np.random.default_rng(seed)
        image = Image.fromarray(rng.integers(0, 50, (layout.height, layout.width, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(image)
        for obj in sorted(layout.objects, key=lambda o: o.depth):
            x0, y0, x1, y1 = (round(v * s) for v, s in zip(obj.box, (layout.width, layout.height) * 2, strict=True))
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=tuple(int(c) for c in rng.integers(120, 255, 3)))
        return RenderResult(image=np.asarray(image), backend={"renderer": self.id, "model": "rectangles"})


@pytest.fixture
def rectangles() -> Iterator[None]:
    RENDERERS.register(RectanglesRenderer.id, RectanglesRenderer)
    yield
    RENDERERS.unregister(RectanglesRenderer.id)


@pytest.fixture(scope="module")
def sam_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sam(tmp_path_factory.mktemp("sam") / "tiny-sam")


def test_a_maskless_renderer_with_sam_gives_a_valid_dataset(tmp_path: Path, rectangles: None, sam_dir: Path) -> None:
    config = RunConfig(renderer="rectangles", batch_size=4, workers=2,
                       annotator={"backend": "sam", "model": str(sam_dir), "device": "cpu",
                                  "min_predicted_iou": 0.0, "box_margin": 0.1})
    out = tmp_path / "out"
    summary = start_run(out, config, spec=SPEC, auto_approve=True)
    assert summary.kept == SPEC.n_images
    assert validate_dataset(out) == []
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {row["backend"]["annotator"] for row in manifest} == {f"sam:{sam_dir}"}
    instances = [inst for row in manifest for inst in row["annotation"]["instances"]]
    assert instances and all(inst["source"] == "sam" and inst["certificate"] for inst in instances)
    assert all({"layout", "sam_iou"} <= set(inst["certificate"]["sources"]) for inst in instances)
    coco = json.loads((out / "annotations" / "instances_train.json").read_text())
    assert coco["annotations"] and all("certificate" in ann for ann in coco["annotations"])
    assert all(isinstance(ann["segmentation"], dict) for ann in coco["annotations"]), "SAM masks as RLE"


def test_the_exact_annotator_on_a_maskless_renderer_is_refused_at_start_up(tmp_path: Path, rectangles: None) -> None:
    with pytest.raises(UserInputError, match="choose a model annotator"):
        start_run(tmp_path / "out", RunConfig(renderer="rectangles"), spec=SPEC, auto_approve=True)
