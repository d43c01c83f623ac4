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

from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar

from synthloop.tools.export.coco_records import FORMAT_VERSION, ImageIds
from synthloop.tools.export.split_file import QueuedSample, SplitFileExporter
from synthloop.tools.export.streaming import JsonArray
from synthloop.tools.types import Sample


def caption_elements(entry: QueuedSample, ids: ImageIds, first_id: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """The `images` entry of one sample, then one annotation per caption (ids from `first_id`)."""
    yield "images", {"id": ids.image_id, **entry.image}
    for n, caption in enumerate(entry.payload):
        yield "annotations", {"id": first_id + n, "image_id": ids.image_id, "caption": caption}


def captions_document(request: str, images: Any, annotations: Any) -> dict[str, Any]:
    """The COCO captions file's value around its `images` and `annotations` arrays."""
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
    arrays: ClassVar[tuple[str, ...]] = ("images", "annotations")

    def payload(self, sample: Sample) -> list[str]:
        """The sample's captions."""
        return list(sample.annotation.captions) if sample.annotation is not None else []

    def elements(
        self, split: str, entry: QueuedSample, ids: ImageIds, counters: Counter[str]
    ) -> Iterator[tuple[str, Any]]:
        """The sample's image entry and caption annotations."""
        yield from caption_elements(entry, ids, counters["captions"] + 1)
        counters["captions"] += len(entry.payload)

    def document(self, split: str, arrays: dict[str, JsonArray]) -> dict[str, Any]:
        """The COCO captions file around the streamed arrays."""
        return captions_document(self.spec.request, arrays["images"], arrays["annotations"])
