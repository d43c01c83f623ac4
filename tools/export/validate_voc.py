"""`validate` checks of the PASCAL VOC export (when voc is in spec.formats).

For every image of the COCO files: voc/Annotations/{id}.xml parses, names {id}.jpg and the image's size, and
holds one object per COCO annotation in its order, with the class name and the box converted to VOC's
1-based inclusive pixel indices (`voc.voc_box`); voc/JPEGImages/{id}.jpg opens at that size;
voc/ImageSets/Main/{split}.txt lists exactly the split's ids. With semantic segmentation,
voc/SegmentationClass/{id}.png holds the same index values as semantic/{split}/{id}.png and
voc/ImageSets/Segmentation/{split}.txt lists the split's ids. Annotation files for no COCO image are defects.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools.coco import COCO

from synthloop.tools.export.validate_tasks import read_label_map, unnamed_files
from synthloop.tools.export.voc import voc_box
from synthloop.tools.types import Task, TaskSpec


def _text(element: ET.Element | None, path: str) -> str | None:
    found = element.find(path) if element is not None else None
    return found.text.strip() if found is not None and found.text is not None else None


def _int(element: ET.Element | None, path: str) -> int | None:
    text = _text(element, path)
    try:
        return int(float(text)) if text is not None else None
    except ValueError:
        return None


def _check_xml(voc: Path, stem: str, image: dict[str, Any], anns: list[dict[str, Any]], names: dict[Any, str],
               defects: list[str]) -> None:
    rel = f"voc/Annotations/{stem}.xml"
    try:
        root = ET.parse(voc / "Annotations" / f"{stem}.xml").getroot()
    except FileNotFoundError:
        defects.append(f"{rel}: missing")
        return
    except ET.ParseError as exc:
        defects.append(f"{rel}: not parseable XML ({exc})")
        return
    width, height = image.get("width"), image.get("height")
    if _text(root, "filename") != f"{stem}.jpg":
        defects.append(f"{rel}: filename {_text(root, 'filename')} is not {stem}.jpg")
    if (_int(root, "size/width"), _int(root, "size/height")) != (width, height):
        defects.append(f"{rel}: size {_int(root, 'size/width')}x{_int(root, 'size/height')} is not {width}x{height}")
    objects = root.findall("object")
    if len(objects) != len(anns):
        defects.append(f"{rel}: {len(objects)} objects but COCO has {len(anns)}")
        return
    for number, (obj, ann) in enumerate(zip(objects, anns, strict=True), start=1):
        if _text(obj, "name") != names.get(ann["category_id"]):
            defects.append(f"{rel}: object {number} is '{_text(obj, 'name')}' but COCO says "
                           f"'{names.get(ann['category_id'])}'")
        box = tuple(_int(obj, f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax"))
        want = voc_box(tuple(ann["bbox"]), width, height)
        if box != want:
            defects.append(f"{rel}: object {number} box {box} differs from COCO's {want} (1-based inclusive)")


def _check_jpeg(voc: Path, stem: str, image: dict[str, Any], defects: list[str]) -> None:
    rel = f"voc/JPEGImages/{stem}.jpg"
    try:
        with Image.open(voc / "JPEGImages" / f"{stem}.jpg") as opened:
            kind, size = opened.format, opened.size
    except FileNotFoundError:
        defects.append(f"{rel}: missing")
        return
    except OSError as exc:
        defects.append(f"{rel}: cannot be opened as an image ({exc})")
        return
    if kind != "JPEG" or size != (image.get("width"), image.get("height")):
        defects.append(f"{rel}: {kind} {size[0]}x{size[1]}, not a {image.get('width')}x{image.get('height')} JPEG")


def _check_image_set(voc: Path, kind: str, split: str, stems: list[str], defects: list[str]) -> None:
    rel = f"voc/ImageSets/{kind}/{split}.txt"
    try:
        listed = [line.strip() for line in (voc / "ImageSets" / kind / f"{split}.txt").read_text().splitlines()]
    except FileNotFoundError:
        defects.append(f"{rel}: missing")
        return
    if sorted(x for x in listed if x) != sorted(stems):
        defects.append(f"{rel}: lists {len([x for x in listed if x])} ids, not the split's {len(stems)} images")


def _check_class_map(out_dir: Path, split: str, stem: str, image: dict[str, Any], defects: list[str]) -> None:
    rel = f"voc/SegmentationClass/{stem}.png"
    size = (image.get("width"), image.get("height"))
    values = read_label_map(out_dir / rel, rel, size, defects)
    if values is None:
        return
    reference = read_label_map(out_dir / "semantic" / split / f"{stem}.png", f"semantic/{split}/{stem}.png", size, [])
    if reference is not None and not np.array_equal(values, reference):
        defects.append(f"{rel}: {int(np.count_nonzero(values != reference))} pixels differ from "
                       f"semantic/{split}/{stem}.png")


def check_voc(out_dir: Path, spec: TaskSpec, cocos: dict[str, COCO], defects: list[str]) -> None:
    """Check the voc/ tree against the COCO files (see the module docstring)."""
    voc = out_dir / "voc"
    segmented = Task.semantic_segmentation in spec.tasks
    named: set[str] = set()
    for split, coco in cocos.items():
        names = {c["id"]: c.get("name") for c in coco.dataset["categories"]}
        stems = []
        for image in coco.dataset["images"]:
            stem = Path(str(image.get("file_name"))).stem
            stems.append(stem)
            _check_xml(voc, stem, image, coco.imgToAnns.get(image["id"], []), names, defects)
            _check_jpeg(voc, stem, image, defects)
            if segmented:
                _check_class_map(out_dir, split, stem, image, defects)
        _check_image_set(voc, "Main", split, stems, defects)
        if segmented:
            _check_image_set(voc, "Segmentation", split, stems, defects)
        named.update(stems)
    extra = unnamed_files(voc / "Annotations", {f"{stem}.xml" for stem in named})
    if extra:
        defects.append(f"voc/Annotations: annotation files for no COCO image: {extra[:10]}")
