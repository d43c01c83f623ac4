"""PASCAL VOC export: XML boxes, JPEG images, image sets, and class maps for semantic segmentation.

On-disk layout (under the output directory DIR), written when `voc` is in spec.formats:

    DIR/voc/Annotations/{id}.xml             one standard VOC annotation per image (below)
    DIR/voc/JPEGImages/{id}.jpg              the image as JPEG (quality 95, 4:4:4), converted from
                                             DIR/images/{split}/{id}.png: VOC tools (torchvision's VOCDetection,
                                             mmdet, the devkit) open `{id}.jpg`; the PNG stays the lossless copy
    DIR/voc/ImageSets/Main/{split}.txt       the ids of each split of the spec, sorted, one per line
    DIR/voc/SegmentationClass/{id}.png       when semantic_segmentation is in spec.tasks: the class map of
                                             `semantic/` (pixel = COCO category id, 0 background, 255 ignore,
                                             as VOC's void) as a palette PNG with VOC's colour map
    DIR/voc/ImageSets/Segmentation/{split}.txt   the same ids, when the class maps are written

An annotation holds folder, filename ({id}.jpg), source, size (width, height, depth 3), segmented (1 when
the class maps are written) and one `object` per instance of the COCO file, in its order: name (the class),
pose Unspecified, truncated (1 when the box touches the image border), difficult 0, and bndbox with xmin,
ymin, xmax, ymax as 1-based inclusive pixel indices of the box's first and last pixel column and row
(COCO xywh (x, y, w, h) → xmin = floor(x) + 1, xmax = ceil(x + w), so integer boxes convert exactly back).
Sample ids are unique across splits, so the flat VOC folders hold every split. Files an earlier export
wrote that this one did not are removed.
"""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

from synthloop.tools.export.base import BaseExporter
from synthloop.tools.export.coco_records import category_ids, exported_instances
from synthloop.tools.export.semantic import sample_semantic_map, voc_palette
from synthloop.tools.export.streaming import DuplicateKeyError, SortedSpool, write_lines
from synthloop.tools.io import atomic_write_bytes, atomic_write_text
from synthloop.tools.types import Instance, Sample, Task, TaskSpec

JPEG_QUALITY = 95


def voc_box(bbox: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """COCO pixel xywh → VOC (xmin, ymin, xmax, ymax), 1-based inclusive, clamped to the image."""
    x, y, w, h = bbox
    xmin = min(width, max(1, math.floor(x) + 1))
    ymin = min(height, max(1, math.floor(y) + 1))
    xmax = min(width, max(xmin, math.ceil(x + w)))
    ymax = min(height, max(ymin, math.ceil(y + h)))
    return xmin, ymin, xmax, ymax


def _add(parent: ET.Element, tag: str, text: object) -> ET.Element:
    child = ET.SubElement(parent, tag)
    child.text = str(text)
    return child


def _object(root: ET.Element, instance: Instance, width: int, height: int) -> None:
    xmin, ymin, xmax, ymax = voc_box(instance.bbox, width, height)
    element = ET.SubElement(root, "object")
    _add(element, "name", instance.category)
    _add(element, "pose", "Unspecified")
    _add(element, "truncated", int(xmin == 1 or ymin == 1 or xmax == width or ymax == height))
    _add(element, "difficult", 0)
    box = ET.SubElement(element, "bndbox")
    for tag, value in (("xmin", xmin), ("ymin", ymin), ("xmax", xmax), ("ymax", ymax)):
        _add(box, tag, value)


def annotation_xml(sample: Sample, segmented: bool) -> str:
    """The VOC XML text of one sample."""
    stem = Path(sample.image_path).stem
    root = ET.Element("annotation")
    _add(root, "folder", "JPEGImages")
    _add(root, "filename", f"{stem}.jpg")
    source = ET.SubElement(root, "source")
    _add(source, "database", "synthloop")
    _add(source, "annotation", "synthloop")
    _add(source, "image", "synthetic")
    size = ET.SubElement(root, "size")
    _add(size, "width", sample.width)
    _add(size, "height", sample.height)
    _add(size, "depth", 3)
    _add(root, "segmented", int(segmented))
    for _, instance in exported_instances(sample):
        _object(root, instance, sample.width, sample.height)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def jpeg_bytes(png_path: Path) -> bytes:
    """The image at `png_path` as RGB JPEG bytes (quality 95, no chroma subsampling)."""
    with Image.open(png_path) as opened:
        rgb = opened.convert("RGB")
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buffer.getvalue()


def palette_png_bytes(label_map: np.ndarray) -> bytes:
    """A uint8 class-index map as a palette PNG (VOC colours); readers that open it with Pillow get the indices."""
    height, width = label_map.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(label_map, dtype=np.uint8).tobytes())
    image.putpalette([channel for color in voc_palette() for channel in color])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class VocExporter(BaseExporter):
    """Writes the `voc/` tree (see the module docstring)."""

    id = "voc"

    def setup(self, out_dir: Path, spec: TaskSpec) -> None:
        """Start a new export into `out_dir`."""
        super().setup(out_dir, spec)
        self._segmented = Task.semantic_segmentation in self.spec.tasks
        self._class_ids = category_ids(self.spec)
        self._ids = {name: SortedSpool(self.out_dir) for name in self.spec.splits.names()}

    def export_sample(self, sample: Sample) -> None:
        """Write the sample's XML, JPEG and (with semantic segmentation) class map."""
        self.check_sample(sample)
        voc = self.out_dir / "voc"
        stem = Path(sample.image_path).stem
        try:
            self._ids[sample.split].add(stem)
        except DuplicateKeyError:
            raise ValueError(f"sample {sample.id} exported twice") from None
        atomic_write_text(self.wrote(voc / "Annotations" / f"{stem}.xml"), annotation_xml(sample, self._segmented))
        jpeg = jpeg_bytes(self.out_dir / sample.image_path)
        atomic_write_bytes(self.wrote(voc / "JPEGImages" / f"{stem}.jpg"), jpeg)
        if self._segmented:
            label_map = sample_semantic_map(sample, self._class_ids)
            atomic_write_bytes(self.wrote(voc / "SegmentationClass" / f"{stem}.png"), palette_png_bytes(label_map))

    def close(self) -> None:
        """Write the image sets and remove files an earlier export left."""
        voc = self.out_dir / "voc"
        sets = ["Main", "Segmentation"] if self._segmented else ["Main"]
        for split, stems in self._ids.items():
            for kind in sets:
                write_lines(self.wrote(voc / "ImageSets" / kind / f"{split}.txt"), stems.keys())
            stems.close()
        for folder in ("Annotations", "JPEGImages", "SegmentationClass", "ImageSets/Main", "ImageSets/Segmentation"):
            self.remove_stale(voc / folder)
        self.finish()
