"""The run's contract with the user: every task, format and style word of the spec is delivered by the chosen
backends, or named back before approval.

The planner names back what it could not read (`not_understood`) and what synthloop never produces (depth
maps, keypoints, …). What depends on the backends is decided here, once they are built:
- a style term the renderer cannot render ("rain" for the procedural compositor) → `cannot_deliver` (style);
- a mask task (instance / semantic segmentation) with an annotator that gives boxes only → `cannot_deliver`
  (task);
- a format no exporter is registered for → `cannot_deliver` (format);
- where each class's objects come from ("cup: 3 photos (Tux Paint)"), as plan notes.
Under `--yes`, a `cannot_deliver` notice about a task or a format stops the run (exit 2): the user would be
told yes and given no.
"""

from __future__ import annotations

from synthloop.agent.planner.notices import MAX_NOTICES
from synthloop.tools.annotate.base import Annotator
from synthloop.tools.export.registry import EXPORTERS
from synthloop.tools.render.base import Renderer
from synthloop.tools.types import Notice, Task, TaskSpec

MASK_TASKS = (Task.instance_segmentation, Task.semantic_segmentation)


def backend_notices(spec: TaskSpec, renderer: Renderer, annotator: Annotator) -> tuple[list[Notice], list[str]]:
    """What the chosen backends cannot deliver for `spec`, and the renderer's notes per class."""
    review = renderer.review(spec)
    notices = [Notice(kind="cannot_deliver", text=term, reason=review.reason, about="style")
               for term in review.unsupported_style]
    if not annotator.capabilities.provides_masks:
        notices += [Notice(kind="cannot_deliver", text=task.value.replace("_", " "), about="task",
                           reason=f"the {annotator.id} annotator gives boxes only; choose one that segments "
                                  "(annotator: sam)")
                    for task in MASK_TASKS if task in spec.tasks]
    notices += [Notice(kind="cannot_deliver", text=fmt.value, about="format",
                       reason=f"no exporter is installed for it (available: {', '.join(EXPORTERS.names())})")
                for fmt in spec.formats if fmt.value not in EXPORTERS]
    return notices, list(review.notes)


def with_notices(spec: TaskSpec, notices: list[Notice]) -> TaskSpec:
    """The spec with `notices` added (each once, in order, within the spec's bound)."""
    merged = list(spec.notices)
    for notice in notices:
        if notice not in merged:
            merged.append(notice)
    return spec.model_copy(update={"notices": merged[:MAX_NOTICES]})


def blocking(spec: TaskSpec) -> list[Notice]:
    """Notices that stop an unattended (`--yes`) run: a task or a format that cannot be delivered."""
    return [n for n in spec.notices if n.kind == "cannot_deliver" and n.about in ("task", "format")]
