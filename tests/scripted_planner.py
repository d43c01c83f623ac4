"""A scripted planner for front-end tests (no LLM): `SYNTHLOOP_PLANNER=scripted_planner:make_planner`.

- a request naming none of cup / plate / fork gets a spec with a clarifying question;
- otherwise a tiny spec (96×96, 6 images, COCO) with the named classes; a number in the text sets the image
  count ("make it 8"), "yolo" adds the YOLO format.
Conversational edits fall back to re-planning `request + message`
(see `synthloop.agent.planner.factories.make_reviser`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from synthloop.tools.types import ExportFormat, ObjectSpec, Task, TaskSpec

CLASSES = ("cup", "plate", "fork")
QUESTION = "Which objects should the images contain?"


def scripted_plan(request: str, n_images: int | None = None, seed: int | None = None) -> TaskSpec:
    """Plan `request` by keyword matching."""
    text = request.lower()
    names = [name for name in CLASSES if re.search(rf"\b{name}s?\b", text)]
    numbers = [int(n) for n in re.findall(r"\b(\d{1,3})\b", text)]
    formats = [ExportFormat.coco, *([ExportFormat.yolo] if "yolo" in text else [])]
    questions = [] if names else [QUESTION]
    objects = [ObjectSpec(name=n, min_count=1 if i == 0 else 0, max_count=2) for i, n in enumerate(names)]
    return TaskSpec(
        objects=objects or [ObjectSpec(name="object")],
        n_images=n_images or (numbers[-1] if numbers else 6), width=96, height=96,
        tasks=[Task.detection, Task.instance_segmentation], formats=formats, seed=seed or 5,
        request=request, questions=questions, defaults_used=[] if numbers else ["n_images=6 (scripted)"],
    )


def make_planner(config: Any, n_images: int | None, seed: int | None) -> Callable[[str], TaskSpec]:
    """The hook `synthloop.agent.planner.factories.make_planner` calls when SYNTHLOOP_PLANNER points here."""
    return lambda request: scripted_plan(request, n_images, seed)
