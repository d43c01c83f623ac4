"""Check an exported dataset against the output-directory contract.

`validate_dataset(out_dir)` returns human-readable defects, each naming the file and what is wrong; an empty
list means the dataset is valid. Checks, in order:
1. spec.json parses as a TaskSpec;
2. every `annotations/instances_{split}.json` of the spec's splits parses and pycocotools indexes it; image
   and annotation ids are unique, category ids are known, every annotation's image exists;
3. every image named exists, opens, and has the stated width and height;
4. every bbox lies inside its image and has positive width and height; an RLE mask has the image's size, its
   area equals `area`, and its tight box matches `bbox` within 1 px;
5. manifest.jsonl: one valid Sample per COCO image, the same ids;
6. YOLO (when yolo is in spec.formats): data.yaml, one label file per COCO image, lines parse, class ids in
   range, and the boxes match COCO within 1e-3 (normalised): for segmentation polygons, the box of the
   largest connected part of the COCO mask, which is what the exporter traces;
7. HF (when hf is in spec.formats): one metadata row per COCO image, images present (and the semantic map
   each row names, with semantic segmentation);
8. VOC (when voc is in spec.formats): `validate_voc`;
9. every task of spec.tasks has its output: captions, refs, scene graphs, semantic maps (`validate_tasks`);
   a `certificate` key on an annotation holds sources and an agreement in [0, 1];
10. no image under `images/` that no COCO file names (orphans).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pydantic import ValidationError

from synthloop.tools.export.records import iter_jsonl
from synthloop.tools.export.validate_tasks import check_captions, check_refs, check_scene_graphs, check_semantic
from synthloop.tools.export.validate_voc import check_voc
from synthloop.tools.types import ExportFormat, Sample, Task, TaskSpec

BOX_TOLERANCE_PX = 1.0
YOLO_TOLERANCE = 1e-3


def _load_spec(out_dir: Path, defects: list[str]) -> TaskSpec | None:
    path = out_dir / "spec.json"
    try:
        return TaskSpec.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        defects.append("spec.json: missing")
    except (ValidationError, UnicodeDecodeError) as exc:
        defects.append(f"spec.json: not a valid TaskSpec ({_first_line(exc)})")
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _load_coco(path: Path, rel: str, defects: list[str]) -> COCO | None:
    """Parse and index one COCO file; None (with a defect) when it cannot be used."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        defects.append(f"{rel}: missing")
        return None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        defects.append(f"{rel}: unreadable JSON ({_first_line(exc)})")
        return None
    lists = ("images", "annotations")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in lists):
        defects.append(f"{rel}: not a COCO instances file (needs 'images' and 'annotations' lists)")
        return None
    if not isinstance(data.get("categories"), list):
        defects.append(f"{rel}: no 'categories' list")
        return None
    if bad := _bad_records(data, rel):
        defects.extend(bad)  # every later check reads these fields: the file is reported, not used
        return None
    coco = COCO()
    coco.dataset = data
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            coco.createIndex()
    except (KeyError, TypeError) as exc:
        defects.append(f"{rel}: pycocotools cannot index it (missing or bad field {exc})")
        return None
    return coco


def _is_id(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _segmentation_shaped(segm: Any) -> bool:
    """None, polygons (lists of numbers) or RLE ({size: [h, w], counts: str | [int]}): what the checks can read."""
    if segm is None:
        return True
    if isinstance(segm, list):
        return all(isinstance(p, list) and all(_is_number(v) for v in p) for p in segm)
    if isinstance(segm, dict):
        size, counts = segm.get("size"), segm.get("counts")
        sized = isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)
        return sized and (isinstance(counts, str) or (isinstance(counts, list) and all(
            isinstance(v, int) for v in counts)))
    return False


def _bad_records(data: dict[str, Any], rel: str, limit: int = 20) -> list[str]:
    """Records whose fields have the wrong type (a width written "512", a bbox as a string, an id that is a list):
    every later check reads them, so they are reported first, at most `limit` of them."""
    bad = []
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict):
            bad.append(f"{rel}: images[{i}] is not an object")
            continue
        for key in ("width", "height"):
            value = image.get(key)
            if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
                bad.append(f"{rel}: image {image.get('id')!r}: {key} {value!r} is not a positive integer")
        if not _is_id(image.get("id")):
            bad.append(f"{rel}: images[{i}]: id {image.get('id')!r} is not an integer or a string")
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            bad.append(f"{rel}: annotations[{i}] is not an object")
            continue
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            bad.append(f"{rel}: annotation {ann.get('id')!r}: bbox {str(bbox)[:80]} is not [x, y, w, h]")
        for key in ("id", "image_id", "category_id"):
            if not _is_id(ann.get(key)):
                bad.append(f"{rel}: annotations[{i}]: {key} {str(ann.get(key))[:80]} is not an integer or a string")
        if not _segmentation_shaped(ann.get("segmentation")):
            bad.append(f"{rel}: annotation {ann.get('id')!r}: segmentation is neither RLE nor polygons")
    for i, category in enumerate(data["categories"]):
        if not (isinstance(category, dict) and _is_id(category.get("id")) and isinstance(category.get("name"), str)):
            bad.append(f"{rel}: categories[{i}] {str(category)[:80]} needs an id and a name")
    return bad[:limit] + ([f"{rel}: {len(bad) - limit} more records of the wrong type"] if len(bad) > limit else [])


def _check_ids(coco: COCO, rel: str, spec: TaskSpec | None, defects: list[str]) -> None:
    data = coco.dataset
    for kind in ("images", "annotations", "categories"):
        dupes = sorted(i for i, n in Counter(x.get("id") for x in data[kind]).items() if n > 1)
        if dupes:
            defects.append(f"{rel}: duplicate {kind[:-1]} ids {dupes[:10]}")
    if spec is not None:
        expected = [{"id": i + 1, "name": n} for i, n in enumerate(spec.class_names)]
        found = [{"id": c.get("id"), "name": c.get("name")} for c in data["categories"]]
        if found != expected:
            defects.append(f"{rel}: categories {found} differ from the spec's classes {expected}")


def _check_image(out_dir: Path, split: str, image: dict[str, Any], rel: str, defects: list[str]) -> None:
    name = image.get("file_name")
    if not isinstance(name, str) or not name:
        defects.append(f"{rel}: image {image.get('id')} has no file_name")
        return
    path = out_dir / "images" / split / name
    shown = f"images/{split}/{name}"
    if not path.is_file():
        defects.append(f"{shown}: missing (named by {rel}, image {image.get('id')})")
        return
    try:
        with Image.open(path) as opened:
            size = opened.size
            opened.verify()
    except (OSError, SyntaxError) as exc:
        defects.append(f"{shown}: cannot be opened as an image ({_first_line(exc)})")
        return
    if size != (image.get("width"), image.get("height")):
        defects.append(f"{shown}: is {size[0]}x{size[1]} but {rel} says {image.get('width')}x{image.get('height')}")


def _check_annotation(ann: dict[str, Any], image: dict[str, Any], rel: str, defects: list[str]) -> None:
    where = f"{rel}: annotation {ann.get('id')} (image {ann.get('image_id')})"
    width, height = image.get("width"), image.get("height")
    bbox = ann.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
        defects.append(f"{where}: bbox {bbox} is not [x, y, w, h]")
        return
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        defects.append(f"{where}: bbox {bbox} is degenerate (width or height <= 0)")
    if not isinstance(width, int) or not isinstance(height, int):
        defects.append(f"{where}: its image has no integer width/height")
        return
    eps = 1e-6
    if x < -eps or y < -eps or x + w > width + eps or y + h > height + eps:
        defects.append(f"{where}: bbox {bbox} is outside the {width}x{height} image")
    if ann.get("iscrowd", 0) not in (0, 1):
        defects.append(f"{where}: iscrowd {ann.get('iscrowd')} is not 0 or 1")
    if "certificate" in ann and not _valid_certificate(ann["certificate"]):
        defects.append(f"{where}: certificate {ann['certificate']} is not {{sources: {{name: 0..1}}, agreement: 0..1}}")
    segm = ann.get("segmentation")
    if isinstance(segm, dict):
        _check_rle(segm, ann, (width, height), where, defects)
    elif isinstance(segm, list):
        if not segm or any(not isinstance(p, list) or len(p) < 6 or len(p) % 2 for p in segm):
            defects.append(f"{where}: polygon segmentation is malformed")
    else:
        defects.append(f"{where}: segmentation missing or of an unknown kind")


def _valid_certificate(value: Any) -> bool:
    def unit(x: Any) -> bool:
        return isinstance(x, int | float) and 0.0 <= x <= 1.0

    if not isinstance(value, dict) or not unit(value.get("agreement")) or not isinstance(value.get("sources"), dict):
        return False
    return all(isinstance(k, str) and unit(v) for k, v in value["sources"].items())


def _check_rle(
    segm: dict[str, Any], ann: dict[str, Any], size: tuple[int, int], where: str, defects: list[str]
) -> None:
    width, height = size
    if list(segm.get("size", [])) != [height, width]:
        defects.append(f"{where}: RLE size {segm.get('size')} differs from the image ({height}, {width})")
        return
    counts = segm.get("counts")
    rle = {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    try:
        area = int(mask_utils.area(rle))
        box = [float(v) for v in mask_utils.toBbox(rle)]
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        defects.append(f"{where}: RLE cannot be decoded ({_first_line(exc)})")
        return
    if area != ann.get("area"):
        defects.append(f"{where}: area {ann.get('area')} differs from the mask area {area}")
    if any(abs(a - b) > BOX_TOLERANCE_PX for a, b in zip(box, ann["bbox"], strict=True)):
        defects.append(f"{where}: bbox {ann['bbox']} differs from the mask's tight box {box} by over 1 px")


def _check_manifest(out_dir: Path, image_ids: set[str], n_images: int, defects: list[str]) -> None:
    path = out_dir / "manifest.jsonl"
    if not path.is_file():
        defects.append("manifest.jsonl: missing")
        return
    ids: list[str] = []
    with open(path, encoding="utf-8") as lines:  # line by line: the manifest holds every sample's annotations
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                ids.append(Sample.model_validate_json(line).id)
            except ValidationError as exc:
                defects.append(f"manifest.jsonl: line {number} is not a valid Sample ({_first_line(exc)})")
    if len(ids) != n_images:
        defects.append(f"manifest.jsonl: {len(ids)} lines but the COCO files hold {n_images} images")
    missing, extra = sorted(image_ids - set(ids)), sorted(set(ids) - image_ids)
    if missing:
        defects.append(f"manifest.jsonl: no line for COCO images {missing[:10]}")
    if extra:
        defects.append(f"manifest.jsonl: samples {extra[:10]} are in no COCO file")


def _yolo_box(values: list[float], polygon: bool) -> tuple[float, float, float, float]:
    """Normalised xyxy box of a YOLO label line's numbers."""
    if not polygon:
        cx, cy, w, h = values
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    xs, ys = values[0::2], values[1::2]
    return (min(xs), min(ys), max(xs), max(ys))


def _expected_yolo_boxes(anns: list[dict[str, Any]], image: dict[str, Any], polygon: bool) -> list[tuple[float, ...]]:
    """Normalised xyxy box each annotation's YOLO line should have (the masks of one image in one pass)."""
    from synthloop.tools.polygons import largest_component_boxes

    width, height = image["width"], image["height"]
    boxes = [tuple(ann["bbox"]) for ann in anns]
    if polygon:
        by_size: dict[tuple[int, ...], list[int]] = {}
        for k, ann in enumerate(anns):
            segm = ann.get("segmentation")
            if isinstance(segm, dict):
                by_size.setdefault(tuple(segm["size"]), []).append(k)
        for size, members in by_size.items():
            counts = [anns[k]["segmentation"]["counts"] for k in members]
            for k, box in zip(members, largest_component_boxes(size, counts), strict=True):
                boxes[k] = box
    return [(x / width, y / height, (x + w) / width, (y + h) / height) for x, y, w, h in boxes]


def _check_yolo(out_dir: Path, spec: TaskSpec, cocos: dict[str, COCO], defects: list[str]) -> None:
    from synthloop.tools.types import Task

    yolo = out_dir / "yolo"
    try:
        data = yaml.safe_load((yolo / "data.yaml").read_text(encoding="utf-8"))
    except FileNotFoundError:
        defects.append("yolo/data.yaml: missing")
        data = None
    except yaml.YAMLError as exc:
        defects.append(f"yolo/data.yaml: unreadable YAML ({_first_line(exc)})")
        data = None
    if data is not None:
        names = data.get("names") if isinstance(data, dict) else None
        if names != dict(enumerate(spec.class_names)) or data.get("nc") != len(spec.class_names):
            defects.append(f"yolo/data.yaml: names/nc do not match the spec's classes {spec.class_names}")
    polygon = Task.instance_segmentation in spec.tasks
    nc = len(spec.class_names)
    for split, coco in cocos.items():
        label_dir = yolo / "labels" / split
        named: set[str] = set()
        for image in coco.dataset["images"]:
            stem = Path(str(image.get("file_name", ""))).stem
            named.add(stem)
            rel = f"yolo/labels/{split}/{stem}.txt"
            if not (yolo / "images" / split / str(image.get("file_name"))).is_file():
                defects.append(f"yolo/images/{split}/{image.get('file_name')}: missing")
            try:
                lines = (label_dir / f"{stem}.txt").read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                defects.append(f"{rel}: missing")
                continue
            anns = coco.imgToAnns.get(image["id"], [])
            lines = [ln for ln in lines if ln.strip()]
            if len(lines) != len(anns):
                defects.append(f"{rel}: {len(lines)} objects but COCO has {len(anns)}")
                continue
            expected = _expected_yolo_boxes(anns, image, polygon)
            for number, (line, want) in enumerate(zip(lines, expected, strict=True), start=1):
                ann = anns[number - 1]
                parts = line.split()
                try:
                    cls, values = int(parts[0]), [float(v) for v in parts[1:]]
                except (ValueError, IndexError):
                    defects.append(f"{rel}: line {number} does not parse")
                    continue
                shape_ok = len(values) >= 6 and len(values) % 2 == 0 if polygon else len(values) == 4
                if not shape_ok or any(not 0.0 <= v <= 1.0 for v in values):
                    defects.append(f"{rel}: line {number} has {len(values)} numbers or values outside [0, 1]")
                    continue
                if not 0 <= cls < nc:
                    defects.append(f"{rel}: line {number} class id {cls} is outside 0..{nc - 1}")
                elif cls != ann["category_id"] - 1:
                    defects.append(f"{rel}: line {number} class {cls} but COCO says {ann['category_id'] - 1}")
                got = _yolo_box(values, polygon)
                if any(abs(a - b) > YOLO_TOLERANCE for a, b in zip(got, want, strict=True)):
                    shown = ", ".join(f"{v:.4f}" for v in got)
                    wanted = ", ".join(f"{v:.4f}" for v in want)
                    defects.append(f"{rel}: line {number} box ({shown}) differs from COCO ({wanted})")
        if label_dir.is_dir():
            extra = sorted(p.name for p in label_dir.iterdir() if p.is_file() and p.stem not in named)
            if extra:
                defects.append(f"yolo/labels/{split}: label files for no COCO image: {extra[:10]}")


def _check_hf(out_dir: Path, cocos: dict[str, COCO], semantic: bool, defects: list[str]) -> None:
    for split, coco in cocos.items():
        n_images = len(coco.dataset["images"])
        path = out_dir / "hf" / split / "metadata.jsonl"
        rel = f"hf/{split}/metadata.jsonl"
        if not path.is_file():
            if n_images:
                defects.append(f"{rel}: missing")
            continue
        n_rows = 0
        try:
            for row in iter_jsonl(path):  # row by row: each row holds the image's RLE masks
                n_rows += 1
                name = row.get("file_name") if isinstance(row, dict) else None
                if not name or not (path.parent / name).is_file():
                    defects.append(f"{rel}: row for {name} names no image file")
                label_map = row.get("semantic_file_name") if isinstance(row, dict) else None
                if semantic and (not label_map or not (path.parent / label_map).is_file()):
                    defects.append(f"{rel}: row for {name} names no semantic map file ({label_map})")
        except json.JSONDecodeError as exc:
            defects.append(f"{rel}: unreadable JSON line ({_first_line(exc)})")
            continue
        if n_rows != n_images:
            defects.append(f"{rel}: {n_rows} rows but COCO has {n_images} images")


def _check_tasks(out_dir: Path, spec: TaskSpec, cocos: dict[str, COCO], defects: list[str]) -> None:
    """Every task output the spec asks for exists and matches the COCO files."""
    per_split = {
        Task.captioning: check_captions,
        Task.referring_expressions: check_refs,
        Task.scene_graph: check_scene_graphs,
    }
    for task, check in per_split.items():
        if task in spec.tasks:
            for split, coco in cocos.items():
                check(out_dir, split, coco, defects)
    if Task.semantic_segmentation in spec.tasks:
        check_semantic(out_dir, spec, cocos, defects)


def validate_dataset(out_dir: Path | str) -> list[str]:
    """All defects found in the dataset at `out_dir` (see the module docstring); [] means valid."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return [f"{out_dir}: not a directory"]
    defects: list[str] = []
    spec = _load_spec(out_dir, defects)
    if spec is not None:
        splits = spec.splits.names()
    else:
        found = (out_dir / "annotations").glob("instances_*.json")
        splits = sorted(p.stem.removeprefix("instances_") for p in found)
    cocos: dict[str, COCO] = {}
    named_images: set[Path] = set()
    unusable: set[str] = set()  # splits whose COCO file exists but could not be used: their images are not orphans
    for split in splits:
        rel = f"annotations/instances_{split}.json"
        coco = _load_coco(out_dir / rel, rel, defects)
        if coco is None:
            if (out_dir / rel).is_file():
                unusable.add(split)
            continue
        cocos[split] = coco
        _check_ids(coco, rel, spec, defects)
        category_ids = {c.get("id") for c in coco.dataset["categories"]}
        for image in coco.dataset["images"]:
            _check_image(out_dir, split, image, rel, defects)
            named_images.add((out_dir / "images" / split / str(image.get("file_name"))).resolve())
        for ann in coco.dataset["annotations"]:
            if ann.get("category_id") not in category_ids:
                cat = ann.get("category_id")
                defects.append(f"{rel}: annotation {ann.get('id')}: unknown category {cat}")
            image = coco.imgs.get(ann.get("image_id"))
            if image is None:
                defects.append(f"{rel}: annotation {ann.get('id')}: no image with id {ann.get('image_id')}")
                continue
            _check_annotation(ann, image, rel, defects)

    sample_ids = {
        str(img.get("sample_id") or Path(str(img.get("file_name"))).stem)
        for coco in cocos.values()
        for img in coco.dataset["images"]
    }
    n_images = sum(len(c.dataset["images"]) for c in cocos.values())
    _check_manifest(out_dir, sample_ids, n_images, defects)
    if spec is not None and ExportFormat.yolo in spec.formats:
        _check_yolo(out_dir, spec, cocos, defects)
    if spec is not None and ExportFormat.hf in spec.formats:
        _check_hf(out_dir, cocos, Task.semantic_segmentation in spec.tasks, defects)
    if spec is not None and ExportFormat.voc in spec.formats:
        check_voc(out_dir, spec, cocos, defects)
    if spec is not None:
        _check_tasks(out_dir, spec, cocos, defects)

    images_dir = out_dir / "images"
    if images_dir.is_dir():
        for path in sorted(p for p in images_dir.rglob("*") if p.is_file()):
            if path.relative_to(images_dir).parts[0] in unusable:
                continue
            if path.resolve() not in named_images:
                defects.append(f"{path.relative_to(out_dir).as_posix()}: orphan image, named by no COCO file")
    return defects
