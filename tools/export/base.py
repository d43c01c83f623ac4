"""The exporter protocol (fiftyone style): setup, export_sample per kept sample, close."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from synthloop.tools.types import Sample, TaskSpec


@runtime_checkable
class Exporter(Protocol):
    """Writes one dataset format under an output directory. All files are written atomically."""

    id: str

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Prepare for a new export into `out_dir`."""
        ...

    def export_sample(self, sample: Sample) -> None:
        """Add one kept sample (its image already sits at out_dir / sample.image_path)."""
        ...

    def close(self) -> None:
        """Write the format's files."""
        ...
