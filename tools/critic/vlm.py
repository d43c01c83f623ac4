"""VLM judges through any OpenAI-compatible vision endpoint (every call goes through `LLMClient`).

- `VLMJudge` (pointwise, a `Judge`): shows the image with its annotation drawn on it (boxes tagged with index
  and class, drawn with Pillow) and the rubric in `prompts/vlm_pointwise.md`; the answer must give its reasons
  first, then realism and label-correctness scores (1–5), then accept / edit / reject and an edit instruction.
  With `samples > 1` it asks several times and takes the majority decision (a tie goes to the stricter one).
- `PairwiseVLMJudge` (a `PairwiseJudge`): shows two images in both orders, (a, b) and (b, a), `samples` times
  each, and turns the votes into P(a better) (ties count half) plus the position inconsistency
  (see `pairwise.py`), with the rubric in `prompts/vlm_pairwise.md`.

Answers are validated with pydantic; an invalid answer (bad JSON, a score out of range, the decision written
before the reasons, an edit without instruction) is sent back with the error by `LLMClient.complete_json`.
Common synonyms of the decision words ("keep", "discard", "fix", "image 1", ...) are mapped to the canonical
ones. Transport errors and answers that stay invalid raise the client's `LLMError`s.
"""

from __future__ import annotations

import io
from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator, model_validator

from synthloop.prompts import load_prompt
from synthloop.tools.critic.base import BaseJudge, JudgeInput
from synthloop.tools.critic.pairwise import PairwiseResult, Position, Vote, result_from_votes
from synthloop.tools.llm.client import LLMClient, user_message
from synthloop.tools.types import Annotation, Decision, TaskSpec, Verdict

if TYPE_CHECKING:
    from PIL import Image

POINTWISE_PROMPT = "vlm_pointwise"
PAIRWISE_PROMPT = "vlm_pairwise"
SAMPLING_TEMPERATURE = 0.7  # used when samples > 1 and no temperature is given: repeats must be able to differ
_SEVERITY = {Decision.reject: 2, Decision.edit: 1, Decision.accept: 0}
_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40)]
_DECISION_WORDS = {
    "accept": "accept", "accepted": "accept", "keep": "accept", "pass": "accept", "approve": "accept",
    "reject": "reject", "rejected": "reject", "discard": "reject", "drop": "reject", "fail": "reject",
    "edit": "edit", "fix": "edit", "repair": "edit", "revise": "edit", "modify": "edit",
}
_POSITION_WORDS = {
    "first": "first", "1": "first", "image 1": "first", "first image": "first", "a": "first", "left": "first",
    "second": "second", "2": "second", "image 2": "second", "second image": "second", "b": "second",
    "right": "second", "tie": "tie", "equal": "tie", "same": "tie", "draw": "tie", "neither": "tie", "both": "tie",
}


def _keys_in_order(data: Any, first: str, then: str) -> Any:
    if isinstance(data, dict) and first in data and then in data:
        keys = list(data)
        if keys.index(then) < keys.index(first):
            raise ValueError(f"write '{first}' before '{then}': give the reasons first, then the verdict")
    return data


def _canonical(value: Any, words: dict[str, str]) -> Any:
    return words.get(value.strip().lower(), value) if isinstance(value, str) else value


Reason = Annotated[str, Field(min_length=1, max_length=500)]


class PointwiseAnswer(BaseModel):
    """What the pointwise rubric asks for, reasons first."""

    reasons: list[Reason] = Field(min_length=1, max_length=6)
    realism: int = Field(ge=1, le=5)
    label_correctness: int = Field(ge=1, le=5)
    decision: Literal["accept", "reject", "edit"]
    edit_instruction: str = Field(default="", max_length=300)

    @model_validator(mode="before")
    @classmethod
    def _reasons_first(cls, data: Any) -> Any:
        return _keys_in_order(data, "reasons", "decision")

    @field_validator("decision", mode="before")
    @classmethod
    def _map_decision(cls, value: Any) -> Any:
        return _canonical(value, _DECISION_WORDS)

    @model_validator(mode="after")
    def _edit_has_instruction(self) -> PointwiseAnswer:
        if self.decision == "edit" and not self.edit_instruction.strip():
            raise ValueError("decision 'edit' needs an 'edit_instruction'")
        return self


class PairwiseAnswer(BaseModel):
    """What the pairwise rubric asks for, reasons first."""

    reasons: list[Reason] = Field(min_length=1, max_length=6)
    winner: Literal["first", "second", "tie"]

    @model_validator(mode="before")
    @classmethod
    def _reasons_first(cls, data: Any) -> Any:
        return _keys_in_order(data, "reasons", "winner")

    @field_validator("winner", mode="before")
    @classmethod
    def _map_winner(cls, value: Any) -> Any:
        return _canonical(value, _POSITION_WORDS)


# -- images -----------------------------------------------------------------------------------------------


def _to_pil(image: np.ndarray | Image.Image) -> Image.Image:
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got shape {array.shape} dtype {array.dtype}")
    return Image.fromarray(array[..., :3])


def _resize(image: Image.Image, min_side: int, max_side: int) -> tuple[Image.Image, float]:
    from PIL import Image

    longest = max(image.size)
    factor = max_side / longest if longest > max_side else min_side / longest if longest < min_side else 1.0
    if factor == 1.0:
        return image, 1.0
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    resample = Image.Resampling.LANCZOS if factor < 1 else Image.Resampling.NEAREST
    return image.resize(size, resample), factor


def draw_annotation(
    image: np.ndarray | Image.Image,
    annotation: Annotation | None,
    class_names: list[str] | None = None,
    *,
    min_side: int = 256,
    max_side: int = 1024,
) -> Image.Image:
    """The image (resized so its longer side is in [min_side, max_side]) with every instance's box drawn and
    tagged "index class", one colour per class (in `class_names` order when given)."""
    from PIL import ImageDraw, ImageFont

    picture, factor = _resize(_to_pil(image), min_side, max_side)
    if annotation is None or not annotation.instances:
        return picture
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    order = {name: i for i, name in enumerate(class_names or [])}
    width = max(1, round(max(picture.size) / 300))
    for index, inst in enumerate(annotation.instances):
        colour = _PALETTE[order.setdefault(inst.category, len(order)) % len(_PALETTE)]
        x, y, w, h = (v * factor for v in inst.bbox)
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=width)
        tag = f"{index} {inst.category}"
        left, top, right, bottom = draw.textbbox((x, y), tag, font=font)
        ty = y - (bottom - top) - 2 if y - (bottom - top) - 2 >= 0 else y
        left, top, right, bottom = draw.textbbox((x, ty), tag, font=font)
        draw.rectangle([left - 1, top - 1, right + 1, bottom + 1], fill=colour)
        draw.text((x, ty), tag, fill=(0, 0, 0) if sum(colour) > 380 else (255, 255, 255), font=font)
    return picture


def png_bytes(image: Image.Image) -> bytes:
    """PNG encoding of a PIL image (what is sent to the endpoint)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


# -- prompts ----------------------------------------------------------------------------------------------


def describe_spec(spec: TaskSpec) -> str:
    """The request as the judge reads it: scene, style, classes with their counts per image."""
    lines = []
    if spec.request:
        lines.append(f"Request: {spec.request}")
    if spec.scene:
        lines.append(f"Scene: {spec.scene}")
    if spec.style:
        lines.append(f"Style: {spec.style}")
    counts = ", ".join(f"{o.render_prompt} ({o.min_count}–{o.max_count})" for o in spec.objects)
    lines.append(f"Objects per image: {counts}")
    return "\n".join(lines)


def describe_instances(annotation: Annotation | None) -> str:
    """One line per labelled instance: index, class, pixel xyxy box."""
    if annotation is None or not annotation.instances:
        return "(none)"
    return "\n".join(
        f"{i}: {inst.category} at {inst.bbox[0]:.0f},{inst.bbox[1]:.0f},"
        f"{inst.bbox[0] + inst.bbox[2]:.0f},{inst.bbox[1] + inst.bbox[3]:.0f}"
        for i, inst in enumerate(annotation.instances)
    )


def _temperature(samples: int, temperature: float | None) -> float | None:
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    return temperature if temperature is not None or samples == 1 else SAMPLING_TEMPERATURE


# -- judges -----------------------------------------------------------------------------------------------


class VLMJudge(BaseJudge):
    """Pointwise VLM judge: reasons, realism and label scores, and accept / edit / reject for one sample."""

    def __init__(self, client: LLMClient, *, id: str = "vlm.pointwise", samples: int = 1,
                 temperature: float | None = None, max_tokens: int = 600, max_side: int = 1024) -> None:
        """`samples` answers per image (majority decision); `temperature` defaults to the client's for one
        sample and to 0.7 for several."""
        self.client = client
        self.id = id
        self.samples = samples
        self.temperature = _temperature(samples, temperature)
        self.max_tokens = max_tokens
        self.max_side = max_side
        self.prompt = load_prompt(POINTWISE_PROMPT)

    def messages(self, item: JudgeInput) -> list[dict[str, Any]]:
        """The request for one sample: the rendered rubric and the annotated image."""
        annotation = item.sample.annotation
        text = self.prompt.render(description=describe_spec(item.spec), instances=describe_instances(annotation))
        picture = draw_annotation(item.image, annotation, item.spec.class_names, max_side=self.max_side)
        return [user_message(text, [png_bytes(picture)])]

    def answers(self, item: JudgeInput) -> list[PointwiseAnswer]:
        """`samples` validated answers for one sample."""
        messages = self.messages(item)
        return [
            self.client.complete_json(messages, PointwiseAnswer, max_tokens=self.max_tokens,
                                      temperature=self.temperature)
            for _ in range(self.samples)
        ]

    def judge(self, item: JudgeInput) -> Verdict:
        """Ask the VLM and turn its answer(s) into a verdict (reasons of the answers that back the decision)."""
        answers = self.answers(item)
        counts = Counter(Decision(a.decision) for a in answers)
        top = max(counts.values())
        decision = max((d for d, c in counts.items() if c == top), key=_SEVERITY.__getitem__)
        backing = [a for a in answers if a.decision == decision.value]
        reasons = list(dict.fromkeys(r for a in backing for r in a.reasons))
        fix = next((a.edit_instruction for a in backing if a.edit_instruction.strip()), None)
        scores = {
            "realism": float(np.mean([a.realism for a in answers])),
            "label_correctness": float(np.mean([a.label_correctness for a in answers])),
            "agreement": top / len(answers),
        }
        return Verdict(judge=self.id, decision=decision, reasons=reasons, scores=scores,
                       fix=fix if decision == Decision.edit else None, prompt_hash=self.prompt.sha256)


class PairwiseVLMJudge:
    """Pairwise VLM judge: both presentation orders, `samples` votes each, aggregated into P(a better)."""

    def __init__(self, client: LLMClient, *, id: str = "vlm.pairwise", samples: int = 1,
                 temperature: float | None = None, max_tokens: int = 400, max_side: int = 768,
                 show_annotations: bool = True) -> None:
        """`samples` votes per order; `temperature` defaults to the client's for one sample, 0.7 for several.
        `show_annotations` draws the boxes on the images in `compare_items`."""
        self.client = client
        self.id = id
        self.samples = samples
        self.temperature = _temperature(samples, temperature)
        self.max_tokens = max_tokens
        self.max_side = max_side
        self.show_annotations = show_annotations
        self.prompt = load_prompt(PAIRWISE_PROMPT)

    def _ask(self, text: str, first: bytes, second: bytes) -> PairwiseAnswer:
        return self.client.complete_json([user_message(text, [first, second])], PairwiseAnswer,
                                         max_tokens=self.max_tokens, temperature=self.temperature)

    def compare(
        self,
        a_image: np.ndarray | Image.Image,
        b_image: np.ndarray | Image.Image,
        context: str = "",
        *,
        a_id: str = "a",
        b_id: str = "b",
    ) -> PairwiseResult:
        """Compare two images for the request described by `context`: for each of `samples` rounds, ask
        (a, b) then (b, a). The matches record `swapped=True` for the (b, a) votes."""
        a_png = png_bytes(_resize(_to_pil(a_image), 256, self.max_side)[0])
        b_png = png_bytes(_resize(_to_pil(b_image), 256, self.max_side)[0])
        text = self.prompt.render(context=context or "(no description given)")
        votes: list[Vote] = []
        for _ in range(self.samples):
            for swapped, first, second in ((False, a_png, b_png), (True, b_png, a_png)):
                answer = self._ask(text, first, second)
                position: Position = answer.winner
                votes.append(Vote(position, swapped=swapped, reasons=tuple(answer.reasons)))
        return result_from_votes(a_id, b_id, self.id, votes, prompt_hash=self.prompt.sha256)

    def compare_items(self, a: JudgeInput, b: JudgeInput, *, a_id: str, b_id: str) -> PairwiseResult:
        """Compare two samples of the same spec (annotations drawn when `show_annotations`)."""
        def picture(item: JudgeInput) -> Image.Image | np.ndarray:
            if not self.show_annotations:
                return item.image
            return draw_annotation(item.image, item.sample.annotation, item.spec.class_names,
                                   max_side=self.max_side)

        return self.compare(picture(a), picture(b), describe_spec(a.spec), a_id=a_id, b_id=b_id)
