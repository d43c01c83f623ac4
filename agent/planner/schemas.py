"""What the planner LLM is asked to return: small, bounded extraction schemas (small models loop on unbounded
lists). Task, format and difficulty names are the enums' values (see `lexicon`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field

from synthloop.agent.planner.lexicon import DifficultyName, FormatName, TaskName
from synthloop.tools.types import ExportFormat, Task


def clip(limit: int) -> BeforeValidator:
    """Truncate strings/lists instead of rejecting them: grounding repairs content anyway."""

    def clip_value(value: object) -> object:
        return value[:limit] if isinstance(value, str | list) else value

    return BeforeValidator(clip_value)


ShortText = Annotated[str, clip(40), Field(max_length=40)]
MAX_CLASSES = 20  # object classes per dataset: the planner keeps the first 20 a request names


class PlanProposal(BaseModel):
    """What the LLM is asked to extract; every list is bounded so small models cannot loop."""

    classes: Annotated[list[ShortText], clip(MAX_CLASSES), Field(max_length=MAX_CLASSES)] = Field(default_factory=list)
    n_images: int | None = None
    width: int | None = None
    height: int | None = None
    tasks: Annotated[list[TaskName], clip(len(Task)), Field(max_length=len(Task))] = Field(default_factory=list)
    formats: Annotated[list[FormatName], clip(len(ExportFormat)), Field(max_length=len(ExportFormat))] = Field(
        default_factory=list
    )
    scene: Annotated[str, clip(80), Field(max_length=80)] = ""
    style: Annotated[str, clip(80), Field(max_length=80)] = ""
    difficulty: DifficultyName | None = None


class GlossaryEntry(BaseModel):
    """One phrase of a non-English request, exactly as written there, and its English meaning."""

    source: ShortText
    english: ShortText


class Translation(BaseModel):
    """A non-English request in English, with a glossary that ties each English phrase to the request's words
    (what lets the planner check the translation against the original)."""

    english: Annotated[str, clip(1500), Field(max_length=1500)] = ""
    glossary: Annotated[list[GlossaryEntry], clip(40), Field(max_length=40)] = Field(default_factory=list)
