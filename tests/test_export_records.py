"""Record files and export_all: manifest round-trips, rejections sorted, formats chosen from the spec."""

from __future__ import annotations

from pathlib import Path

import pytest
from export_testdata import make_samples, make_spec, rejected_rows

from synthloop.tools.export.records import (
    export_all,
    read_manifest,
    read_rejected,
    write_manifest,
    write_rejected,
    write_spec,
)
from synthloop.tools.types import TaskSpec


def test_manifest_round_trips_sorted_by_id(tmp_path: Path) -> None:
    samples = make_samples(tmp_path, 5)
    write_manifest(tmp_path, reversed(samples))
    assert read_manifest(tmp_path) == samples


def test_rejected_rows_are_sorted(tmp_path: Path) -> None:
    rows = rejected_rows()
    write_rejected(tmp_path, reversed(rows))
    assert read_rejected(tmp_path) == rows


def test_spec_round_trips(tmp_path: Path) -> None:
    spec = make_spec()
    write_spec(tmp_path, spec)
    assert TaskSpec.model_validate_json((tmp_path / "spec.json").read_text()) == spec


def test_export_all_writes_coco_always_and_only_the_formats_asked(tmp_path: Path) -> None:
    spec = make_spec(formats=("yolo",))
    timings = export_all(tmp_path, spec, make_samples(tmp_path), extra={"render_s": 2.0})
    assert (tmp_path / "annotations" / "instances_train.json").is_file()
    assert (tmp_path / "yolo" / "data.yaml").is_file()
    assert not (tmp_path / "hf").exists()
    assert not (tmp_path / "rejected.jsonl").exists()  # only written when rows are given
    assert {"export_coco_s", "export_yolo_s", "records_s", "card_s"} <= set(timings)
    assert "export_yolo_s" in (tmp_path / "card.md").read_text()


def test_export_all_refuses_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        export_all(tmp_path, make_spec(), make_samples(tmp_path, 2), formats=["pascal"])
