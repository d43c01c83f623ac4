"""Captions export in the COCO captions format.

On-disk layout (under the output directory DIR), written when `captioning` is in spec.tasks:

    DIR/annotations/captions_{split}.json   one file per split of the spec, empty splits included

The file is what pycocotools' `COCO` loads for captions (as COCO's own `captions_train2017.json`):
- `info`, `licenses`: as in the instances file;
- `images`: the same entries and ids as `instances_{split}.json` (id, file_name, width, height, sample_id);
- `annotations`: {id, image_id, caption}, one per caption of `Annotation.captions`, ids 1..n in image order.
An image without a caption has no annotation here; `validate` reports it (every image must have one).
"""

from __future__ import annotations

from typing import Any

from synthloop.tools.export.coco import FORMAT_VERSION, ImageIds
from synthloop.tools.export.split_file import QueuedSample, SplitFileExporter
from synthloop.tools.types import Sample


def captions_file(request: str, entries: list[tuple[QueuedSample, ImageIds]]) -> dict[str, Any]:
    """The COCO captions dict of one split."""
    images, annotations = [], []
    for entry, ids in entries:
        images.append({"id": ids.image_id, **entry.image})
        for caption in entry.payload:
            annotations.append({"id": len(annotations) + 1, "image_id": ids.image_id, "caption": caption})
    return {
        "info": {"description": request or "synthloop dataset", "version": FORMAT_VERSION},
        "licenses": [{"id": 1, "name": "unspecified", "url": ""}],
        "images": images,
        "annotations": annotations,
    }


class CaptionsExporter(SplitFileExporter):
    """Writes `annotations/captions_{split}.json` (see the module docstring)."""

    id = "captions"
    file_pattern = "annotations/captions_{split}.json"

    def payload(self, sample: Sample) -> list[str]:
        """The sample's captions."""
        return list(sample.annotation.captions) if sample.annotation is not None else []

    def build(self, split: str, entries: list[tuple[QueuedSample, ImageIds]]) -> dict[str, Any]:
        """The COCO captions dict of one split."""
        return captions_file(self.spec.request, entries)
