"""The layout protocol: a TaskSpec and a seed in, one `Layout` out."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from synthloop.tools.backend import Backend, Capabilities
from synthloop.tools.types import Layout, TaskSpec


@runtime_checkable
class LayoutSampler(Protocol):
    """Places objects for one image. Same spec + seed → same layout."""

    id: str
    capabilities: Capabilities

    def sample(self, spec: TaskSpec, seed: int) -> Layout:
        """Return a valid layout (in bounds, counts and overlap limits from the spec) for `seed`."""
        ...

    def review(self, spec: TaskSpec) -> list[str]:
        """Notes for the plan the user approves (e.g. classes a reference set does not cover)."""
        ...

    def report(self, out_dir: Path, spec: TaskSpec) -> str | None:
        """Write whatever the sampler measures about its layouts into `out_dir`; a card section (markdown)."""
        ...


class BaseLayoutSampler(Backend):
    """Defaults for layout samplers (id, options, capabilities, an empty review)."""

    def review(self, spec: TaskSpec) -> list[str]:
        """Nothing to note."""
        return []

    def report(self, out_dir: Path, spec: TaskSpec) -> str | None:
        """Nothing to report."""
        return None
