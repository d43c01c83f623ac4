"""validate_dataset: a valid export gives no defects; each corruption gives a defect naming the file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from export_testdata import ALL_TASKS, make_samples, make_spec, rejected_rows
from PIL import Image

from synthloop.tools.export.records import export_all
from synthloop.tools.export.validate import validate_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    out = tmp_path / "ds"
    export_all(out, make_spec(), make_samples(out), rejected_rows=rejected_rows())
    return out


def _edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _first_ann(data: dict) -> dict:
    return data["annotations"][0]


def _missing_image(out: Path) -> None:
    (out / "images" / "train" / "s002.png").unlink()


def _wrong_size(out: Path) -> None:
    Image.fromarray(np.zeros((40, 50, 3), dtype=np.uint8)).save(out / "images" / "train" / "s002.png")


def _bbox_outside(out: Path) -> None:
    _edit_json(
        out / "annotations" / "instances_train.json", lambda d: _first_ann(d).update(bbox=[90, 5, 20, 10])
    )


def _degenerate_bbox(out: Path) -> None:
    _edit_json(
        out / "annotations" / "instances_train.json", lambda d: _first_ann(d).update(bbox=[5, 5, 0, 10])
    )


def _area_mismatch(out: Path) -> None:
    def edit(data: dict) -> None:
        ann = next(a for a in data["annotations"] if isinstance(a["segmentation"], dict))
        ann["area"] += 5

    _edit_json(out / "annotations" / "instances_train.json", edit)


def _yolo_drift(out: Path) -> None:
    label = out / "yolo" / "labels" / "val" / "s003.txt"
    cls, *values = label.read_text().splitlines()[0].split()
    values = [f"{min(1.0, float(v) + 0.02):.6f}" for v in values]
    label.write_text("\n".join([" ".join([cls, *values]), *label.read_text().splitlines()[1:]]) + "\n")


def _manifest_short(out: Path) -> None:
    path = out / "manifest.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))


def _unreadable_json(out: Path) -> None:
    (out / "annotations" / "instances_val.json").write_text('{"images": [')


def _duplicate_ann_ids(out: Path) -> None:
    _edit_json(out / "annotations" / "instances_train.json", lambda d: d["annotations"][1].update(id=1))


def _unknown_category(out: Path) -> None:
    _edit_json(out / "annotations" / "instances_train.json", lambda d: _first_ann(d).update(category_id=9))


def _orphan_image(out: Path) -> None:
    Image.fromarray(np.zeros((72, 96, 3), dtype=np.uint8)).save(out / "images" / "val" / "stray.png")


def _bad_spec(out: Path) -> None:
    (out / "spec.json").write_text('{"objects": []}')


def _unreadable_png(out: Path) -> None:
    (out / "images" / "val" / "s007.png").write_bytes(b"not a png")


def _missing_label(out: Path) -> None:
    (out / "yolo" / "labels" / "train" / "s004.txt").unlink()


def _yolo_class_out_of_range(out: Path) -> None:
    label = out / "yolo" / "labels" / "val" / "s003.txt"
    lines = label.read_text().splitlines()
    lines[0] = "7 " + lines[0].split(" ", 1)[1]
    label.write_text("\n".join(lines) + "\n")


def _hf_rows_missing(out: Path) -> None:
    path = out / "hf" / "train" / "metadata.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))


CORRUPTIONS: list[tuple[Callable[[Path], None], str, str]] = [
    (_missing_image, "images/train/s002.png", "missing"),
    (_wrong_size, "images/train/s002.png", "is 50x40"),
    (_bbox_outside, "annotations/instances_train.json", "outside"),
    (_degenerate_bbox, "annotations/instances_train.json", "degenerate"),
    (_area_mismatch, "annotations/instances_train.json", "mask area"),
    (_yolo_drift, "yolo/labels/val/s003.txt", "differs from COCO"),
    (_manifest_short, "manifest.jsonl", "7 lines but the COCO files hold 8 images"),
    (_unreadable_json, "annotations/instances_val.json", "unreadable JSON"),
    (_duplicate_ann_ids, "annotations/instances_train.json", "duplicate annotation ids"),
    (_unknown_category, "annotations/instances_train.json", "unknown category"),
    (_orphan_image, "images/val/stray.png", "orphan"),
    (_bad_spec, "spec.json", "not a valid TaskSpec"),
    (_unreadable_png, "images/val/s007.png", "cannot be opened"),
    (_missing_label, "yolo/labels/train/s004.txt", "missing"),
    (_yolo_class_out_of_range, "yolo/labels/val/s003.txt", "class id 7"),
    (_hf_rows_missing, "hf/train/metadata.jsonl", "rows but COCO has"),
]


def test_valid_dataset_has_no_defects(dataset: Path) -> None:
    assert validate_dataset(dataset) == []


def test_detection_only_dataset_is_valid(tmp_path: Path) -> None:
    export_all(tmp_path, make_spec(tasks=("detection",)), make_samples(tmp_path))
    assert validate_dataset(tmp_path) == []


@pytest.mark.parametrize(("corrupt", "file", "what"), CORRUPTIONS, ids=[c[0].__name__ for c in CORRUPTIONS])
def test_each_corruption_is_reported(
    dataset: Path, corrupt: Callable[[Path], None], file: str, what: str
) -> None:
    corrupt(dataset)
    defects = validate_dataset(dataset)
    assert any(d.startswith(file) and what in d for d in defects), defects


def test_missing_directory(tmp_path: Path) -> None:
    assert validate_dataset(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: not a directory"]


# ------------------------------------------------------------------------------------------- task outputs


@pytest.fixture
def full_dataset(tmp_path: Path) -> Path:
    """Every task in COCO, YOLO, VOC and HF (the rich samples: captions, refs, relations, certificates)."""
    out = tmp_path / "full"
    spec = make_spec(formats=("coco", "yolo", "voc", "hf"), tasks=ALL_TASKS)
    export_all(out, spec, make_samples(out, rich=True), card=False)
    return out


def _drop(rel: str) -> Callable[[Path], None]:
    def corrupt(out: Path) -> None:
        (out / rel).unlink()

    corrupt.__name__ = f"_drop_{rel.replace('/', '_').replace('.', '_')}"
    return corrupt


def _caption_removed(out: Path) -> None:
    _edit_json(out / "annotations" / "captions_train.json",
               lambda d: d.update(annotations=[a for a in d["annotations"] if a["image_id"] != 1]))


def _ref_to_unknown_ann(out: Path) -> None:
    path = out / "annotations" / "refs_train.json"
    refs = json.loads(path.read_text())
    refs[0]["ann_id"] = 999
    path.write_text(json.dumps(refs))


def _ref_wrong_category(out: Path) -> None:
    path = out / "annotations" / "refs_train.json"
    refs = json.loads(path.read_text())
    refs[0]["category_id"] = refs[0]["category_id"] % 3 + 1
    path.write_text(json.dumps(refs))


def _relation_to_another_image(out: Path) -> None:
    path = out / "annotations" / "scene_graphs_train.json"
    graphs = json.loads(path.read_text())
    graph = next(g for g in graphs if g["relationships"])
    other = next(g for g in graphs if g["objects"] and g is not graph)
    graph["relationships"][0]["object_id"] = other["objects"][0]["object_id"]
    path.write_text(json.dumps(graphs))


def _scene_graph_box_moved(out: Path) -> None:
    path = out / "annotations" / "scene_graphs_val.json"
    graphs = json.loads(path.read_text())
    graphs[0]["objects"][0]["x"] += 3
    path.write_text(json.dumps(graphs))


def _relations_all_gone(out: Path) -> None:
    for split in ("train", "val"):
        path = out / "annotations" / f"scene_graphs_{split}.json"
        graphs = json.loads(path.read_text())
        for graph in graphs:
            graph["relationships"] = []
        path.write_text(json.dumps(graphs))


def _semantic_pixel_changed(out: Path) -> None:
    path = out / "semantic" / "train" / "s004.png"
    values = np.asarray(Image.open(path)).copy()
    values[0, 0] = 1 if values[0, 0] != 1 else 2
    Image.fromarray(values).save(path)


def _semantic_unknown_value(out: Path) -> None:
    path = out / "semantic" / "train" / "s004.png"
    values = np.asarray(Image.open(path)).copy()
    values[0, 0] = 77
    Image.fromarray(values).save(path)


def _semantic_wrong_size(out: Path) -> None:
    Image.fromarray(np.zeros((40, 50), dtype=np.uint8)).save(out / "semantic" / "train" / "s004.png")


def _semantic_rgb(out: Path) -> None:
    Image.fromarray(np.zeros((72, 96, 3), dtype=np.uint8)).save(out / "semantic" / "train" / "s004.png")


def _voc_box_shifted(out: Path) -> None:
    path = out / "voc" / "Annotations" / "s003.xml"
    text = path.read_text()
    start = text.index("<xmin>") + len("<xmin>")
    end = text.index("</xmin>")
    path.write_text(text[:start] + str(int(text[start:end]) + 2) + text[end:])


def _voc_xml_broken(out: Path) -> None:
    (out / "voc" / "Annotations" / "s003.xml").write_text("<annotation><object>")


def _voc_image_set_short(out: Path) -> None:
    path = out / "voc" / "ImageSets" / "Main" / "train.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))


def _voc_class_map_changed(out: Path) -> None:
    path = out / "voc" / "SegmentationClass" / "s004.png"
    image = Image.open(path)
    palette = image.getpalette()
    values = np.asarray(image).copy()
    values[0, :] = 3
    changed = Image.frombytes("P", image.size, values.tobytes())
    changed.putpalette(palette)
    changed.save(path)


def _certificate_out_of_range(out: Path) -> None:
    _edit_json(out / "annotations" / "instances_train.json",
               lambda d: _first_ann(d).update(certificate={"sources": {"layout": 1.0}, "agreement": 1.5}))


TASK_CORRUPTIONS: list[tuple[Callable[[Path], None], str, str]] = [
    (_drop("annotations/captions_train.json"), "annotations/captions_train.json", "missing (captioning"),
    (_caption_removed, "annotations/captions_train.json", "images without a caption"),
    (_drop("annotations/refs_val.json"), "annotations/refs_val.json", "missing (referring_expressions"),
    (_ref_to_unknown_ann, "annotations/refs_train.json", "ann_id 999 is no annotation"),
    (_ref_wrong_category, "annotations/refs_train.json", "differ from its annotation"),
    (_drop("annotations/scene_graphs_train.json"), "annotations/scene_graphs_train.json", "missing (scene_graph"),
    (_relation_to_another_image, "annotations/scene_graphs_train.json", "not objects of this image"),
    (_scene_graph_box_moved, "annotations/scene_graphs_val.json", "objects differ"),
    (_relations_all_gone, "annotations/scene_graphs_train.json", "no relationship at all"),
    (_drop("semantic/classes.json"), "semantic/classes.json", "missing (semantic_segmentation"),
    (_drop("semantic/train/s004.png"), "semantic/train/s004.png", "missing"),
    (_semantic_pixel_changed, "semantic/train/s004.png", "1 pixels differ"),
    (_semantic_unknown_value, "semantic/train/s004.png", "values [77]"),
    (_semantic_wrong_size, "semantic/train/s004.png", "is 50x40"),
    (_semantic_rgb, "semantic/train/s004.png", "not a single-channel"),
    (_drop("voc/Annotations/s003.xml"), "voc/Annotations/s003.xml", "missing"),
    (_voc_xml_broken, "voc/Annotations/s003.xml", "not parseable"),
    (_voc_box_shifted, "voc/Annotations/s003.xml", "differs from COCO"),
    (_drop("voc/JPEGImages/s001.jpg"), "voc/JPEGImages/s001.jpg", "missing"),
    (_voc_image_set_short, "voc/ImageSets/Main/train.txt", "not the split's"),
    (_voc_class_map_changed, "voc/SegmentationClass/s004.png", "pixels differ from semantic"),
    (_drop("hf/train/semantic/s004.png"), "hf/train/metadata.jsonl", "no semantic map"),
    (_certificate_out_of_range, "annotations/instances_train.json", "certificate"),
]


def test_full_dataset_is_valid(full_dataset: Path) -> None:
    assert validate_dataset(full_dataset) == []


@pytest.mark.parametrize(
    ("corrupt", "file", "what"), TASK_CORRUPTIONS, ids=[c[0].__name__.strip("_") for c in TASK_CORRUPTIONS]
)
def test_each_task_output_corruption_is_reported(
    full_dataset: Path, corrupt: Callable[[Path], None], file: str, what: str
) -> None:
    corrupt(full_dataset)
    defects = validate_dataset(full_dataset)
    assert any(d.startswith(file) and what in d for d in defects), defects


def test_a_task_asked_for_but_not_exported_fails(tmp_path: Path) -> None:
    """Today's bug: the spec lists tasks whose outputs were never written; validation must say so."""
    export_all(tmp_path, make_spec(formats=("coco", "voc"), tasks=("detection",)), make_samples(tmp_path, rich=True))
    asked = make_spec(formats=("coco", "voc"), tasks=ALL_TASKS)
    (tmp_path / "spec.json").write_text(asked.model_dump_json())
    defects = validate_dataset(tmp_path)
    for rel in ("annotations/captions_train.json", "annotations/refs_train.json",
                "annotations/scene_graphs_train.json", "semantic/classes.json", "semantic/train/s001.png",
                "voc/SegmentationClass/s001.png"):
        assert any(d.startswith(rel) and "missing" in d for d in defects), (rel, defects)
