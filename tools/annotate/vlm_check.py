"""The VLM's yes/no on model labels: one more certificate source (`vlm`) for the SAM and detector annotators.

With `vlm: {base_url: http://host/v1, model: NAME}` in an annotator block, each image is sent once with its
instances drawn as numbered, class-tagged boxes (as the VLM judge draws them) and the rubric in
`prompts/vlm_presence.md`; the answer holds, per index, a short reason and then yes/no. "yes" adds `vlm: 1.0`
to that instance's certificate, "no" `vlm: 0.0` (agreement 0); an index the answer leaves out gets no `vlm`
source. Instances with nothing visible (area 0) are not shown. A VLM that cannot be reached or keeps answering
invalid JSON raises the client's `LLMError`: a configured check that cannot run is not silently skipped.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from synthloop.prompts import load_prompt
from synthloop.tools.annotate.certificate import certify
from synthloop.tools.llm.client import LLMClient, user_message
from synthloop.tools.types import MAX_OBJECTS_PER_IMAGE, Annotation, Instance

PRESENCE_PROMPT = "vlm_presence"


class VLMEndpoint(BaseModel):
    """Where the VLM is: any OpenAI-compatible vision endpoint (satisfies `LLMSettings`)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(min_length=1, description="OpenAI-compatible vision endpoint, e.g. http://host/v1")
    model: str = Field(min_length=1, description="Vision model name sent to the endpoint.")
    api_key_env: str = Field(default="SYNTHLOOP_VLM_API_KEY", description="Environment variable with the key.")
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
    max_reasks: int = Field(default=2, ge=0, le=5)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    structured_output: Literal["json_object_schema", "json_schema", "json_object", "none"] = "json_schema"
    max_tokens: int = Field(default=800, ge=16, le=8192, description="Answer budget per image.")

    def api_key(self) -> str:
        """The API key from the environment (a placeholder for local servers that need none)."""
        return os.environ.get(self.api_key_env, "not-needed")

    def client(self) -> LLMClient:
        """The client for this endpoint (retries, timeouts, validated JSON)."""
        return LLMClient.from_settings(self)


class PresenceItem(BaseModel):
    """One instance's answer, the reason before the yes/no."""

    index: int = Field(ge=0)
    reason: Annotated[str, Field(max_length=300)] = ""
    present: bool

    @model_validator(mode="before")
    @classmethod
    def _yes_no(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("present"), str):
            word = data["present"].strip().lower()
            if word in ("yes", "no"):
                return {**data, "present": word == "yes"}
        return data


class PresenceAnswer(BaseModel):
    """What the presence rubric asks for."""

    answers: list[PresenceItem] = Field(max_length=MAX_OBJECTS_PER_IMAGE)


def vlm_presence(client: LLMClient, image: np.ndarray, instances: list[Instance], *, class_names: list[str],
                 max_tokens: int = 800) -> dict[int, bool]:
    """The VLM's yes/no per instance index (instances with area 0 are not asked about), in one call."""
    from synthloop.tools.critic.vlm import describe_instances, draw_annotation, png_bytes

    shown = Annotation(instances=[inst for inst in instances if inst.area > 0])
    if not shown.instances:
        return {}
    original = [i for i, inst in enumerate(instances) if inst.area > 0]
    text = load_prompt(PRESENCE_PROMPT).render(instances=describe_instances(shown))
    picture = draw_annotation(image, shown, class_names)
    answer = client.complete_json([user_message(text, [png_bytes(picture)])], PresenceAnswer, max_tokens=max_tokens)
    return {original[item.index]: item.present for item in answer.answers if item.index < len(original)}


def add_vlm_evidence(instances: list[Instance], answers: dict[int, bool]) -> list[Instance]:
    """The instances with `vlm` added to the certificates of those the VLM answered for (re-certified)."""
    updated = []
    for index, inst in enumerate(instances):
        if index in answers and inst.certificate is not None:
            sources = {**inst.certificate.sources, "vlm": 1.0 if answers[index] else 0.0}
            inst = inst.model_copy(update={"certificate": certify(sources)})
        updated.append(inst)
    return updated
