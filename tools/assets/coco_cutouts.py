"""Cut-outs from the user's own COCO dataset: each instance cut out by its mask (polygons or RLE) into an RGBA
PNG under a cache folder, labelled with its category name."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from synthloop.tools.assets.matcher import normalise_name
from synthloop.tools.assets.types import LICENCES, Asset, AssetError
from synthloop.tools.io import atomic_write_bytes

MIN_AREA = 24 * 24  # smaller instances make poor cut-outs
MAX_PER_CATEGORY = 200


def cut_out_coco(coco_json: str | os.PathLike[str], images_dir: str | os.PathLike[str],
                 cache_dir: str | os.PathLike[str], *, min_area: int = MIN_AREA,
                 max_per_category: int = MAX_PER_CATEGORY) -> list[Asset]:
    """Cut every non-crowd instance of at least `min_area` pixels (at most `max_per_category` per category)
    out of its image by its mask; RGBA PNGs are written once under `cache_dir` and reused.

    Raises AssetError naming the file for an unreadable COCO file and for an image it lists that is missing."""
    json_path, images = Path(coco_json).expanduser(), Path(images_dir).expanduser()
    if not json_path.is_file():
        raise AssetError(json_path, "reference COCO file does not exist")
    if not images.is_dir():
        raise AssetError(images, "reference images folder does not exist")
    try:
        from pycocotools.coco import COCO

        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(json_path))
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise AssetError(json_path, f"not a readable COCO instances file ({exc.__class__.__name__}: {exc})") from exc
    stat = json_path.stat()
    key = hashlib.blake2b(f"{json_path.resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{min_area}".encode(),
                          digest_size=8).hexdigest()
    out_dir = Path(cache_dir) / f"coco-{key}"
    categories = {c["id"]: normalise_name(c["name"]) for c in coco.loadCats(coco.getCatIds())}
    taken: dict[int, int] = {}
    assets: list[Asset] = []
    for image_id in sorted(coco.getImgIds()):
        info = coco.loadImgs(image_id)[0]
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False))
                if a.get("area", 0) >= min_area and taken.get(a["category_id"], 0) < max_per_category]
        if not anns:
            continue
        image_path = images / info["file_name"]
        pixels: np.ndarray | None = None
        for ann in anns:
            target = out_dir / f"{ann['id']}.png"
            if not target.exists():
                if pixels is None:
                    pixels = _read_image(image_path)
                _write_cutout(target, pixels, coco.annToMask(ann).astype(bool), ann["bbox"])
            taken[ann["category_id"]] = taken.get(ann["category_id"], 0) + 1
            label = categories.get(ann["category_id"], "object")
            assets.append(Asset(id=f"coco:{json_path.name}#{ann['id']}", source="coco", licence=LICENCES["coco"],
                                path=str(target), description=f"{label} (instance {ann['id']} of {info['file_name']})",
                                kind="photo", label=label))
    return assets


def _read_image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise AssetError(path, "image listed in the reference COCO file is missing")
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise AssetError(path, f"image listed in the reference COCO file is not readable ({exc})") from exc


def _write_cutout(target: Path, pixels: np.ndarray, mask: np.ndarray, bbox: list[float]) -> None:
    height, width = mask.shape
    if pixels.shape[:2] != (height, width):
        raise AssetError(target.name, f"image size {pixels.shape[1]}x{pixels.shape[0]} differs from the COCO file's "
                                      f"{width}x{height}")
    x, y, w, h = bbox
    x0, y0 = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
    x1, y1 = min(width, int(np.ceil(x + w))), min(height, int(np.ceil(y + h)))
    rgba = np.dstack([pixels[y0:y1, x0:x1], mask[y0:y1, x0:x1].astype(np.uint8) * 255])
    rgba = np.pad(rgba, ((1, 1), (1, 1), (0, 0)))  # a transparent margin: the mask may fill its whole box
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG", compress_level=1)
    atomic_write_bytes(target, buffer.getvalue())
