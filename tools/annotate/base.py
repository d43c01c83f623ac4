"""The annotator protocol: a layout and its render in, an `Annotation` out."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from synthloop.tools.render.base import RenderResult
from synthloop.tools.types import Annotation, Layout, TaskSpec


@runtime_checkable
class Annotator(Protocol):
    """Labels one rendered image."""

    id: str

    def annotate(self, layout: Layout, render: RenderResult, spec: TaskSpec) -> Annotation:
        """Return the annotation (pixel boxes, RLE masks, mask areas) for `render`."""
        ...
