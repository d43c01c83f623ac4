"""The exporter protocol (fiftyone style): setup, export_sample per kept sample, close.

Exporters keep memory flat in the number of samples: a sample's own files are written when it arrives, and
what a format gathers over many samples (COCO arrays, per-split lists, the names of written files) goes to
temporary files on disk (`streaming`), never into lists. Samples may arrive in any order (the loop's export
session gets them as they are kept; `export_all` in id order): what is written in id order is sorted on disk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from synthloop.tools.backend import Backend
from synthloop.tools.export.streaming import NameSet
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


class BaseExporter(Backend):
    """What the exporters share: the output folder and spec after `setup`, the split check, and removal of
    files an earlier export wrote that this one did not (samples no longer kept)."""

    def __init__(self) -> None:
        self._out_dir: Path | None = None
        self._spec: TaskSpec | None = None
        self._written = NameSet()

    @property
    def out_dir(self) -> Path:
        """The output directory DIR (after setup)."""
        if self._out_dir is None:
            raise RuntimeError(f"{type(self).__name__} used before setup")
        return self._out_dir

    @property
    def spec(self) -> TaskSpec:
        """The spec being exported (after setup)."""
        if self._spec is None:
            raise RuntimeError(f"{type(self).__name__} used before setup")
        return self._spec

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Start a new export into `out_dir`."""
        self._out_dir = Path(out_dir)
        self._spec = spec
        self._written.close()
        self._written = NameSet()

    def check_sample(self, sample: Sample) -> None:
        """Refuse a sample whose split the spec does not have."""
        if sample.split not in self.spec.splits.names():
            raise ValueError(f"sample {sample.id}: split '{sample.split}' is not in {self.spec.splits.names()}")

    def wrote(self, path: Path) -> Path:
        """Note a file this export wrote (kept by `remove_stale`); returns it."""
        self._written.add(str(path))
        return path

    def remove_stale(self, folder: Path) -> None:
        """Delete the files directly in `folder` that this export did not write."""
        if not folder.is_dir():
            return
        with os.scandir(folder) as entries:  # streamed: a folder may hold millions of files
            stale = [entry.path for entry in entries if entry.is_file() and entry.path not in self._written]
        for path in stale:
            Path(path).unlink(missing_ok=True)

    def finish(self) -> None:
        """Free what the export kept on disk (call at the end of close)."""
        self._written.close()
