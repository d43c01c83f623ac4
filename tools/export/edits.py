"""Edit pairs of the instruction-edit repairs, for users who train image editors (InstructPix2Pix-style data).

When the critic asked for an image change and the renderer's editor applied it (agent/nodes.py
`_edit_in_place`), the loop wrote the image before and after the edit and recorded the edit in the sample's
`render_info["edits"]`. For the kept samples this exporter lists them; on-disk layout under the output
directory DIR, written only when some kept sample was edited:

    DIR/edits/{id}-a{attempt}-src.png   the image the editor was given (the render of that attempt)
    DIR/edits/{id}-a{attempt}-dst.png   the editor's result (the dataset image, unless edited again)
    DIR/edits/edits.jsonl               one line per edit, sorted by sample id then attempt:
        {"id", "split", "attempt", "instruction", "seed", "source", "result", "image", "editor", "causes"}
        (paths relative to DIR; `image` is the sample's dataset image, `editor` names model and revision,
        `causes` the verdicts that asked for the edit)

Pairs of attempts the critic rejected after their edit are not listed, and their files are removed at close
(as are the files of an earlier export that this one does not list). Memory stays flat: each sample's lines
are spooled to disk as it arrives.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from synthloop.tools.export.base import BaseExporter
from synthloop.tools.export.streaming import SortedSpool, write_lines
from synthloop.tools.types import Sample, TaskSpec

EDITS_DIR = "edits"
_PAIR_FILE = re.compile(rf"^{EDITS_DIR}/[A-Za-z0-9_\-]+-(?:src|dst)\.png$")


class EditPairsExporter(BaseExporter):
    """Writes `edits/edits.jsonl` for the kept samples' instruction edits (see the module docstring)."""

    id = "edits"

    def __init__(self) -> None:
        super().__init__()
        self._lines: SortedSpool | None = None

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Start a new export into `out_dir`."""
        super().setup(out_dir, spec)
        if self._lines is not None:
            self._lines.close()
        self._lines = SortedSpool(Path(out_dir))

    def export_sample(self, sample: Sample) -> None:
        """Spool one line per edit of the sample; its pair files must exist under edits/."""
        if self._lines is None:
            raise RuntimeError("EditPairsExporter used before setup")
        for number, record in enumerate(sample.render_info.get("edits") or []):
            line = self._line(sample, record)
            for key in ("source", "result"):
                self.wrote(self.out_dir / line[key])
            self._lines.add(f"{sample.id}\0{line['attempt']:012d}\0{number:06d}", json.dumps(line, ensure_ascii=False))

    def _line(self, sample: Sample, record: Any) -> dict[str, Any]:
        if not isinstance(record, dict) or not isinstance(record.get("attempt"), int):
            raise ValueError(f"sample {sample.id}: an edit record needs an integer 'attempt', got {record!r}")
        for key in ("source", "result"):
            path = record.get(key)
            if not isinstance(path, str) or not _PAIR_FILE.match(path):
                raise ValueError(f"sample {sample.id}: edit {key} {path!r} is not a file name under {EDITS_DIR}/")
            if not (self.out_dir / path).is_file():
                raise ValueError(f"sample {sample.id}: edit {key} {path} is missing")
        return {"id": sample.id, "split": sample.split, "attempt": record["attempt"],
                "instruction": str(record.get("instruction", "")), "seed": record.get("seed"),
                "source": record["source"], "result": record["result"], "image": sample.image_path,
                "editor": record.get("editor", {}), "causes": list(record.get("causes", []))}

    def close(self) -> None:
        """Write edits.jsonl when there are edits; remove pair files (and an old list) no kept sample names."""
        folder = self.out_dir / EDITS_DIR
        if self._lines is not None and len(self._lines):
            write_lines(self.wrote(folder / "edits.jsonl"), (line for _, line in self._lines.items()))
        self.remove_stale(folder)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        if self._lines is not None:
            self._lines.close()
            self._lines = None
        self.finish()
