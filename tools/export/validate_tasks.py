"""`validate` checks of the task outputs: captions, referring expressions, scene graphs and semantic maps.

Each check runs when its task is in spec.tasks, takes the split's indexed COCO instances file, and appends
defects that name the file; a task whose output is missing is a defect. What is checked:
- captions_{split}.json: pycocotools indexes it; its images are those of the instances file; annotation ids
  are unique and point to an image; captions are non-empty text; every image has at least one caption;
- refs_{split}.json: a list of refs; ref and sentence ids unique; each ref's ann_id exists in the instances
  file with the same image_id and category_id; split matches; sentences non-empty with word tokens; a split
  with objects but no ref at all is a defect;
- scene_graphs_{split}.json: one entry per image of the instances file, in its order; objects are exactly
  that image's annotations (id, class name, box); relationship ids unique, subject and object among the
  image's objects, predicate non-empty; a split where some image has two objects but no relation at all is
  a defect;
- semantic/classes.json names the COCO categories plus background 0 and ignore 255; semantic/{split}/{id}.png
  exists for every image, is one channel of the image's size, holds only category ids, 0 and 255, and
  equals pixel for pixel the map rebuilt from the COCO file (masks, boxes, certificates).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools.coco import COCO

from synthloop.tools.export.semantic import BACKGROUND, IGNORE, MapInstance, semantic_map
from synthloop.tools.types import TaskSpec


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load_json(path: Path, rel: str, what: str, defects: list[str]) -> Any:
    """Parsed JSON of `path`, or None with a defect ('missing (<what> was asked for)' when absent)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        defects.append(f"{rel}: missing ({what} was asked for)")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        defects.append(f"{rel}: unreadable JSON ({_first_line(exc)})")
    return None


def _duplicates(values: list[Any]) -> list[Any]:
    return sorted((v for v, n in Counter(values).items() if n > 1), key=str)


def unnamed_files(folder: Path, named: set[str]) -> list[str]:
    """Sorted names of the files directly in `folder` that are not in `named` ([] without the folder)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in named)


def _image_key(image: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(image.get(k) for k in ("id", "file_name", "width", "height"))


def _sample_name(coco: COCO, image_id: Any) -> str:
    image = coco.imgs.get(image_id, {})
    return str(image.get("sample_id") or image.get("file_name") or image_id)


# ------------------------------------------------------------------------------------------- captions


def check_captions(out_dir: Path, split: str, coco: COCO, defects: list[str]) -> None:
    """Check annotations/captions_{split}.json against the instances file."""
    rel = f"annotations/captions_{split}.json"
    data = load_json(out_dir / rel, rel, "captioning", defects)
    if data is None:
        return
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(
        data.get("annotations"), list
    ):
        defects.append(f"{rel}: not a COCO captions file (needs 'images' and 'annotations' lists)")
        return
    captions = COCO()
    captions.dataset = data
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            captions.createIndex()
    except (KeyError, TypeError) as exc:
        defects.append(f"{rel}: pycocotools cannot index it (missing or bad field {exc})")
        return
    if [_image_key(i) for i in data["images"]] != [_image_key(i) for i in coco.dataset["images"]]:
        defects.append(f"{rel}: its images differ from instances_{split}.json (ids, file names or sizes)")
    dupes = _duplicates([a.get("id") for a in data["annotations"]])
    if dupes:
        defects.append(f"{rel}: duplicate annotation ids {dupes[:10]}")
    for ann in data["annotations"]:
        if ann.get("image_id") not in coco.imgs:
            defects.append(f"{rel}: caption {ann.get('id')} names no image of instances_{split}.json")
        caption = ann.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            defects.append(f"{rel}: caption {ann.get('id')} is empty or not text")
    uncaptioned = [_sample_name(coco, i) for i in coco.imgs if not captions.imgToAnns.get(i)]
    if uncaptioned:
        defects.append(f"{rel}: {len(uncaptioned)} images without a caption: {uncaptioned[:10]}")


# ------------------------------------------------------------------------------------------- refs


def _check_sentences(ref: dict[str, Any], where: str, defects: list[str]) -> list[Any]:
    sentences = ref.get("sentences")
    if not isinstance(sentences, list) or not sentences:
        defects.append(f"{where}: no sentences")
        return []
    ids = []
    for sentence in sentences:
        ok = isinstance(sentence, dict) and isinstance(sentence.get("sent"), str) and sentence["sent"].strip()
        tokens = sentence.get("tokens") if isinstance(sentence, dict) else None
        if not ok or not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
            defects.append(f"{where}: a sentence is empty or has no word tokens")
            continue
        ids.append(sentence.get("sent_id"))
    return ids


def check_refs(out_dir: Path, split: str, coco: COCO, defects: list[str]) -> None:
    """Check annotations/refs_{split}.json against the instances file."""
    rel = f"annotations/refs_{split}.json"
    refs = load_json(out_dir / rel, rel, "referring_expressions", defects)
    if refs is None:
        return
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        defects.append(f"{rel}: not a list of refs")
        return
    dupes = _duplicates([r.get("ref_id") for r in refs])
    if dupes:
        defects.append(f"{rel}: duplicate ref ids {dupes[:10]}")
    sent_ids: list[Any] = []
    for ref in refs:
        where = f"{rel}: ref {ref.get('ref_id')}"
        ann = coco.anns.get(ref.get("ann_id"))
        if ann is None:
            defects.append(f"{where}: ann_id {ref.get('ann_id')} is no annotation of instances_{split}.json")
        elif (ref.get("image_id"), ref.get("category_id")) != (ann["image_id"], ann["category_id"]):
            defects.append(
                f"{where}: image {ref.get('image_id')} / category {ref.get('category_id')} differ from its "
                f"annotation's ({ann['image_id']} / {ann['category_id']})"
            )
        if ref.get("split") != split:
            defects.append(f"{where}: split '{ref.get('split')}' in the {split} file")
        sent_ids += _check_sentences(ref, where, defects)
    dupes = _duplicates(sent_ids)
    if dupes:
        defects.append(f"{rel}: duplicate sentence ids {dupes[:10]}")
    if coco.dataset["annotations"] and not refs:
        defects.append(f"{rel}: no referring expression for any of {len(coco.dataset['annotations'])} objects")


# ------------------------------------------------------------------------------------------- scene graphs


def _expected_objects(coco: COCO, image_id: Any, names: dict[Any, str]) -> list[dict[str, Any]]:
    return [
        {"object_id": a["id"], "names": [names.get(a["category_id"])], "x": a["bbox"][0], "y": a["bbox"][1],
         "w": a["bbox"][2], "h": a["bbox"][3]}
        for a in coco.imgToAnns.get(image_id, [])
    ]  # fmt: skip


def check_scene_graphs(out_dir: Path, split: str, coco: COCO, defects: list[str]) -> None:
    """Check annotations/scene_graphs_{split}.json against the instances file."""
    rel = f"annotations/scene_graphs_{split}.json"
    graphs = load_json(out_dir / rel, rel, "scene_graph", defects)
    if graphs is None:
        return
    if not isinstance(graphs, list) or not all(isinstance(g, dict) for g in graphs):
        defects.append(f"{rel}: not a list of per-image scene graphs")
        return
    image_ids = [i["id"] for i in coco.dataset["images"]]
    if [g.get("image_id") for g in graphs] != image_ids:
        defects.append(f"{rel}: its images differ from instances_{split}.json (one entry per image, same order)")
        return
    names = {c["id"]: c.get("name") for c in coco.dataset["categories"]}
    relationship_ids: list[Any] = []
    crowded = False
    for graph in graphs:
        where = f"{rel}: image {graph['image_id']}"
        objects = graph.get("objects")
        if objects != _expected_objects(coco, graph["image_id"], names):
            defects.append(f"{where}: objects differ from its COCO annotations (ids, names or boxes)")
            continue
        object_ids = {o["object_id"] for o in objects}
        crowded = crowded or len(object_ids) >= 2
        relationships = graph.get("relationships")
        if not isinstance(relationships, list):
            defects.append(f"{where}: no relationships list")
            continue
        for relation in relationships:
            relationship_ids.append(relation.get("relationship_id") if isinstance(relation, dict) else None)
            if not isinstance(relation, dict):
                defects.append(f"{where}: a relationship is not an object")
                continue
            ends = (relation.get("subject_id"), relation.get("object_id"))
            if not all(end in object_ids for end in ends):
                defects.append(
                    f"{where}: relationship {relation.get('relationship_id')} joins {ends}, not objects of this image"
                )
            predicate = relation.get("predicate")
            if not isinstance(predicate, str) or not predicate.strip():
                defects.append(f"{where}: relationship {relation.get('relationship_id')} has no predicate")
    dupes = _duplicates(relationship_ids)
    if dupes:
        defects.append(f"{rel}: duplicate relationship ids {dupes[:10]}")
    if crowded and not relationship_ids:
        defects.append(f"{rel}: no relationship at all, though some images hold two or more objects")


# ------------------------------------------------------------------------------------------- semantic


def _map_instances(coco: COCO, image_id: Any) -> list[MapInstance]:
    """What the semantic exporter used, read back from the COCO file: an RLE is a mask; a polygon is the box
    of an instance without one."""
    out = []
    for ann in coco.imgToAnns.get(image_id, []):
        segm = ann.get("segmentation")
        counts = segm.get("counts") if isinstance(segm, dict) else None
        certificate = ann.get("certificate")
        agreement = certificate.get("agreement") if isinstance(certificate, dict) else None
        out.append(MapInstance(ann["category_id"], counts, tuple(ann["bbox"]), agreement))
    return out


def _check_classes(out_dir: Path, spec: TaskSpec, defects: list[str]) -> float | None:
    """Check semantic/classes.json; returns its ignore threshold (None when unusable)."""
    rel = "semantic/classes.json"
    data = load_json(out_dir / rel, rel, "semantic_segmentation", defects)
    if data is None:
        return None
    expected = [(BACKGROUND, "background"), *((i + 1, n) for i, n in enumerate(spec.class_names)), (IGNORE, "ignore")]
    classes = data.get("classes") if isinstance(data, dict) else None
    found = [(c.get("id"), c.get("name")) for c in classes if isinstance(c, dict)] if isinstance(classes, list) else []
    if found != expected:
        defects.append(f"{rel}: classes {found} differ from background, the spec's classes and ignore {expected}")
    threshold = data.get("ignore_below_agreement") if isinstance(data, dict) else None
    if not isinstance(threshold, int | float):
        defects.append(f"{rel}: no numeric ignore_below_agreement")
        return None
    return float(threshold)


def read_label_map(path: Path, rel: str, size: tuple[int, int], defects: list[str]) -> np.ndarray | None:
    """A single-channel (grayscale or palette) PNG's index values, or None with a defect."""
    if not path.is_file():
        defects.append(f"{rel}: missing")
        return None
    try:
        with Image.open(path) as opened:
            mode, found = opened.mode, opened.size
            values = np.asarray(opened) if mode in ("L", "P") else None
    except OSError as exc:
        defects.append(f"{rel}: cannot be opened as an image ({_first_line(exc)})")
        return None
    if values is None:
        defects.append(f"{rel}: mode {mode}, not a single-channel class map")
        return None
    if found != size:
        defects.append(f"{rel}: is {found[0]}x{found[1]} but its image is {size[0]}x{size[1]}")
        return None
    return values


def check_semantic(out_dir: Path, spec: TaskSpec, cocos: dict[str, COCO], defects: list[str]) -> None:
    """Check semantic/classes.json and every map against the COCO files."""
    threshold = _check_classes(out_dir, spec, defects)
    allowed = {BACKGROUND, IGNORE, *range(1, len(spec.class_names) + 1)}
    for split, coco in cocos.items():
        named: set[str] = set()
        for image in coco.dataset["images"]:
            stem = Path(str(image.get("file_name"))).stem
            named.add(f"{stem}.png")
            rel = f"semantic/{split}/{stem}.png"
            values = read_label_map(out_dir / rel, rel, (image.get("width"), image.get("height")), defects)
            if values is None:
                continue
            unknown = sorted(set(np.unique(values).tolist()) - allowed)
            if unknown:
                defects.append(f"{rel}: values {unknown[:10]} are no category id, 0 or 255")
                continue
            if threshold is None:
                continue
            expected = semantic_map(values.shape[0], values.shape[1], _map_instances(coco, image["id"]), threshold)
            wrong = int(np.count_nonzero(expected != values))
            if wrong:
                defects.append(f"{rel}: {wrong} pixels differ from the map of the COCO masks of image {image['id']}")
        extra = unnamed_files(out_dir / "semantic" / split, named)
        if extra:
            defects.append(f"semantic/{split}: maps for no COCO image: {extra[:10]}")
