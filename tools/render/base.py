"""The renderer protocol: a `Layout` in, pixels (and, where the renderer knows them, exact masks) out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from synthloop.tools.types import Layout, TaskSpec


@dataclass
class RenderResult:
    """One rendered image.

    image: (H, W, 3) uint8 RGB.
    instance_map: (H, W) integer map of *visible* pixels, 0 = background, k = layout object k-1; None when
        the renderer does not know exact masks (diffusion), in which case an annotator must find them.
    amodal_areas: full (unoccluded) pixel area per layout object, for occlusion checks; empty when unknown.
    backend: renderer id and model id, recorded as provenance.
    prompt: the text prompt used, if any.
    """

    image: np.ndarray
    instance_map: np.ndarray | None = None
    amodal_areas: list[int] = field(default_factory=list)
    backend: dict[str, str] = field(default_factory=dict)
    prompt: str = ""


@runtime_checkable
class Renderer(Protocol):
    """Turns a layout into an image. Same layout + spec + seed → same pixels."""

    id: str

    def render(self, layout: Layout, spec: TaskSpec, seed: int) -> RenderResult:
        """Render `layout` at (layout.height, layout.width)."""
        ...
