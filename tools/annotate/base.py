"""The annotator protocol: a layout and its render in, an `Annotation` out.

Annotators are batched like renderers: `annotate_batch` gets many images at once (a SAM model embeds them in
one pass); `BaseAnnotator` gives per-image annotators a looping default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from synthloop.tools.backend import Backend, Capabilities
from synthloop.tools.render.base import RenderResult
from synthloop.tools.types import Annotation, Layout, TaskSpec


@dataclass(frozen=True)
class AnnotateRequest:
    """One image to label: its layout, its render, and the spec."""

    layout: Layout
    render: RenderResult
    spec: TaskSpec


@runtime_checkable
class Annotator(Protocol):
    """Labels rendered images."""

    id: str
    capabilities: Capabilities

    def annotate(self, layout: Layout, render: RenderResult, spec: TaskSpec) -> Annotation:
        """Return the annotation (pixel boxes, RLE masks, mask areas) for `render`."""
        ...

    def annotate_batch(self, requests: Sequence[AnnotateRequest]) -> list[Annotation]:
        """Annotate every request, results in request order."""
        ...


class BaseAnnotator(Backend):
    """Defaults for annotators: a per-image `annotate_batch`."""

    capabilities: ClassVar[Capabilities] = Capabilities()

    def annotate(self, layout: Layout, render: RenderResult, spec: TaskSpec) -> Annotation:
        """Annotate one image (subclasses implement this or `annotate_batch`)."""
        return self.annotate_batch([AnnotateRequest(layout, render, spec)])[0]

    def annotate_batch(self, requests: Sequence[AnnotateRequest]) -> list[Annotation]:
        """Annotate each request in turn."""
        if type(self).annotate is BaseAnnotator.annotate:
            raise NotImplementedError(f"{type(self).__name__} implements neither annotate nor annotate_batch")
        return [self.annotate(r.layout, r.render, r.spec) for r in requests]
