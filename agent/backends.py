"""Config blocks → tool instances, through each tool's registry; imports happen only for what is asked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from synthloop.agent.config import DetectorConfig, RunConfig, VLMConfig
from synthloop.agent.errors import UserInputError
from synthloop.tools.annotate.base import Annotator
from synthloop.tools.backend import BackendBlock, BackendError, Registry
from synthloop.tools.critic.base import Judge
from synthloop.tools.critic.certificate import CertificateJudge
from synthloop.tools.critic.duplicates import DuplicateIndex, DuplicateJudge
from synthloop.tools.critic.embedded import embedded_judges
from synthloop.tools.critic.pairwise import PairwiseJudge
from synthloop.tools.critic.rules import ClassBalanceJudge
from synthloop.tools.layout.base import LayoutSampler
from synthloop.tools.render.base import Renderer

if TYPE_CHECKING:
    from synthloop.tools.critic.recognisability import RecognisabilityJudge
    from synthloop.tools.llm.client import LLMClient

T = TypeVar("T")


def _build(registry: Registry[T], block: BackendBlock | str) -> T:
    """Build a backend; a bad name, option or unusable input (a backend's ValueError) is one user error."""
    try:
        return registry.build(block)
    except BackendError as exc:
        raise UserInputError(str(exc)) from exc
    except ValueError as exc:  # backends check what their options point at (folders, files) when built
        name = BackendBlock.model_validate(block).backend
        raise UserInputError(f"{registry.tool} '{name}': {exc}") from exc


def make_sampler(block: BackendBlock | str) -> LayoutSampler:
    """The layout sampler of a config block (a name or {backend: NAME, ...options})."""
    from synthloop.tools.layout.registry import LAYOUTS

    return _build(LAYOUTS, block)


def make_renderer(block: BackendBlock | str) -> Renderer:
    """The renderer of a config block."""
    from synthloop.tools.render.registry import RENDERERS

    return _build(RENDERERS, block)


def make_annotator(block: BackendBlock | str) -> Annotator:
    """The annotator of a config block."""
    from synthloop.tools.annotate.registry import ANNOTATORS

    return _build(ANNOTATORS, block)


def check_compatible(renderer: Renderer, annotator: Annotator) -> None:
    """Refuse, at start-up, backends that cannot work together (one line naming both)."""
    if annotator.capabilities.needs_instance_map and not renderer.capabilities.provides_masks:
        raise UserInputError(
            f"annotator '{annotator.id}' reads exact instance maps, which renderer '{renderer.id}' does not "
            "provide; choose a model annotator (e.g. annotator: sam) or a compositing renderer")


def make_judges(config: RunConfig, duplicates: DuplicateIndex, *, exact_labels: bool = True) -> list[Judge]:
    """The embedded critic: rule judges in a fixed order (their verdicts are recorded in this order), then the
    detector-agreement judge when one is configured.

    `exact_labels`: whether the run's annotator declares exact labels. When it does not (SAM, a detector), the
    checks made for model labels are on by default: the boundary-evidence judge (unless `boundary_evidence`
    says otherwise) and the certificate judge (`rules.certificate` with its defaults, unless `judges:` lists
    one with its own options).
    """
    boundary = config.boundary_evidence if config.boundary_evidence is not None else not exact_labels
    judges = embedded_judges(
        duplicates,
        min_box_side_px=config.min_box_side_px,
        min_visible_fraction=config.min_visible_fraction,
        near_duplicate_min_similarity=config.near_duplicate_min_similarity,
        min_area_fraction=config.min_area_fraction,
        max_truncated_fraction=config.max_truncated_fraction,
        pixel_checks=config.image_quality_checks,
        boundary_evidence=boundary,
        class_balance=ClassBalanceJudge(max_drift=config.max_class_drift),
    )
    if not exact_labels and all(block.backend != CertificateJudge.id for block in config.judges):
        judges.append(CertificateJudge())
    if config.detector is not None:
        judges.append(make_detector_judge(config.detector))
    if config.vlm is not None and config.vlm.pointwise:
        from synthloop.tools.critic.vlm import VLMJudge

        judges.append(VLMJudge(make_vlm_client(config.vlm), samples=config.vlm.samples))
    if config.judges:
        from synthloop.tools.critic.registry import JUDGES

        judges.extend(_build(JUDGES, block) for block in config.judges)
    for judge in judges:
        if not isinstance(judge, Judge):
            raise UserInputError(f"judge '{getattr(judge, 'id', judge)}' does not implement the judge protocol "
                                 "(id, capabilities, judge, observe)")
    return judges


def make_vlm_client(config: VLMConfig) -> LLMClient:
    """The client for the configured vision endpoint (through the one LLM client: timeouts, retries)."""
    from synthloop.tools.llm.client import LLMClient

    return LLMClient.from_settings(config)


def make_language_llm(config: RunConfig) -> LLMClient | None:
    """The LLM for language labels (caption paraphrases, proposed relations), only when the config asks for
    them: every caption and relation is checked against the layout, so it is optional."""
    if not (config.language.paraphrase or config.language.max_model_relations):
        return None
    from synthloop.tools.llm.local_server import client_from_config

    return client_from_config(config.llm)


def make_pairwise_judge(config: RunConfig, duplicates: DuplicateIndex) -> PairwiseJudge:
    """The judge that picks best-of-n winners and ranks samples: the VLM when configured, else the measured judge
    (recognisability by the configured detector or YOLOv3-tiny when installed, label certificate agreement,
    diversity against the kept samples, rule passes; `tools/critic/measured_pairwise.py`)."""
    if config.vlm is not None:
        from synthloop.tools.critic.vlm import PairwiseVLMJudge

        return PairwiseVLMJudge(make_vlm_client(config.vlm), samples=config.vlm.samples)
    from synthloop.tools.critic.measured_pairwise import MeasuredPairwiseJudge
    from synthloop.tools.critic.recognisability import RecognisabilityJudge

    judges = [j for j in make_judges(config.model_copy(update={"vlm": None, "detector": None}), duplicates)
              if not isinstance(j, DuplicateJudge)]
    configured = [j for j in judges if isinstance(j, RecognisabilityJudge)]
    rules = [j for j in judges if not isinstance(j, RecognisabilityJudge)]
    return MeasuredPairwiseJudge(configured[0] if configured else make_recognisability_judge(config), rules,
                                 kept=duplicates)


def make_recognisability_judge(config: RunConfig) -> RecognisabilityJudge | None:
    """The recognisability judge over the configured detector, else over YOLOv3-tiny when scripts/setup.sh
    installed it (and OpenCV is there); None when there is neither."""
    from synthloop.tools.backend import missing_modules
    from synthloop.tools.critic.detector import DetectorError
    from synthloop.tools.critic.detectors.registry import detector_block
    from synthloop.tools.critic.recognisability import RecognisabilityJudge, default_detector_block

    if config.detector is not None:
        block = detector_block(config.detector.backend, config.detector.model, device=config.detector.device,
                               dtype=config.detector.dtype, options=config.detector.options)
    else:
        block = default_detector_block() if not missing_modules(("cv2",)) else None
    if block is None:
        return None
    try:
        return RecognisabilityJudge(block)
    except DetectorError as exc:
        raise UserInputError(f"detector: {exc}") from exc


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


def all_registries() -> dict[str, Registry]:
    """Every tool's registry, in loop order."""
    from synthloop.tools.annotate.registry import ANNOTATORS
    from synthloop.tools.critic.detectors.registry import DETECTORS
    from synthloop.tools.critic.registry import JUDGES
    from synthloop.tools.export.registry import EXPORTERS
    from synthloop.tools.layout.registry import LAYOUTS
    from synthloop.tools.render.registry import RENDERERS

    return {"layout": LAYOUTS, "renderer": RENDERERS, "annotator": ANNOTATORS, "judge": JUDGES,
            "detector": DETECTORS, "exporter": EXPORTERS}


def _renderer_option_names(config: RunConfig) -> set[str]:
    from synthloop.tools.backend import options_model
    from synthloop.tools.render.registry import RENDERERS

    return set(options_model(RENDERERS.resolve(config.renderer.backend)).model_fields)


def with_user_data(config: RunConfig, *, assets: Path | None = None, reference_coco: Path | None = None,
                   reference_images: Path | None = None) -> RunConfig:
    """The config with the user's own data in it (`--assets`, `--reference-coco`, `--reference-images`).

    - assets: cut-outs, one folder per class → the renderer's `assets_dir` (copy_paste);
    - a reference COCO set → layouts sampled from its priors (layout `reference`, unless the config chose a
      layout other than the procedural default) and, with a renderer that pastes cut-outs (copy_paste), its
      instances cut out as assets.
    The reference is read and checked now, so a bad file is one clear line before anything runs.
    """
    if (reference_coco is None) != (reference_images is None):
        raise UserInputError("--reference-coco and --reference-images go together (the COCO file and the folder "
                             "its file_name paths are relative to)")
    if assets is not None and not Path(assets).is_dir():
        raise UserInputError(f"--assets {assets}: not a folder (give one folder per class of PNG cut-outs)")
    renderer_options = dict(config.renderer.options)
    update: dict = {}
    if reference_coco is not None and reference_images is not None:
        from synthloop.tools.reference import ReferenceDataError, load_reference

        try:
            load_reference(reference_coco, reference_images)
        except ReferenceDataError as exc:
            raise UserInputError(str(exc)) from exc
        if config.layout.backend == "procedural":
            # a block is read from its config shape {backend, **options} (keyword `options=` would nest them)
            update["layout"] = BackendBlock.model_validate({"backend": "reference", "coco": str(reference_coco),
                                                            "images": str(reference_images)})
        if {"reference_coco", "reference_images"} <= _renderer_option_names(config):  # cut out its objects too
            renderer_options |= {"reference_coco": str(reference_coco), "reference_images": str(reference_images)}
    if assets is not None:
        renderer_options["assets_dir"] = str(assets)
    if renderer_options != config.renderer.options:
        from synthloop.tools.render.registry import RENDERERS

        block = BackendBlock.model_validate({"backend": config.renderer.backend, **renderer_options})
        try:
            RENDERERS.check(block)
        except BackendError as exc:
            raise UserInputError(f"--assets needs a renderer that pastes real objects (renderer: copy_paste): "
                                 f"{exc}") from exc
        update["renderer"] = block
    return config.model_copy(update=update) if update else config
