"""Hand-made scenes for the language-label tests: rectangles painted back to front, labelled exactly."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synthloop.tools.annotate.exact import ExactAnnotator
from synthloop.tools.render.base import RenderResult
from synthloop.tools.types import Annotation, Layout, LayoutObject, ObjectSpec, Relation, Task, TaskSpec

ALL_TASKS = [Task.detection, Task.captioning, Task.referring_expressions, Task.scene_graph]


@dataclass(frozen=True)
class Thing:
    """One object: class, pixel box (x0, y0, x1, y1), depth, attributes."""

    category: str
    box: tuple[int, int, int, int]
    depth: int = 0
    attributes: tuple[str, ...] = field(default=())


def paint(things: list[Thing], width: int, height: int) -> tuple[np.ndarray, list[int]]:
    """Instance map (label k+1 for thing k, painted by depth) and the full (amodal) areas."""
    instance_map = np.zeros((height, width), np.int32)
    for k in sorted(range(len(things)), key=lambda i: (things[i].depth, i)):
        x0, y0, x1, y1 = things[k].box
        instance_map[y0:y1, x0:x1] = k + 1
    areas = [(t.box[2] - t.box[0]) * (t.box[3] - t.box[1]) for t in things]
    return instance_map, areas


def scene(
    things: list[Thing],
    *,
    width: int = 200,
    height: int = 200,
    tasks: list[Task] | None = None,
    relations: list[Relation] | None = None,
    scene_text: str = "",
    style: str = "",
) -> tuple[Layout, Annotation, TaskSpec]:
    """Layout, exact annotation and spec of hand-made `things`."""
    names = list(dict.fromkeys(t.category for t in things)) or ["cup"]
    spec = TaskSpec(
        objects=[ObjectSpec(name=n, min_count=0, max_count=10) for n in names],
        width=width,
        height=height,
        tasks=tasks or ALL_TASKS,
        scene=scene_text,
        style=style,
    )
    objects = [
        LayoutObject(category=t.category, box=(t.box[0] / width, t.box[1] / height, t.box[2] / width,
                                               t.box[3] / height), depth=t.depth, attributes=list(t.attributes))
        for t in things
    ]
    layout = Layout(width=width, height=height, objects=objects, relations=relations or [], seed=0)
    instance_map, areas = paint(things, width, height)
    render = RenderResult(image=np.zeros((height, width, 3), np.uint8), instance_map=instance_map, amodal_areas=areas)
    return layout, ExactAnnotator().annotate(layout, render, spec), spec
