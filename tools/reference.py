"""The user's own annotated data as a reference: load a COCO file + image folder, fit layout priors on it.

`load_reference(coco, images)` reads and checks the file; anything unusable raises `ReferenceDataError` (a
ValueError) with one line naming the file and the first problem: a missing or unreadable file, JSON that is not
a COCO instances file, no annotations, an annotation with an unknown image or category, an empty box or one
outside its image, image files missing from the folder (the first is named, the rest counted).

`fit_priors(data)` turns it into `LayoutPriors` (AnySynth's layout priors), kept empirical so nothing is
assumed about their shape:
- per image, the instance count of every class (class frequencies, objects per image and co-occurrence all
  follow from this matrix; sampling a row keeps them jointly);
- per class, every box as (log size, log aspect, centre x, centre y): size = sqrt(box area / image area),
  aspect = width / height in pixels, centres as fractions of the image; sampled by a Gaussian kernel density
  (Scott's bandwidth) around the observed boxes.
Crowd regions (`iscrowd: 1`) are not objects and are skipped. Class names are compared in their normal form
(`class_names.normal_class_name`: lower case, singular).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthloop.tools.class_names import normal_class_name
from synthloop.tools.coco_file import read_coco_file

BORDER_TOLERANCE_PX = 1.0  # COCO boxes from polygons can overshoot the border by rounding
MIN_BANDWIDTH = (0.02, 0.02, 0.005, 0.005)  # kernel floor per dimension when every box of a class is alike


class ReferenceDataError(ValueError):
    """A reference COCO file or image folder cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ReferenceImage:
    """One reference image: file name, size in pixels, and its objects as (class, x, y, w, h) in pixels."""

    file_name: str
    width: int
    height: int
    objects: tuple[tuple[str, float, float, float, float], ...]


@dataclass(frozen=True)
class ReferenceData:
    """A checked reference dataset: class names (normal form, first-seen order) and its images."""

    coco_path: Path
    images_dir: Path
    classes: tuple[str, ...]
    images: tuple[ReferenceImage, ...]


def _image_size(entry: dict[str, Any], file: Path, where: str) -> tuple[int, int]:
    """(width, height) from the COCO entry, else from the image file's header."""
    width, height = entry.get("width"), entry.get("height")
    if isinstance(width, int | float) and isinstance(height, int | float) and width > 0 and height > 0:
        return int(width), int(height)
    from PIL import Image

    try:
        with Image.open(file) as image:
            return image.size
    except OSError as exc:
        raise ReferenceDataError(f"{where}: no width/height and the image {file} cannot be read: {exc}") from exc


def load_reference(coco_path: str | Path, images_dir: str | Path) -> ReferenceData:
    """Read and check a reference COCO instances file and its image folder (see the module docstring)."""
    coco_path, images_dir = Path(coco_path).expanduser(), Path(images_dir).expanduser()
    data = read_coco_file(coco_path, ReferenceDataError, what="reference COCO file")
    if not images_dir.is_dir():
        raise ReferenceDataError(f"reference images folder not found: {images_dir}")
    if not data["images"]:
        raise ReferenceDataError(f"{coco_path}: no images")
    categories: dict[Any, str] = {}
    for i, category in enumerate(data["categories"]):
        if not isinstance(category, dict) or "id" not in category or not normal_class_name(category.get("name", "")):
            raise ReferenceDataError(f"{coco_path}: categories[{i}] needs an 'id' and a 'name'")
        categories[category["id"]] = normal_class_name(category["name"])
    entries: dict[Any, tuple[int, dict[str, Any]]] = {}
    missing: list[str] = []
    for i, entry in enumerate(data["images"]):
        if not isinstance(entry, dict) or "id" not in entry or not isinstance(entry.get("file_name"), str):
            raise ReferenceDataError(f"{coco_path}: images[{i}] needs an 'id' and a 'file_name'")
        if entry["id"] in entries:
            raise ReferenceDataError(f"{coco_path}: images[{i}] repeats image id {entry['id']!r}")
        entries[entry["id"]] = (i, entry)
        if not (images_dir / entry["file_name"]).is_file():
            missing.append(entry["file_name"])
    if missing:
        more = f" (and {len(missing) - 1} more of {len(entries)})" if len(missing) > 1 else ""
        raise ReferenceDataError(f"{coco_path}: image file '{missing[0]}' is not in {images_dir}{more}")

    sizes = {key: _image_size(entry, images_dir / entry["file_name"], f"{coco_path}: images[{i}]")
             for key, (i, entry) in entries.items()}
    objects: dict[Any, list[tuple[str, float, float, float, float]]] = {key: [] for key in entries}
    for i, ann in enumerate(data["annotations"]):
        where = f"{coco_path}: annotations[{i}]" + (f" (id {ann['id']})" if isinstance(ann, dict) and "id" in ann
                                                    else "")
        if not isinstance(ann, dict):
            raise ReferenceDataError(f"{where} is not an object")
        if ann.get("iscrowd", 0):
            continue
        if ann.get("image_id") not in entries:
            raise ReferenceDataError(f"{where} refers to image id {ann.get('image_id')!r}, which images does not list")
        if ann.get("category_id") not in categories:
            raise ReferenceDataError(f"{where} has category_id {ann.get('category_id')!r}, which categories does "
                                     "not list")
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list | tuple) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
            raise ReferenceDataError(f"{where}: bbox {bbox!r} is not [x, y, width, height]")
        x, y, w, h = (float(v) for v in bbox)
        width, height = sizes[ann["image_id"]]
        file_name = entries[ann["image_id"]][1]["file_name"]
        if w <= 0 or h <= 0:
            raise ReferenceDataError(f"{where}: empty box {list(bbox)} in image '{file_name}'")
        tol = BORDER_TOLERANCE_PX
        if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
            raise ReferenceDataError(f"{where}: box {list(bbox)} lies outside its image '{file_name}' "
                                     f"({width}×{height})")
        x0, y0 = max(x, 0.0), max(y, 0.0)
        objects[ann["image_id"]].append((categories[ann["category_id"]], x0, y0, min(x + w, width) - x0,
                                         min(y + h, height) - y0))
    if not any(objects.values()):
        raise ReferenceDataError(f"{coco_path}: no annotations (nothing to fit layout priors on)")
    images = tuple(ReferenceImage(entry["file_name"], *sizes[key], tuple(objects[key]))
                   for key, (_, entry) in entries.items())
    used = {o[0] for image in images for o in image.objects}
    classes = tuple(dict.fromkeys(name for name in categories.values() if name in used))
    return ReferenceData(coco_path=coco_path, images_dir=images_dir, classes=classes, images=images)


# ------------------------------------------------------------------------------------------- priors


@dataclass(frozen=True)
class LayoutPriors:
    """Empirical layout statistics of a reference dataset (see the module docstring).

    counts: (images × classes) instance counts; boxes: per class an (n × 4) array of
    (log size, log aspect, centre x, centre y); bandwidth: per class the kernel's standard deviation per column.
    """

    classes: tuple[str, ...]
    counts: np.ndarray
    boxes: dict[str, np.ndarray]
    bandwidth: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""

    def class_frequency(self) -> dict[str, float]:
        """Share of all instances per class."""
        totals = self.counts.sum(axis=0)
        return {c: float(t / max(totals.sum(), 1)) for c, t in zip(self.classes, totals, strict=True)}

    def co_occurrence(self) -> np.ndarray:
        """P(class j in an image | class i in it), a (classes × classes) matrix (0 where i never occurs)."""
        present = (self.counts > 0).astype(np.float64)
        both = present.T @ present
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nan_to_num(both / np.diag(both)[:, None])

    def sample_boxes(self, name: str, n: int, rng: np.random.Generator, rows: np.ndarray | None = None) -> np.ndarray:
        """`n` draws of (log size, log aspect, centre x, centre y) from the class's kernel density (centred on
        the observed boxes `rows` only, when given)."""
        observed = self.boxes[name] if rows is None else self.boxes[name][rows]
        picks = observed[rng.integers(0, len(observed), size=n)]
        return picks + rng.normal(size=(n, 4)) * self.bandwidth[name]


def fit_priors(data: ReferenceData, *, bandwidth_scale: float = 1.0) -> LayoutPriors:
    """Layout priors of a checked reference dataset; kernel widths are Scott's rule × `bandwidth_scale`."""
    index = {name: k for k, name in enumerate(data.classes)}
    counts = np.zeros((len(data.images), len(data.classes)), dtype=np.int64)
    rows: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in data.classes}
    for i, image in enumerate(data.images):
        for name, x, y, w, h in image.objects:
            counts[i, index[name]] += 1
            size = np.sqrt(w * h / (image.width * image.height))
            rows[name].append((float(np.log(size)), float(np.log(w / h)), (x + w / 2) / image.width,
                               (y + h / 2) / image.height))
    boxes = {name: np.asarray(values, dtype=np.float64) for name, values in rows.items()}
    bandwidth = {}
    for name, values in boxes.items():
        scott = len(values) ** (-1.0 / (values.shape[1] + 4))
        bandwidth[name] = np.maximum(values.std(axis=0) * scott * bandwidth_scale, MIN_BANDWIDTH)
    return LayoutPriors(classes=data.classes, counts=counts, boxes=boxes, bandwidth=bandwidth,
                        source=str(data.coco_path))
