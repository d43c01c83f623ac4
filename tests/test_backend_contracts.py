"""The built-in backends join the contracts of their tools (tests/contracts.py); a new backend joins with a
small class like these, in its own test file or here."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from contracts import (
    SPEC,
    AnnotatorContract,
    ExporterContract,
    JudgeContract,
    LayoutContract,
    RendererContract,
)

from synthloop.tools.annotate.exact import ExactAnnotator
from synthloop.tools.critic.duplicates import DuplicateJudge
from synthloop.tools.critic.pixels import BoundaryEvidenceJudge, ImageQualityJudge
from synthloop.tools.critic.rules import (
    ClassBalanceJudge,
    ContentJudge,
    GeometryJudge,
    MaskBoxJudge,
    OcclusionJudge,
    TinyObjectJudge,
    TruncationJudge,
)
from synthloop.tools.export.captions import CaptionsExporter
from synthloop.tools.export.coco import CocoExporter
from synthloop.tools.export.hf import HFExporter
from synthloop.tools.export.refs import RefsExporter
from synthloop.tools.export.scene_graphs import SceneGraphExporter
from synthloop.tools.export.semantic import SemanticExporter
from synthloop.tools.export.voc import VocExporter
from synthloop.tools.export.yolo import YoloExporter
from synthloop.tools.layout.procedural import ProceduralLayoutSampler
from synthloop.tools.render.compositor import CompositorRenderer
from synthloop.tools.render.copy_paste import CopyPasteRenderer
from synthloop.tools.types import Difficulty

# --- layout -------------------------------------------------------------------------------------------------


class TestProceduralLayout(LayoutContract):
    backend = ProceduralLayoutSampler()

    def test_difficulty_changes_object_sizes(self) -> None:
        def median_area(difficulty: Difficulty) -> float:
            spec = self.spec.model_copy(update={"difficulty": difficulty})
            areas = [(o.box[2] - o.box[0]) * (o.box[3] - o.box[1])
                     for s in range(20) for o in self.backend.sample(spec, s).objects]
            return float(np.median(areas))

        assert median_area(Difficulty.easy) > 1.5 * median_area(Difficulty.medium) > 1.5 * median_area(
            Difficulty.hard)


# --- render -------------------------------------------------------------------------------------------------


class TestCompositor(RendererContract):
    backend = CompositorRenderer()


class TestCopyPaste(RendererContract):
    backend = CopyPasteRenderer()


@pytest.fixture(scope="module")
def tiny_diffusion(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Tiny random diffusers folders (tests/diffusion_tiny.py), built once for this module: a text-to-image SD
    and an InstructPix2Pix editor."""
    pytest.importorskip("diffusers")
    from diffusion_tiny import tiny_pix2pix, tiny_sd

    root = tmp_path_factory.mktemp("diffusion")
    return {"sd": str(tiny_sd(root / "sd")), "pix2pix": str(tiny_pix2pix(root / "pix2pix"))}


class TestTinyDiffusion(RendererContract):
    """The diffusion renderer on a tiny random Stable Diffusion, text to image, with an instruction editor."""

    spec = SPEC.model_copy(update={"width": 64, "height": 48})
    seeds = (1, 2)

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _tiny_model(cls, tiny_diffusion: dict[str, str]) -> None:
        from synthloop.tools.render.diffusion.renderer import DiffusionRenderer

        options: dict[str, Any] = {"model": tiny_diffusion["sd"], "edit_model": tiny_diffusion["pix2pix"],
                                   "edit_steps": 2, "steps": 2, "batch_size": 2, "device": "cpu"}
        cls.options = options
        cls.backend = DiffusionRenderer(**options)
        assert cls.backend.capabilities.edits_images


# --- annotate -----------------------------------------------------------------------------------------------


class TestExactAnnotator(AnnotatorContract):
    backend = ExactAnnotator()


class TestTinySamAnnotator(AnnotatorContract):
    """A model annotator (SAM prompted with the layout's boxes) on a tiny random SAM: valid labels, not exact."""

    exact_masks = False
    registry_name = "sam"  # its id names the model too
    seeds = range(3)

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _tiny_model(cls, tmp_path_factory: pytest.TempPathFactory) -> None:
        pytest.importorskip("transformers")
        from synthloop.evals.tiny_sam import tiny_sam
        from synthloop.tools.annotate.registry import ANNOTATORS

        options = {"model": str(tiny_sam(tmp_path_factory.mktemp("sam") / "tiny-sam")), "device": "cpu"}
        cls.options = options
        cls.backend = ANNOTATORS.build({"backend": "sam", **options})


# --- judges -------------------------------------------------------------------------------------------------


class TestGeometryJudge(JudgeContract):
    backend = GeometryJudge()


class TestMaskBoxJudge(JudgeContract):
    backend = MaskBoxJudge()


class TestOcclusionJudge(JudgeContract):
    backend = OcclusionJudge()


class TestTruncationJudge(JudgeContract):
    backend = TruncationJudge()


class TestTinyObjectJudge(JudgeContract):
    backend = TinyObjectJudge()


class TestContentJudge(JudgeContract):
    backend = ContentJudge()


class TestClassBalanceJudge(JudgeContract):
    backend = ClassBalanceJudge()


class TestImageQualityJudge(JudgeContract):
    backend = ImageQualityJudge()


class TestBoundaryEvidenceJudge(JudgeContract):
    backend = BoundaryEvidenceJudge()


class TestDuplicateJudge(JudgeContract):
    backend = DuplicateJudge()


# --- exporters ----------------------------------------------------------------------------------------------


class TestCocoExporter(ExporterContract):
    backend = CocoExporter()


class TestYoloExporter(ExporterContract):
    backend = YoloExporter()


class TestVocExporter(ExporterContract):
    backend = VocExporter()


class TestHFExporter(ExporterContract):
    backend = HFExporter()


class TestSemanticExporter(ExporterContract):
    backend = SemanticExporter()


class TestCaptionsExporter(ExporterContract):
    backend = CaptionsExporter()


class TestRefsExporter(ExporterContract):
    backend = RefsExporter()


class TestSceneGraphExporter(ExporterContract):
    backend = SceneGraphExporter()
