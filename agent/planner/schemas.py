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


class PlanProposal(BaseModel):
    """What the LLM is asked to extract; every list is bounded so small models cannot loop."""

    classes: Annotated[list[ShortText], clip(8), Field(max_length=8)] = Field(default_factory=list)
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
