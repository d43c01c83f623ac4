"""HF export: `datasets` loads it (card config and plain imagefolder), rows and objects match COCO."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from export_testdata import make_samples, make_spec

from synthloop.tools.export.hf import hf_features
from synthloop.tools.export.records import export_all

datasets = pytest.importorskip("datasets")


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, object]:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "ds"
    spec = make_spec(formats=("coco", "hf"))
    export_all(out, spec, make_samples(out), card=False)
    return out, spec


def _coco(out: Path, split: str) -> dict:
    return json.loads((out / "annotations" / f"instances_{split}.json").read_text())


def test_datasets_loads_the_card_config(exported: tuple[Path, object], tmp_path: Path) -> None:
    out, spec = exported
    loaded = datasets.load_dataset(
        str(out / "hf"), cache_dir=str(tmp_path / "cache"), features=hf_features(spec)
    )
    assert set(loaded) == {"train", "val"}  # the empty test split is left out
    assert loaded["train"].features["objects"]["category"].feature.names == ["square", "disc", "ring"]
    for split in ("train", "val"):
        coco = _coco(out, split)
        rows = loaded[split]
        assert rows.num_rows == len(coco["images"])
        for row in rows:
            image = next(i for i in coco["images"] if i["id"] == row["image_id"])
            anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
            assert row["sample_id"] == image["sample_id"]
            assert row["image"].size == (image["width"], image["height"])
            objects = row["objects"]
            assert objects["id"] == [a["id"] for a in anns]
            assert objects["category"] == [a["category_id"] - 1 for a in anns]
            assert objects["category_name"] == [spec.class_names[a["category_id"] - 1] for a in anns]
            assert objects["bbox"] == [a["bbox"] for a in anns]
            assert objects["area"] == [a["area"] for a in anns]
            assert objects["rle"] == [
                a["segmentation"]["counts"] if isinstance(a["segmentation"], dict) else "" for a in anns
            ]


def test_datasets_loads_it_as_an_imagefolder(exported: tuple[Path, object], tmp_path: Path) -> None:
    out, _ = exported
    loaded = datasets.load_dataset("imagefolder", data_dir=str(out / "hf"), cache_dir=str(tmp_path / "cache"))
    assert loaded["train"].num_rows == len(_coco(out, "train")["images"])
    assert loaded["validation"].num_rows == len(_coco(out, "val")["images"])
    n_objects = sum(len(r["objects"]["id"]) for r in loaded["train"])
    assert n_objects == len(_coco(out, "train")["annotations"])
