"""Core value types shared by every tool and the agent.

All types are pydantic v2 models validated on construction, so a value that exists is a value that is
consistent: a `TaskSpec` with an impossible size, a `Layout` box outside the unit square or an `Instance`
with a negative area cannot be built. Images and masks never live here: these are the small values that
graph state, manifests and exports carry.

Conventions
- `Layout` boxes are normalised xyxy in [0, 1] (resolution independent).
- `Instance` boxes are pixel xywh (COCO), `area` is the mask area in pixels, masks are COCO RLE with a
  string `counts` field.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_OBJECTS_PER_IMAGE = 100  # COCOeval's maxDets; more would make GT-as-prediction AP < 1 by construction.
MAX_IMAGES = 1_000_000
MIN_SIDE, MAX_SIDE = 32, 4096


class Task(StrEnum):
    """Annotation tasks a dataset can be built for."""

    detection = "detection"
    instance_segmentation = "instance_segmentation"
    semantic_segmentation = "semantic_segmentation"
    captioning = "captioning"
    referring_expressions = "referring_expressions"
    scene_graph = "scene_graph"


class ExportFormat(StrEnum):
    """On-disk dataset formats."""

    coco = "coco"
    yolo = "yolo"
    voc = "voc"
    hf = "hf"


class Difficulty(StrEnum):
    """Perception difficulty asked for (DetDiffusion-style): drives size, overlap and clutter."""

    easy = "easy"
    medium = "medium"
    hard = "hard"


class Decision(StrEnum):
    """A critic's decision on one sample."""

    accept = "accept"
    reject = "reject"
    edit = "edit"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ClassName = Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[a-z0-9][a-z0-9 \-]*$")]


class ObjectSpec(_Frozen):
    """One object class: its canonical name, how to render it, and how many per image."""

    name: ClassName
    prompt: str = Field(default="", max_length=300, description="Render prompt for this class.")
    attributes: list[Annotated[str, Field(max_length=40)]] = Field(default_factory=list, max_length=8)
    min_count: int = Field(default=1, ge=0, le=MAX_OBJECTS_PER_IMAGE)
    max_count: int = Field(default=3, ge=0, le=MAX_OBJECTS_PER_IMAGE)

    @model_validator(mode="after")
    def _counts_ordered(self) -> ObjectSpec:
        if self.max_count < self.min_count:
            raise ValueError(f"object '{self.name}': max_count {self.max_count} < min_count {self.min_count}")
        return self

    @property
    def render_prompt(self) -> str:
        """The prompt to render this class with (falls back to attributes + name)."""
        return self.prompt or " ".join([*self.attributes, self.name])


class Splits(_Frozen):
    """Fractions of kept images per split; they must sum to 1."""

    train: float = Field(default=0.8, ge=0.0, le=1.0)
    val: float = Field(default=0.2, ge=0.0, le=1.0)
    test: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _sums_to_one(self) -> Splits:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, got {total:.3f}")
        return self

    def names(self) -> list[str]:
        """Splits with a non-zero share, in train/val/test order."""
        return [n for n in ("train", "val", "test") if getattr(self, n) > 0]


class Budgets(_Frozen):
    """Bounds on the repair loop."""

    max_attempts_per_image: int = Field(default=3, ge=1, le=20)
    max_total_attempts_factor: float = Field(
        default=3.0, ge=1.0, le=20.0, description="Stop after n_images × this many attempts in total."
    )


class Question(_Frozen):
    """An open question the user must settle before a run starts. `source` says who asked, and routing reads
    it: `planner` (plan again with the answer), `revision` (an edit that could not be applied: revise again),
    `language` (the request is not in a language the planner reads: the answer replaces the request)."""

    source: Literal["planner", "revision", "language"] = "planner"
    text: str = Field(min_length=1, max_length=500)

    def __str__(self) -> str:
        return self.text


class Notice(_Frozen):
    """Words of the request the plan does not carry, named back to the user before approval.

    kind: `not_understood` (the planner could not place them) or `cannot_deliver` (understood, but synthloop
    cannot produce it: depth maps, keypoints, TFRecord, video); text: the user's words; about: what they asked
    for (under `--yes` a `cannot_deliver` notice about a task or a format stops the run).
    """

    kind: Literal["not_understood", "cannot_deliver"]
    text: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=300)
    about: Literal["class", "task", "format", "scene", "style", "other"] = "other"


class TaskSpec(_Frozen):
    """What to build: the contract between the planner and the rest of the loop."""

    objects: list[ObjectSpec] = Field(min_length=1, max_length=50)
    n_images: int = Field(default=100, ge=1, le=MAX_IMAGES)
    width: int = Field(default=512, ge=MIN_SIDE, le=MAX_SIDE)
    height: int = Field(default=512, ge=MIN_SIDE, le=MAX_SIDE)
    tasks: list[Task] = Field(default_factory=lambda: [Task.detection], min_length=1, max_length=6)
    formats: list[ExportFormat] = Field(default_factory=lambda: [ExportFormat.coco], min_length=1, max_length=4)
    scene: str = Field(default="", max_length=300)
    style: str = Field(default="", max_length=300)
    difficulty: Difficulty = Difficulty.medium
    splits: Splits = Field(default_factory=Splits)
    seed: int = Field(default=0, ge=0, lt=2**32)
    budgets: Budgets = Field(default_factory=Budgets)
    request: str = Field(default="", max_length=4000, description="The request this spec was planned from.")
    questions: list[Question] = Field(default_factory=list, max_length=10, description="Open questions.")
    notices: list[Notice] = Field(default_factory=list, max_length=20,
                                  description="What the plan does not carry: not understood / cannot deliver.")
    defaults_used: list[str] = Field(
        default_factory=list, max_length=30, description="Fields not grounded in the request: 'field=value'."
    )
    plan_notes: list[Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=list, max_length=60,
        description="How the chosen backends deliver the spec, set before approval: where each class's objects "
                    "come from ('cup: 3 photos (Tux Paint)'), layout sources.")

    @field_validator("questions", mode="before")
    @classmethod
    def _plain_questions(cls, values: Any) -> Any:
        """Spec files written before questions were typed hold plain strings: planner questions."""
        if isinstance(values, list):
            return [{"source": "planner", "text": v} if isinstance(v, str) else v for v in values]
        return values

    @field_validator("tasks", "formats")
    @classmethod
    def _unique(cls, values: list) -> list:
        if len(set(values)) != len(values):
            raise ValueError(f"duplicate entries in {values}")
        return values

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        names = [o.name for o in self.objects]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate object classes: {names}")
        if sum(o.max_count for o in self.objects) > MAX_OBJECTS_PER_IMAGE:
            raise ValueError(f"at most {MAX_OBJECTS_PER_IMAGE} objects per image in total")
        if sum(o.max_count for o in self.objects) == 0:
            raise ValueError("every object class has max_count 0: images would be empty")
        return self

    @property
    def class_names(self) -> list[str]:
        """Category names in a stable order (COCO ids are this index + 1, YOLO ids this index)."""
        return [o.name for o in self.objects]


class LayoutObject(_Frozen):
    """One object to place: class, normalised xyxy box, stacking order (higher is in front)."""

    category: ClassName
    box: tuple[float, float, float, float]
    depth: int = Field(default=0, ge=0)
    attributes: list[str] = Field(default_factory=list, max_length=8)

    @field_validator("box")
    @classmethod
    def _valid_box(cls, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = box
        if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
            raise ValueError(f"box {box} is not a normalised xyxy box inside the image")
        return box


class Relation(_Frozen):
    """A directed relation between two objects of the same layout/annotation (indices into its list).

    source: who asserted it (`layout` for a requested relation, `rule` for geometry/depth rules, `llm` / `vlm`
    for model proposals); score: the checking model's confidence where one was asked.
    """

    subject: int = Field(ge=0)
    predicate: str = Field(min_length=1, max_length=40)
    object: int = Field(ge=0)
    source: str = Field(default="rule", max_length=40)
    score: float | None = None


class Layout(_Frozen):
    """Where objects go in one image, before rendering."""

    width: int = Field(ge=MIN_SIDE, le=MAX_SIDE)
    height: int = Field(ge=MIN_SIDE, le=MAX_SIDE)
    objects: list[LayoutObject] = Field(max_length=MAX_OBJECTS_PER_IMAGE)
    relations: list[Relation] = Field(default_factory=list)
    seed: int = Field(ge=0)
    source: str = "procedural"

    @model_validator(mode="after")
    def _relations_in_range(self) -> Layout:
        n = len(self.objects)
        for r in self.relations:
            if r.subject >= n or r.object >= n:
                raise ValueError(f"relation {r} refers to an object index >= {n}")
        return self


class RLE(_Frozen):
    """COCO run-length encoded mask (compressed string counts, column-major)."""

    size: tuple[int, int]  # (height, width)
    counts: str


class Certificate(_Frozen):
    """Which sources saw an annotation and how well they agree.

    sources: per source its evidence in [0, 1], e.g. {"layout": 1.0, "render_mask": 1.0, "detector": 0.82,
        "sam_iou": 0.91, "vlm": 1.0}; agreement: one score in [0, 1] that the critic can threshold.
    """

    sources: dict[str, float] = Field(default_factory=dict)
    agreement: float = Field(ge=0.0, le=1.0)


class ReferringExpression(_Frozen):
    """Sentences that single out one instance of an image (RefCOCO style)."""

    instance: int = Field(ge=0, description="Index into Annotation.instances.")
    sentences: list[str] = Field(min_length=1, max_length=8)


class Instance(_Frozen):
    """One annotated object in pixel space."""

    category: ClassName
    bbox: tuple[float, float, float, float]  # pixel xywh
    area: int = Field(ge=0, description="Mask area in pixels (box area when there is no mask).")
    segmentation: RLE | None = None
    source: str = Field(default="exact", description="exact | sam | detector | ...")
    visible_fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    layout_index: int | None = Field(default=None, ge=0)
    score: float | None = None
    certificate: Certificate | None = None

    @field_validator("bbox")
    @classmethod
    def _non_negative_size(cls, bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        if bbox[2] < 0 or bbox[3] < 0:
            raise ValueError(f"bbox {bbox} has negative width or height")
        return bbox


class Annotation(_Frozen):
    """Everything annotated on one image."""

    instances: list[Instance] = Field(default_factory=list)
    captions: list[str] = Field(default_factory=list, max_length=16)
    caption_sources: list[str] = Field(default_factory=list, max_length=16,
                                       description="Who wrote each caption, in order: template | llm | vlm.")
    referring: list[ReferringExpression] = Field(default_factory=list)
    relations: list[Relation] = Field(default_factory=list)

    @property
    def caption(self) -> str | None:
        """The first caption, if any."""
        return self.captions[0] if self.captions else None


class Verdict(_Frozen):
    """A judge's decision on one sample; reasons come first, as the judge produced them."""

    judge: str
    decision: Decision
    reasons: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)
    fix: str | None = Field(default=None, description="Edit instruction when decision is 'edit'.")
    prompt_hash: str | None = None


class Sample(_Frozen):
    """One generated image with its provenance; what the manifest records per line."""

    id: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    index: int = Field(ge=0)
    attempt: int = Field(ge=0)
    seed: int = Field(ge=0)
    split: str
    image_path: str = Field(description="Relative to the output directory.")
    width: int
    height: int
    layout: Layout
    annotation: Annotation | None = None
    verdicts: list[Verdict] = Field(default_factory=list)
    backend: dict[str, str] = Field(default_factory=dict, description="renderer / annotator / model ids.")
    prompt: str = ""
    image_sha256: str | None = None
    phash: str | None = None
    rating: float | None = None
    repairs: list[str] = Field(default_factory=list, description="Repairs applied, in order, with their cause.")
    render_info: dict[str, Any] = Field(default_factory=dict,
                                        description="Renderer provenance beyond ids (assets used, their licences).")
    difficulty_score: float | None = Field(default=None, ge=0.0, le=1.0,
                                           description="Measured perception difficulty (0 easy … 1 hard).")


class Match(_Frozen):
    """One pairwise comparison."""

    a: str
    b: str
    winner: Literal["a", "b", "tie"]
    swapped: bool = False
    judge: str


class Ratings(_Frozen):
    """Ratings over a set of items, with optional bootstrap intervals."""

    method: Literal["elo", "bradley_terry"]
    scores: dict[str, float]
    intervals: dict[str, tuple[float, float]] = Field(default_factory=dict)
    n_matches: int = Field(ge=0)
