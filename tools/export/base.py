"""The exporter protocol (fiftyone style): setup, export_sample per kept sample, close."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from synthloop.tools.backend import Backend
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
        self._written: set[Path] = set()

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
        self._written = set()

    def check_sample(self, sample: Sample) -> None:
        """Refuse a sample whose split the spec does not have."""
        if sample.split not in self.spec.splits.names():
            raise ValueError(f"sample {sample.id}: split '{sample.split}' is not in {self.spec.splits.names()}")

    def wrote(self, path: Path) -> Path:
        """Note a file this export wrote (kept by `remove_stale`); returns it."""
        self._written.add(path)
        return path

    def remove_stale(self, folder: Path) -> None:
        """Delete the files directly in `folder` that this export did not write."""
        if folder.is_dir():
            for path in folder.iterdir():
                if path.is_file() and path not in self._written:
                    path.unlink()
