"""The edit-pairs exporter (`edits`): source, instruction and result of every instruction edit of a kept sample,
for users who train image editors. It joins the exporter contract with samples that carry edits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from contracts import ExporterContract, _tree
from export_testdata import make_samples, make_spec

from synthloop.tools.export.edits import EditPairsExporter
from synthloop.tools.export.records import export_all
from synthloop.tools.export.registry import exporters_for
from synthloop.tools.export.validate import validate_dataset
from synthloop.tools.io import atomic_write_png
from synthloop.tools.types import Sample

SPEC = make_spec()


def with_edits(out: Path, samples: list[Sample], edited: tuple[int, ...] = (1, 4, 6)) -> list[Sample]:
    """The samples with an edit pair written under out/edits/ for each index in `edited` (sample 6 twice:
    edited on attempt 0 and again on attempt 1), plus the pair of an attempt that was not kept."""
    rng = np.random.default_rng(0)
    result = []
    for index, sample in enumerate(samples):
        records = []
        for attempt in ((0, 1) if index == 6 else (0,)) if index in edited else ():
            name = f"edits/{sample.id}-a{attempt}"
            for suffix in ("src", "dst"):
                atomic_write_png(out / f"{name}-{suffix}.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
            records.append({"attempt": attempt, "instruction": f"make the {index} red", "seed": 100 + index,
                            "source": f"{name}-src.png", "result": f"{name}-dst.png",
                            "editor": {"editor": "instruct_pix2pix", "model": "tiny"}, "causes": ["vlm: red"]})
        if records:
            sample = sample.model_copy(update={"render_info": {**sample.render_info, "edits": records}})
        result.append(sample)
    atomic_write_png(out / "edits" / "s002-a0-src.png", np.zeros((8, 8, 3), np.uint8))  # a refused edit's pair
    return result


class TestEditPairsExporter(ExporterContract):
    backend = EditPairsExporter()

    def export(self, root: Path, *, reverse: bool = False) -> tuple[dict[str, bytes], dict[str, bytes]]:
        shutil.rmtree(root, ignore_errors=True)
        out = root / "out"
        samples = with_edits(out, make_samples(out, 8, rich=self.rich))
        before = _tree(root)
        exporter = self.registry.build(self.name)
        exporter.setup(out, self.spec)
        for sample in reversed(samples) if reverse else samples:
            exporter.export_sample(sample)
        exporter.close()
        after = _tree(root)
        # The contract leaves what was there alone; the pair of the attempt not kept is the one file removed.
        assert set(before) - set(after) == {"out/edits/s002-a0-src.png"}
        before.pop("out/edits/s002-a0-src.png")
        return before, after


def test_the_list_names_every_kept_edit_in_id_and_attempt_order(tmp_path: Path) -> None:
    out = tmp_path / "out"
    samples = with_edits(out, make_samples(out, 8))
    export_all(out, SPEC, samples)
    lines = [json.loads(line) for line in (out / "edits" / "edits.jsonl").read_text().splitlines()]
    assert [(line["id"], line["attempt"]) for line in lines] == [("s001", 0), ("s004", 0), ("s006", 0), ("s006", 1)]
    first = lines[0]
    assert first == {"id": "s001", "split": samples[1].split, "attempt": 0, "instruction": "make the 1 red",
                     "seed": 101, "source": "edits/s001-a0-src.png", "result": "edits/s001-a0-dst.png",
                     "image": samples[1].image_path, "editor": {"editor": "instruct_pix2pix", "model": "tiny"},
                     "causes": ["vlm: red"]}
    assert sorted(p.name for p in (out / "edits").iterdir()) == sorted(
        [*(Path(line[key]).name for line in lines for key in ("source", "result")), "edits.jsonl"])
    assert validate_dataset(out) == []


def test_no_edits_no_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    samples = with_edits(out, make_samples(out, 8))
    export_all(out, SPEC, samples)
    assert (out / "edits" / "edits.jsonl").is_file()
    export_all(out, SPEC, make_samples(out, 8))  # exported again: no sample kept an edit any more
    assert not (out / "edits").exists()
    assert "edits" in exporters_for(SPEC), "the exporter runs on every export"


@pytest.mark.parametrize(("path", "problem"), [
    ("../images/train/s000.png", "not a file name under edits/"),
    ("/etc/passwd", "not a file name under edits/"),
    ("edits/s000-a0-gone.png", "not a file name under edits/"),
    ("edits/s000-a3-src.png", "is missing"),
])
def test_bad_edit_records_are_refused(tmp_path: Path, path: str, problem: str) -> None:
    out = tmp_path / "out"
    [sample] = make_samples(out, 1)
    record = {"attempt": 0, "instruction": "x", "seed": 1, "source": path, "result": path}
    exporter = EditPairsExporter()
    exporter.setup(out, SPEC)
    with pytest.raises(ValueError, match=problem):
        exporter.export_sample(sample.model_copy(update={"render_info": {"edits": [record]}}))
