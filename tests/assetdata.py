"""Tiny generated cut-out folders and COCO files for the asset and copy_paste tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

RED, BLUE = (230, 20, 20), (20, 40, 230)


def cutout(shape: str, colour: tuple[int, int, int], size: tuple[int, int] = (60, 40)) -> Image.Image:
    """An RGBA cut-out: a filled shape in `colour` on transparency (2 px transparent margin)."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    box = (2, 2, size[0] - 3, size[1] - 3)
    if shape == "ellipse":
        draw.ellipse(box, fill=(*colour, 255))
    elif shape == "square":
        draw.rectangle(box, fill=(*colour, 255))
    else:
        draw.polygon([(2, size[1] - 3), (size[0] // 2, 2), (size[0] - 3, size[1] - 3)], fill=(*colour, 255))
    return image


def make_assets(root: Path, classes: dict[str, list[tuple[str, tuple[int, int, int]]]]) -> Path:
    """root/<class>/<i>.png for each (shape, colour) of each class."""
    for name, looks in classes.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, (shape, colour) in enumerate(looks):
            cutout(shape, colour, (60 + 7 * i, 40 + 5 * i)).save(folder / f"{i}.png")
    return root


def make_coco(root: Path) -> tuple[Path, Path]:
    """A two-image COCO file with one polygon and one RLE instance, and its images."""
    from pycocotools import mask as mask_utils

    images = root / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(images / name)
    mask = np.zeros((80, 100), np.uint8, order="F")
    mask[20:60, 30:70] = 1
    rle = mask_utils.encode(mask)
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 80},
                   {"id": 2, "file_name": "b.png", "width": 100, "height": 80}],
        "categories": [{"id": 1, "name": "cup"}, {"id": 2, "name": "plate"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0,
             "segmentation": [[10, 10, 50, 10, 50, 50, 10, 50]]},
            {"id": 11, "image_id": 2, "category_id": 2, "bbox": [30, 20, 40, 40], "area": 1600, "iscrowd": 0,
             "segmentation": {"size": [80, 100], "counts": rle["counts"].decode("ascii")}},
        ],
    }
    path = root / "instances.json"
    path.write_text(json.dumps(coco))
    return path, images
