"""Graph state: ids, counters and small JSON values only — images and masks live on disk.

Samples in flight are stored as plain JSON dicts (``Sample.model_dump(mode="json")``) so the SQLite
checkpointer serialises them without custom types; nodes validate them back into `Sample` on read.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Slot(TypedDict, total=False):
    """A place in the dataset still to fill: sample index and the attempt number to try next.

    A re-render keeps the previous attempt's `layout`; `repairs` carries what was done so far.
    """

    index: int
    attempt: int
    layout: dict[str, Any]
    repairs: list[str]


class RunState(TypedDict, total=False):
    """State of one run. Counters are the source of truth for routing; records on disk for the data."""

    request: str
    spec: dict[str, Any] | None          # TaskSpec as JSON
    answers: list[str]                   # clarifications the user gave, in order
    messages: list[dict[str, str]]       # the conversation about the spec: {"role", "content"}
    approved: bool
    cancelled: bool
    retry_slots: list[Slot]              # rejected samples to lay out again
    batch: list[dict[str, Any]]          # samples in flight (Sample as JSON)
    best_of_n: int                       # candidate renders per layout (1 = no selection)
    next_index: int                      # next fresh sample index
    kept: int
    rejected: int
    attempts: int
    exported: bool
    stop_reason: str
