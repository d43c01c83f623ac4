"""Scene graph export, Visual Genome style.

On-disk layout (under the output directory DIR), written when `scene_graph` is in spec.tasks:

    DIR/annotations/scene_graphs_{split}.json   one file per split of the spec, empty splits included

The file is a JSON list with one entry per image of `instances_{split}.json`, in its order (as Visual
Genome's `scene_graphs.json`):
    {image_id, file_name, width, height,
     objects: [{object_id (= the COCO annotation id), names: [class], x, y, w, h (the COCO bbox, pixels)}],
     relationships: [{relationship_id, predicate, subject_id, object_id, source, score}]}
Objects are every instance the COCO file holds; relationships are `Annotation.relations` (subject and
object are indices into the sample's instances), `source` who asserted it (layout / rule / llm / vlm) and
`score` the checking model's confidence (null when none was asked). relationship_id counts from 1 within
the file. A relation with an end the COCO file leaves out (area 0) is not written; the card counts them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from synthloop.tools.export.coco_records import ImageIds, exported_instances
from synthloop.tools.export.split_file import QueuedSample, SplitFileExporter
from synthloop.tools.types import Sample


def _objects_and_relations(sample: Sample) -> list[Any]:
    """[(index, class, xywh) of the exported instances, the relations as dicts] of a sample (indices checked)."""
    objects = [[k, inst.category, [float(v) for v in inst.bbox]] for k, inst in exported_instances(sample)]
    if sample.annotation is None:
        return [objects, []]
    n = len(sample.annotation.instances)
    for rel in sample.annotation.relations:
        if rel.subject >= n or rel.object >= n:
            raise ValueError(
                f"sample {sample.id}: relation {rel.subject} -{rel.predicate}-> {rel.object} "
                f"refers to an instance index >= {n}"
            )
    return [objects, [rel.model_dump(mode="json") for rel in sample.annotation.relations]]


def scene_graph(entry: QueuedSample, ids: ImageIds, first_relationship: int) -> dict[str, Any]:
    """The scene graph of one sample; relationship ids count on from `first_relationship`, and a relation with
    an end the COCO file leaves out is not written."""
    objects, relations = entry.payload
    relationships = []
    for rel in relations:
        if rel["subject"] not in ids.ann_ids or rel["object"] not in ids.ann_ids:
            continue
        relationships.append(
            {
                "relationship_id": first_relationship + len(relationships),
                "predicate": rel["predicate"],
                "subject_id": ids.ann_ids[rel["subject"]],
                "object_id": ids.ann_ids[rel["object"]],
                "source": rel["source"],
                "score": rel["score"],
            }
        )
    return {
        "image_id": ids.image_id,
        "file_name": entry.image["file_name"],
        "width": entry.image["width"],
        "height": entry.image["height"],
        "objects": [
            {"object_id": ids.ann_ids[k], "names": [category], "x": x, "y": y, "w": w, "h": h}
            for k, category, (x, y, w, h) in objects
        ],
        "relationships": relationships,
    }


class SceneGraphExporter(SplitFileExporter):
    """Writes `annotations/scene_graphs_{split}.json` (see the module docstring)."""

    id = "scene_graphs"
    file_pattern = "annotations/scene_graphs_{split}.json"

    def payload(self, sample: Sample) -> list[Any]:
        """The sample's objects and relations."""
        return _objects_and_relations(sample)

    def elements(
        self, split: str, entry: QueuedSample, ids: ImageIds, counters: Counter[str]
    ) -> Iterator[tuple[str, Any]]:
        """The sample's scene graph."""
        graph = scene_graph(entry, ids, counters["relationships"] + 1)
        counters["relationships"] += len(graph["relationships"])
        yield "", graph
