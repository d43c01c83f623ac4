"""Run configuration: which backends to use and how to reach the LLM.

Loaded from a YAML/JSON file (`--config FILE`) and the environment; every field has a default that runs on a
fresh CPU machine (the embedded defaults in DESIGN.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from synthloop.tools.annotate.language.labels import LanguageOptions
from synthloop.tools.backend import BackendBlock, BackendError, Registry
from synthloop.tools.critic.ensemble import EnsembleConfig


class ConfigError(ValueError):
    """A configuration file or value is unusable; the message names the problem."""


class LLMConfig(BaseModel):
    """How to reach the planner LLM. `base_url=None` means: start the embedded llama.cpp server."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint, e.g. http://host/v1")
    model: str = Field(default="smollm2-135m-instruct", description="Model name sent to the endpoint.")
    api_key_env: str = Field(default="SYNTHLOOP_LLM_API_KEY", description="Environment variable with the key.")
    timeout_s: float = Field(default=60.0, gt=0, description="Seconds one attempt waits for the answer.")
    connect_timeout_s: float = Field(default=5.0, gt=0, description="Seconds to open a connection (a dead host "
                                                                     "fails fast).")
    max_call_s: float = Field(default=120.0, gt=0, description="Seconds one call may take, retries and waits "
                                                               "included (a hanging endpoint is bounded).")
    max_retry_after_s: float = Field(default=30.0, ge=0, description="Longest Retry-After wait honoured.")
    max_retries: int = Field(default=3, ge=0, le=10, description="Retries on connection errors, 429, 5xx, "
                                                                 "malformed answers.")
    max_reasks: int = Field(default=2, ge=0, le=5, description="Re-asks when the output fails validation.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    structured_output: str = Field(
        default="json_object_schema",
        pattern="^(json_object_schema|json_schema|json_object|none)$",
        description="How the schema is sent: llama.cpp takes json_object+schema, OpenAI json_schema.",
    )
    gguf_path: str | None = Field(default=None, description="GGUF for the embedded server (default: SmolLM2).")
    n_threads: int = Field(default=2, ge=1, le=256)

    def api_key(self) -> str:
        """The API key from the environment (a placeholder for local servers that need none)."""
        return os.environ.get(self.api_key_env, "not-needed")


class VLMConfig(LLMConfig):
    """The VLM judge (off unless configured): any OpenAI-compatible vision endpoint.

    It judges every sample pointwise (reasons first, then scores and accept / reject / edit) and, with
    `best_of_n > 1`, picks the best of several renders per layout pairwise (both orders asked).
    """

    base_url: str = Field(description="OpenAI-compatible vision endpoint, e.g. http://host/v1")  # type: ignore[assignment]
    model: str = Field(description="Vision model name sent to the endpoint.")
    api_key_env: str = Field(default="SYNTHLOOP_VLM_API_KEY", description="Environment variable with the key.")
    timeout_s: float = Field(default=120.0, gt=0, description="Seconds one attempt waits for the answer.")
    max_call_s: float = Field(default=240.0, gt=0, description="Seconds one call may take, retries included.")
    structured_output: str = Field(default="json_schema",
                                   pattern="^(json_object_schema|json_schema|json_object|none)$")
    samples: int = Field(default=1, ge=1, le=16, description="Answers per question (majority / preference).")
    pointwise: bool = Field(default=True, description="Judge every sample pointwise.")


class DetectorConfig(BaseModel):
    """The detector-agreement judge (off unless configured): which detector, and how strictly to compare.

    `backend`: a registered detector (owlv2 | owlvit | grounding_dino | yolov3_darknet, or a plugin's); `model`: a
    local directory (or a hub id already in the local cache); thresholds as in `synthloop.tools.critic.detector`.
    The backend name and its options are checked against the detector registry when the config is read.
    """

    model_config = ConfigDict(extra="forbid")

    backend: str = Field(description="owlv2 | owlvit | grounding_dino | yolov3_darknet")
    model: str = Field(min_length=1, description="Local model directory or cached hub id.")
    device: str = Field(default="auto", description="auto (cuda when available, else cpu) | cpu | cuda[:N]")
    dtype: str = Field(default="float32", pattern="^(float32|float16|bfloat16)$", description="Used off the CPU.")
    iou: float = Field(default=0.5, gt=0.0, le=1.0, description="IoU for a detection to confirm a box.")
    min_overlap: float = Field(default=0.1, gt=0.0, le=1.0, description="IoU below which a box is not 'shifted'.")
    min_score: float = Field(default=0.3, ge=0.0, le=1.0, description="Detections below this are ignored.")
    extra_score: float = Field(default=0.5, ge=0.0, le=1.0, description="Unannotated detections above: extra.")
    policy: Literal["edit", "reject"] = "edit"
    max_edits: int = Field(default=2, ge=0, le=100, description="More disagreements than this: reject.")
    options: dict[str, Any] = Field(default_factory=dict, description="Backend keywords, e.g. score_threshold.")

    @model_validator(mode="after")
    def _known_detector(self) -> DetectorConfig:
        from synthloop.tools.critic.detectors.registry import check_detector, detector_block

        check_detector(detector_block(self.backend, self.model, device=self.device, dtype=self.dtype,
                                      options=self.options))
        return self


class ExecutorConfig(BaseModel):
    """Where the renderer and annotator run: `local` threads (the default) or `ray` actors (an optional extra:
    pip install 'synthloop[ray]'). In a config file a bare name (`executor: ray`) or a block
    (`executor: {engine: ray, address: "ray://head:10001"}`). The dataset is the same whatever the engine."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["local", "ray"] = Field(default="local", description="local | ray")
    address: str | None = Field(default=None, min_length=1, description="Ray cluster address (ray://host:port or "
                                                                        "auto); none: start Ray on this machine.")
    max_in_flight: int = Field(default=2, ge=1, le=64, description="Back pressure: chunks queued per Ray actor.")
    pipeline: bool = Field(default=True, description="Render the next batch's fresh samples while the current one "
                                                     "is annotated and critiqued (same results, less idle time).")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"engine": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _address_needs_ray(self) -> ExecutorConfig:
        if self.address is not None and self.engine != "ray":
            raise ValueError("an address is for the ray engine (executor: {engine: ray, address: ...})")
        return self


def _checked(tool: str) -> AfterValidator:
    """Validate a backend block against its tool's registry (name and options) when the config is read."""

    def registry() -> Registry:
        from synthloop.tools.annotate.registry import ANNOTATORS
        from synthloop.tools.critic.registry import JUDGES
        from synthloop.tools.layout.registry import LAYOUTS
        from synthloop.tools.render.registry import RENDERERS

        return {"layout": LAYOUTS, "renderer": RENDERERS, "annotator": ANNOTATORS, "judge": JUDGES}[tool]

    def check(block: BackendBlock) -> BackendBlock:
        try:
            return registry().check(block)
        except BackendError as exc:
            raise ValueError(str(exc)) from exc

    return AfterValidator(check)


LayoutBlock = Annotated[BackendBlock, _checked("layout")]
RendererBlock = Annotated[BackendBlock, _checked("renderer")]
AnnotatorBlock = Annotated[BackendBlock, _checked("annotator")]
JudgeBlock = Annotated[BackendBlock, _checked("judge")]


class RunConfig(BaseModel):
    """Everything about a run that is not the dataset spec itself."""

    model_config = ConfigDict(extra="forbid")

    llm: LLMConfig = Field(default_factory=LLMConfig)
    layout: LayoutBlock = Field(default=BackendBlock(backend="procedural"),
                                description="Layout sampler: a name or {backend: NAME, ...options}.")
    renderer: RendererBlock = Field(default=BackendBlock(backend="copy_paste"),
                                    description="Renderer: a name or {backend: NAME, ...options}. Default "
                                                "copy_paste: real cut-outs with exact masks.")
    annotator: AnnotatorBlock = Field(default=BackendBlock(backend="exact"),
                                      description="Annotator: a name or {backend: NAME, ...options}.")
    judges: list[JudgeBlock] = Field(default_factory=list, max_length=32,
                                     description="Extra judges after the embedded ones: [{backend: ID, ...}].")
    batch_size: int = Field(default=32, ge=1, le=4096, description="Samples per graph step.")
    workers: int = Field(default=2, ge=1, le=256, description="Threads (Ray: CPU actors) for rendering and "
                                                             "encoding.")
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig,
                                     description="Engine running the backends: local | ray | {engine: ray, ...}.")
    min_visible_fraction: float = Field(default=0.25, ge=0.0, le=1.0)
    min_box_side_px: float = Field(default=4.0, ge=0.0)
    near_duplicate_min_similarity: float = Field(
        default=0.9, ge=0.0, le=1.0,
        description="Reject a sample whose perceptual descriptor has at least this cosine similarity with a kept "
                    "sample's (measured: clean pairs ≤ 0.78, injected near duplicates ≥ 0.98).")
    min_area_fraction: float = Field(default=0.0004, ge=0.0, le=1.0, description="Tiny-object limit (of image area).")
    max_truncated_fraction: float = Field(default=0.5, ge=0.0, le=1.0, description="Largest share cut by the border.")
    max_class_drift: float = Field(default=0.15, gt=0.0, le=1.0,
                                   description="Kept class histogram vs the spec's shares (total variation).")
    image_quality_checks: bool = Field(default=True, description="Reject black / white / constant / saturated images.")
    boundary_evidence: bool | None = Field(
        default=None, description="Check masks/boxes against image edges (~1 ms per 512² image). None: on when the "
                                  "annotator's labels are not exact (SAM, detector: they can be off their "
                                  "objects), off for exact compositor labels (they cannot).")
    png_compress_level: int = Field(default=1, ge=0, le=9)
    detector: DetectorConfig | None = Field(default=None, description="Detector-agreement judge; None = off.")
    vlm: VLMConfig | None = Field(default=None, description="VLM judge; None = off.")
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig,
                                     description="How judges combine: any_reject (default) or weighted_vote.")
    best_of_n: int = Field(default=1, ge=1, le=8, description="Renders per layout; the pairwise judge keeps one.")
    rank_matches_per_sample: int = Field(
        default=0, ge=0, le=20, description="Before export, rate kept samples by a pairwise tournament "
                                            "(Bradley–Terry, in manifest `rating` and ratings.json); 0 = off.")
    language: LanguageOptions = Field(
        default_factory=LanguageOptions, description="Captions, referring expressions and scene-graph relations "
                                                     "(made when the spec asks for them).")


def load_config(path: str | Path | None) -> RunConfig:
    """Read a RunConfig from YAML/JSON; environment variables override the LLM endpoint.

    SYNTHLOOP_LLM_BASE_URL and SYNTHLOOP_LLM_MODEL point the planner at any OpenAI-compatible endpoint.
    """
    data: dict = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file not found: {file}")
        try:
            text = file.read_text(encoding="utf-8")
            data = (json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)) or {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {file}: {' '.join(str(exc).split())}") from exc
        except RecursionError as exc:
            raise ConfigError(f"config {file} is nested too deeply to be a config") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config {file} must hold a mapping, not {type(data).__name__}")
    llm = dict(data.get("llm") or {})
    if os.environ.get("SYNTHLOOP_LLM_BASE_URL"):
        llm["base_url"] = os.environ["SYNTHLOOP_LLM_BASE_URL"]
    if os.environ.get("SYNTHLOOP_LLM_MODEL"):
        llm["model"] = os.environ["SYNTHLOOP_LLM_MODEL"]
    data["llm"] = llm
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from exc


def describe_validation_error(exc: ValidationError) -> str:
    """One line for the first problem of a config: where it is and what is wrong."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-after"))
    message = first["msg"].removeprefix("Value error, ")
    return f"invalid config value '{where}': {message}"
