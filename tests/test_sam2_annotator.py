"""The SAM 2 annotator over a stand-in `sam2` package with the real one's predictor API (`set_image`, then
`predict(box=N×4, multimask_output)` returning masks, scores and low-res logits, a single box squeezed): one
embedding and one prompt call per image, the best-scored candidate kept, loading errors in one line. The real
package is optional and not installed here; this checks the adapter against its documented interface."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from synthloop.tools.annotate.registry import ANNOTATORS
from synthloop.tools.backend import BackendError
from synthloop.tools.masks import decode_rle
from synthloop.tools.render.base import RenderResult
from synthloop.tools.types import Layout, LayoutObject, ObjectSpec, TaskSpec

pytest.importorskip("torch")

W, H = 60, 40
SPEC = TaskSpec(objects=[ObjectSpec(name="cup")], width=W, height=H)
LAYOUT = Layout(width=W, height=H, seed=0, objects=[LayoutObject(category="cup", box=(0.1, 0.1, 0.5, 0.6)),
                                                    LayoutObject(category="cup", box=(0.6, 0.2, 0.9, 0.9))])
IMAGE = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)


class FakeImagePredictor:
    """Candidate k of box i covers the box shrunk by k pixels; scores favour candidate 1 (the middle one)."""

    loaded: ClassVar[list[tuple[str, Any]]] = []

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls: list[tuple[str, Any]] = []
        self.shape: tuple[int, int] | None = None

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs: Any) -> FakeImagePredictor:
        if model_id == "nobody/none":
            raise OSError("not in the local cache\nsecond line")
        cls.loaded.append(("hub", model_id))
        return cls(model_id)

    def set_image(self, image: np.ndarray) -> None:
        self.calls.append(("set_image", image.shape))
        self.shape = image.shape[:2]

    def predict(self, box: np.ndarray, multimask_output: bool = True, **kwargs: Any) -> tuple[Any, Any, Any]:
        self.calls.append(("predict", box.shape))
        k = 3 if multimask_output else 1
        masks = np.zeros((len(box), k, *self.shape), dtype=np.float32)
        for i, (x0, y0, x1, y1) in enumerate(box):
            for c in range(k):
                masks[i, c, round(y0) + c:round(y1) - c, round(x0) + c:round(x1) - c] = 1.0
        scores = np.tile(np.array([0.6, 0.9, 0.3][:k], dtype=np.float32), (len(box), 1))
        if len(box) == 1:  # the real predictor's torch squeeze(0) drops the box axis of a single box
            masks, scores = masks[0], scores[0]
        return masks, scores, None


@pytest.fixture
def fake_sam2(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeImagePredictor]]:
    package = types.ModuleType("sam2")
    predictor_module = types.ModuleType("sam2.sam2_image_predictor")
    predictor_module.SAM2ImagePredictor = FakeImagePredictor  # type: ignore[attr-defined]
    build_module = types.ModuleType("sam2.build_sam")

    def build_sam2(config: str, checkpoint: str, device: str = "cuda") -> Any:
        FakeImagePredictor.loaded.append(("checkpoint", (config, Path(checkpoint).name, device)))
        return "model"

    build_module.build_sam2 = build_sam2  # type: ignore[attr-defined]
    for name, module in (("sam2", package), ("sam2.sam2_image_predictor", predictor_module),
                         ("sam2.build_sam", build_module)):
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)  # found by importlib.util.find_spec
        monkeypatch.setitem(sys.modules, name, module)
    FakeImagePredictor.loaded = []
    yield FakeImagePredictor


def test_sam2_embeds_once_prompts_once_and_keeps_the_best_candidate(fake_sam2: type[FakeImagePredictor]) -> None:
    annotator = ANNOTATORS.build({"backend": "sam2", "model": "facebook/sam2.1-hiera-tiny", "device": "cpu"})
    assert annotator.id == "sam2:facebook/sam2.1-hiera-tiny" and fake_sam2.loaded == [("hub", annotator.id[5:])]
    annotation = annotator.annotate(LAYOUT, RenderResult(image=IMAGE), SPEC)
    assert annotator.predictor.predictor.calls == [("set_image", (H, W, 3)), ("predict", (2, 4))]
    first, second = annotation.instances
    assert first.score == 0.9 and first.source == "sam2"
    assert first.bbox == (7.0, 5.0, 22.0, 18.0), "candidate 1: the layout box (6, 4, 30, 24) shrunk by 1 px"
    assert second.area == int(decode_rle(second.segmentation).sum()) > 0
    single = Layout(width=W, height=H, seed=0, objects=LAYOUT.objects[:1])
    only = annotator.annotate(single, RenderResult(image=IMAGE), SPEC).instances
    assert only[0].bbox == first.bbox, "a single box (squeezed by the predictor) is handled"
    one_mask = ANNOTATORS.build({"backend": "sam2", "model": "facebook/sam2.1-hiera-tiny", "device": "cpu",
                                 "multimask": False})
    assert one_mask.annotate(LAYOUT, RenderResult(image=IMAGE), SPEC).instances[0].score == 0.6


def test_sam2_checkpoints_need_their_config_and_errors_are_one_line(fake_sam2: type[FakeImagePredictor],
                                                                    tmp_path: Path) -> None:
    checkpoint = tmp_path / "sam2.1_hiera_tiny.pt"
    checkpoint.write_bytes(b"weights")
    annotator = ANNOTATORS.build({"backend": "sam2", "model": str(checkpoint), "device": "cpu",
                                  "config": "configs/sam2.1/sam2.1_hiera_t.yaml"})
    assert annotator.id == "sam2:sam2.1_hiera_tiny.pt"
    assert fake_sam2.loaded == [("checkpoint", ("configs/sam2.1/sam2.1_hiera_t.yaml", checkpoint.name, "cpu"))]
    with pytest.raises(BackendError, match="needs 'config'"):
        ANNOTATORS.build({"backend": "sam2", "model": str(checkpoint), "device": "cpu"})
    with pytest.raises(BackendError, match="SAM 2 checkpoint does not exist"):
        ANNOTATORS.build({"backend": "sam2", "model": str(tmp_path / "no.pt"), "config": "c", "device": "cpu"})
    with pytest.raises(BackendError, match=r"^cannot load SAM 2 model 'nobody/none': not in the local cache$"):
        ANNOTATORS.build({"backend": "sam2", "model": "nobody/none", "device": "cpu"})


def test_without_the_package_sam2_is_listed_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sam2", None)
    row = next(r for r in ANNOTATORS.describe() if r.name == "sam2")
    assert not row.installed and row.missing == ("sam2",)
    with pytest.raises(BackendError, match="'sam2' needs sam2, not installed here"):
        ANNOTATORS.build({"backend": "sam2", "model": "facebook/sam2.1-hiera-tiny"})
