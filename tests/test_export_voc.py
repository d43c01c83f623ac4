"""PASCAL VOC export, read back by a parser written here (xml.etree, not the exporter's code) and compared
with the COCO boxes; class maps compared with the semantic export."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from export_testdata import ALL_TASKS, make_samples, make_spec
from PIL import Image

from synthloop.tools.export.records import export_all


def read_voc(path: Path) -> dict:
    """An independent VOC annotation reader: filename, size and objects (name, flags, 1-based box)."""
    root = ET.parse(path).getroot()
    assert root.tag == "annotation"
    size = root.find("size")
    objects = []
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        objects.append({
            "name": obj.findtext("name"),
            "truncated": int(obj.findtext("truncated")),
            "difficult": int(obj.findtext("difficult")),
            "box": tuple(int(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")),
        })  # fmt: skip
    return {
        "filename": root.findtext("filename"),
        "size": (int(size.findtext("width")), int(size.findtext("height")), int(size.findtext("depth"))),
        "segmented": int(root.findtext("segmented")),
        "objects": objects,
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("voc") / "ds"
    export_all(out, make_spec(formats=("coco", "voc"), tasks=ALL_TASKS), make_samples(out, rich=True), card=False)
    return out


def _coco(out: Path, split: str) -> dict:
    return json.loads((out / "annotations" / f"instances_{split}.json").read_text())


def test_annotations_match_the_coco_boxes(exported: Path) -> None:
    checked = 0
    for split in ("train", "val"):
        coco = _coco(exported, split)
        names = {c["id"]: c["name"] for c in coco["categories"]}
        for image in coco["images"]:
            stem = Path(image["file_name"]).stem
            voc = read_voc(exported / "voc" / "Annotations" / f"{stem}.xml")
            assert voc["filename"] == f"{stem}.jpg"
            assert voc["size"] == (image["width"], image["height"], 3) and voc["segmented"] == 1
            anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
            assert [o["name"] for o in voc["objects"]] == [names[a["category_id"]] for a in anns]
            for obj, ann in zip(voc["objects"], anns, strict=True):
                xmin, ymin, xmax, ymax = obj["box"]
                # 1-based inclusive pixel indices back to COCO's 0-based corner + size (the fixture's boxes
                # are whole pixels, so this is exact)
                assert [xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1] == ann["bbox"]
                x, y, w, h = ann["bbox"]
                touches = x == 0 or y == 0 or x + w == image["width"] or y + h == image["height"]
                assert obj["truncated"] == int(touches) and obj["difficult"] == 0
                checked += 1
    assert checked > 10


def test_images_and_image_sets(exported: Path) -> None:
    for split in ("train", "val", "test"):
        coco = _coco(exported, split)
        stems = sorted(Path(i["file_name"]).stem for i in coco["images"])
        for kind in ("Main", "Segmentation"):
            listed = (exported / "voc" / "ImageSets" / kind / f"{split}.txt").read_text().split()
            assert listed == stems
        for image in coco["images"]:
            stem = Path(image["file_name"]).stem
            with Image.open(exported / "voc" / "JPEGImages" / f"{stem}.jpg") as jpeg:
                assert jpeg.format == "JPEG" and jpeg.size == (image["width"], image["height"])
                converted = np.asarray(jpeg.convert("RGB"), dtype=np.int16)
            with Image.open(exported / "images" / split / image["file_name"]) as png:
                original = np.asarray(png.convert("RGB"), dtype=np.int16)
            assert np.abs(converted - original).mean() < 3  # the same picture, lossy but close


def test_segmentation_class_maps_are_the_semantic_maps(exported: Path) -> None:
    for split in ("train", "val"):
        for image in _coco(exported, split)["images"]:
            stem = Path(image["file_name"]).stem
            with Image.open(exported / "voc" / "SegmentationClass" / f"{stem}.png") as palette_map:
                assert palette_map.mode == "P"
                assert palette_map.getpalette()[255 * 3 : 256 * 3] == [224, 224, 192]  # VOC's void colour
                values = np.asarray(palette_map)
            with Image.open(exported / "semantic" / split / f"{stem}.png") as reference:
                assert np.array_equal(values, np.asarray(reference))


def test_detection_only_voc_has_no_class_maps(tmp_path: Path) -> None:
    export_all(tmp_path, make_spec(formats=("voc",), tasks=("detection",)), make_samples(tmp_path), card=False)
    assert not (tmp_path / "voc" / "SegmentationClass").exists()
    assert not (tmp_path / "voc" / "ImageSets" / "Segmentation").exists()
    assert read_voc(tmp_path / "voc" / "Annotations" / "s001.xml")["segmented"] == 0


def test_reexport_drops_stale_files(tmp_path: Path) -> None:
    spec = make_spec(formats=("voc",), tasks=ALL_TASKS)
    samples = make_samples(tmp_path, rich=True)
    export_all(tmp_path, spec, samples, card=False)
    export_all(tmp_path, spec, [s for s in samples if s.id != "s005"], card=False)
    for path in ("voc/Annotations/s005.xml", "voc/JPEGImages/s005.jpg", "voc/SegmentationClass/s005.png",
                 "semantic/train/s005.png"):
        assert not (tmp_path / path).exists(), path
    assert "s005" not in (tmp_path / "voc" / "ImageSets" / "Main" / "train.txt").read_text().split()


@pytest.mark.parametrize(
    ("bbox", "expected"),
    [
        ((0.0, 0.0, 96.0, 72.0), (1, 1, 96, 72)),  # the whole image
        ((10.0, 5.0, 1.0, 1.0), (11, 6, 11, 6)),  # one pixel: first and last index are the same
        ((10.4, 5.0, 20.2, 7.9), (11, 6, 31, 13)),  # fractional (model) boxes: the pixels they touch
        ((90.0, 70.0, 10.0, 10.0), (91, 71, 96, 72)),  # clamped to the image
    ],
)
def test_voc_box_conversion(bbox: tuple[float, float, float, float], expected: tuple[int, int, int, int]) -> None:
    from synthloop.tools.export.voc import voc_box

    assert voc_box(bbox, 96, 72) == expected
