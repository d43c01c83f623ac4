"""Backend registry: config names → tool instances. Imports happen here, only for what is asked."""

from __future__ import annotations

from synthloop.agent.config import DetectorConfig, RunConfig
from synthloop.agent.errors import UserInputError
from synthloop.tools.annotate.base import Annotator
from synthloop.tools.critic.base import Judge
from synthloop.tools.critic.duplicates import DuplicateIndex, DuplicateJudge
from synthloop.tools.critic.pixels import BoundaryEvidenceJudge, ImageQualityJudge
from synthloop.tools.critic.rules import (
    ContentJudge,
    GeometryJudge,
    MaskBoxJudge,
    OcclusionJudge,
    TinyObjectJudge,
    TruncationJudge,
)
from synthloop.tools.layout.base import LayoutSampler
from synthloop.tools.render.base import Renderer

LAYOUTS = ("procedural",)
RENDERERS = ("compositor",)
ANNOTATORS = ("exact",)


def make_sampler(name: str) -> LayoutSampler:
    """The layout sampler called `name`."""
    if name == "procedural":
        from synthloop.tools.layout.procedural import ProceduralLayoutSampler

        return ProceduralLayoutSampler()
    raise UserInputError(f"unknown layout sampler '{name}' (available: {', '.join(LAYOUTS)})")


def make_renderer(name: str) -> Renderer:
    """The renderer called `name`."""
    if name == "compositor":
        from synthloop.tools.render.compositor import CompositorRenderer

        return CompositorRenderer()
    raise UserInputError(f"unknown renderer '{name}' (available: {', '.join(RENDERERS)})")


def make_annotator(name: str) -> Annotator:
    """The annotator called `name`."""
    if name == "exact":
        from synthloop.tools.annotate.exact import ExactAnnotator

        return ExactAnnotator()
    raise UserInputError(f"unknown annotator '{name}' (available: {', '.join(ANNOTATORS)})")


def make_judges(config: RunConfig, duplicates: DuplicateIndex) -> list[Judge]:
    """The embedded critic: rule judges in a fixed order (their verdicts are recorded in this order), then the
    detector-agreement judge when one is configured."""
    judges: list[Judge] = [
        GeometryJudge(min_side_px=config.min_box_side_px),
        MaskBoxJudge(),
        OcclusionJudge(min_visible_fraction=config.min_visible_fraction),
        TruncationJudge(max_cut=config.max_truncated_fraction),
        TinyObjectJudge(min_area_fraction=config.min_area_fraction),
        ContentJudge(),
    ]
    if config.image_quality_checks:
        judges.append(ImageQualityJudge())
    if config.boundary_evidence:
        judges.append(BoundaryEvidenceJudge())
    judges.append(DuplicateJudge(duplicates, max_hamming=config.near_duplicate_max_hamming))
    if config.detector is not None:
        judges.append(make_detector_judge(config.detector))
    return judges


def make_detector_judge(config: DetectorConfig) -> Judge:
    """The detector-agreement judge over the configured detector; a missing model or package is a user error."""
    from synthloop.tools.critic.detector import DetectorAgreementJudge, DetectorError
    from synthloop.tools.critic.detectors import load_detector

    try:
        detector = load_detector(config.backend, config.model, device=config.device, dtype=config.dtype,
                                 options=config.options)
        return DetectorAgreementJudge(detector, iou=config.iou, min_overlap=config.min_overlap,
                                      min_score=config.min_score, extra_score=config.extra_score,
                                      policy=config.policy, max_edits=config.max_edits)
    except DetectorError as exc:
        raise UserInputError(f"detector: {exc}") from exc
