"""The renderer protocol: a `Layout` in, pixels (and, where the renderer knows them, exact masks) out.

Renderers are batched: `render_batch` takes many requests at once (a GPU pipeline renders them in one call);
`BaseRenderer` gives per-image backends a `render_batch` that loops over `render`. The execution engine
(agent/engine.py) decides who calls what from which thread, using the declared `capabilities`.

A renderer that declares `capabilities.edits_images` also applies plain-language instructions to an image
(`edit_image`, InstructDiffusion-style): the critic's `edit` verdicts that ask for an image change ("make the
cup red") are repaired with it. `BaseRenderer.edit_image` refuses by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from synthloop.tools.backend import Backend, Capabilities
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
    info: JSON-ready provenance beyond ids (e.g. which cut-out each object came from, with its licence);
        copied into the sample's `render_info`.
    """

    image: np.ndarray
    instance_map: np.ndarray | None = None
    amodal_areas: list[int] = field(default_factory=list)
    backend: dict[str, str] = field(default_factory=dict)
    prompt: str = ""
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderRequest:
    """One image to render: the layout, the spec it belongs to, its seed and (for text-conditioned
    renderers) its prompt. Same request → same pixels, whatever else is in the batch."""

    layout: Layout
    spec: TaskSpec
    seed: int
    prompt: str = ""


@dataclass(frozen=True)
class RenderReview:
    """What a renderer will and will not deliver for a spec, shown before the user approves it.

    notes: one line per class on where its objects come from ("cup: 3 photos (Tux Paint)");
    unsupported_style: the spec's style terms it cannot render; reason: why, in a few words.
    """

    notes: tuple[str, ...] = ()
    unsupported_style: tuple[str, ...] = ()
    reason: str = ""


def style_terms(spec: TaskSpec) -> list[str]:
    """The spec's style as separate terms ("night, rain" → ["night", "rain"])."""
    return [term.strip() for term in spec.style.split(",") if term.strip()]


@runtime_checkable
class Renderer(Protocol):
    """Turns layouts into images. Same layout + spec + seed (+ prompt) → same pixels."""

    id: str
    capabilities: Capabilities

    def render(self, layout: Layout, spec: TaskSpec, seed: int, *, prompt: str = "") -> RenderResult:
        """Render `layout` at (layout.height, layout.width)."""
        ...

    def render_batch(self, requests: Sequence[RenderRequest]) -> list[RenderResult]:
        """Render every request, results in request order."""
        ...

    def review(self, spec: TaskSpec) -> RenderReview:
        """What this renderer will and will not deliver for `spec` (notes per class, style terms it cannot
        render)."""
        ...

    def edit_image(self, image: np.ndarray, instruction: str, seed: int) -> np.ndarray:
        """`image` ((H, W, 3) uint8) changed as `instruction` says, same size; same inputs → same pixels. Called
        only when `capabilities.edits_images` is declared."""
        ...


class BaseRenderer(Backend):
    """Defaults for renderers: a per-image `render_batch`."""

    capabilities: ClassVar[Capabilities] = Capabilities()

    def render(self, layout: Layout, spec: TaskSpec, seed: int, *, prompt: str = "") -> RenderResult:
        """Render one layout (subclasses implement this or `render_batch`)."""
        return self.render_batch([RenderRequest(layout, spec, seed, prompt)])[0]

    def review(self, spec: TaskSpec) -> RenderReview:
        """A text-conditioned renderer puts the style into its prompt; any other renders none of it."""
        if self.capabilities.text_conditioned:
            return RenderReview()
        return RenderReview(unsupported_style=tuple(style_terms(spec)),
                            reason=f"the {self.id} renderer draws no weather, light or camera styles")

    def render_batch(self, requests: Sequence[RenderRequest]) -> list[RenderResult]:
        """Render each request in turn."""
        if type(self).render is BaseRenderer.render:
            raise NotImplementedError(f"{type(self).__name__} implements neither render nor render_batch")
        return [self.render(r.layout, r.spec, r.seed, prompt=r.prompt) for r in requests]

    def edit_image(self, image: np.ndarray, instruction: str, seed: int) -> np.ndarray:
        """Not supported unless a subclass declares `edits_images` and implements it."""
        raise NotImplementedError(f"renderer '{self.id}' cannot edit images (it does not declare edits_images)")

    def edit_provenance(self) -> dict[str, str]:
        """What applies the edits (editor, model, revision), recorded with each edit pair."""
        return {"editor": self.id}


def can_edit_images(renderer: Renderer) -> bool:
    """Whether `renderer` declares instruction edits and has the method to apply them (a remote view of a
    renderer may declare the capability without carrying the method)."""
    return renderer.capabilities.edits_images and callable(getattr(renderer, "edit_image", None))


def edit_provenance(renderer: Renderer) -> dict[str, str]:
    """The renderer's record of what applies its edits (`{"editor": id}` when it keeps none)."""
    provenance = getattr(renderer, "edit_provenance", None)
    return dict(provenance()) if callable(provenance) else {"editor": renderer.id}
