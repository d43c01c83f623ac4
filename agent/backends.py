"""Backend registry: config names → tool instances. Imports happen here, only for what is asked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthloop.agent.config import DetectorConfig, RunConfig, VLMConfig
from synthloop.agent.errors import UserInputError
from synthloop.tools.annotate.base import Annotator
from synthloop.tools.critic.base import Judge
from synthloop.tools.critic.duplicates import DuplicateIndex, DuplicateJudge
from synthloop.tools.critic.embedded import embedded_judges
from synthloop.tools.critic.pairwise import PairwiseJudge
from synthloop.tools.critic.rules import ClassBalanceJudge
from synthloop.tools.layout.base import LayoutSampler
from synthloop.tools.render.base import Renderer

if TYPE_CHECKING:
    from synthloop.tools.llm.client import LLMClient

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
    judges = embedded_judges(
        duplicates,
        min_box_side_px=config.min_box_side_px,
        min_visible_fraction=config.min_visible_fraction,
        near_duplicate_min_similarity=config.near_duplicate_min_similarity,
        min_area_fraction=config.min_area_fraction,
        max_truncated_fraction=config.max_truncated_fraction,
        pixel_checks=config.image_quality_checks,
        boundary_evidence=config.boundary_evidence,
        class_balance=ClassBalanceJudge(max_drift=config.max_class_drift),
    )
    if config.detector is not None:
        judges.append(make_detector_judge(config.detector))
    if config.vlm is not None and config.vlm.pointwise:
        from synthloop.tools.critic.vlm import VLMJudge

        judges.append(VLMJudge(make_vlm_client(config.vlm), samples=config.vlm.samples))
    return judges


def make_vlm_client(config: VLMConfig) -> LLMClient:
    """The client for the configured vision endpoint (through the one LLM client: timeouts, retries)."""
    from synthloop.tools.llm.client import LLMClient

    return LLMClient.from_settings(config)


def make_pairwise_judge(config: RunConfig, duplicates: DuplicateIndex) -> PairwiseJudge:
    """The judge that picks best-of-n winners: the VLM when configured, else the rule-score heuristic."""
    if config.vlm is not None:
        from synthloop.tools.critic.vlm import PairwiseVLMJudge

        return PairwiseVLMJudge(make_vlm_client(config.vlm), samples=config.vlm.samples)
    from synthloop.tools.critic.pairwise import RulePairwiseJudge

    rule_judges = [j for j in make_judges(config.model_copy(update={"vlm": None, "detector": None}), duplicates)
                   if not isinstance(j, DuplicateJudge)]
    return RulePairwiseJudge(rule_judges)


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
