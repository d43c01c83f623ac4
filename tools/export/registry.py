"""Dataset exporters by name; other packages add theirs under the `synthloop.exporters` entry point group.

Two kinds, one protocol (`Exporter`):
- formats, chosen by `formats:` in the spec (COCO is always written: validation and the card read it);
- task outputs, chosen by `tasks:` in the spec (`TASK_OUTPUTS`): every run that asks for the task gets them.
- `edits`, always run: it writes the edit pairs of instruction-edit repairs when some kept sample has them.
`exporters_for` says which run, in order.
"""

from collections.abc import Iterable

from synthloop.tools.backend import Registry
from synthloop.tools.export.base import Exporter
from synthloop.tools.types import ExportFormat, Task, TaskSpec

EXPORTERS: Registry[Exporter] = Registry("exporter", "synthloop.exporters", {
    "coco": "synthloop.tools.export.coco:CocoExporter",
    "yolo": "synthloop.tools.export.yolo:YoloExporter",
    "voc": "synthloop.tools.export.voc:VocExporter",
    "hf": "synthloop.tools.export.hf:HFExporter",
    "semantic": "synthloop.tools.export.semantic:SemanticExporter",
    "captions": "synthloop.tools.export.captions:CaptionsExporter",
    "refs": "synthloop.tools.export.refs:RefsExporter",
    "scene_graphs": "synthloop.tools.export.scene_graphs:SceneGraphExporter",
    "edits": "synthloop.tools.export.edits:EditPairsExporter",
})

# Task → the exporter that writes its own output (detection and instance masks live in the formats).
TASK_OUTPUTS: dict[Task, str] = {
    Task.semantic_segmentation: "semantic",
    Task.captioning: "captions",
    Task.referring_expressions: "refs",
    Task.scene_graph: "scene_graphs",
}


def exporters_for(spec: TaskSpec, formats: Iterable[ExportFormat | str] | None = None) -> list[str]:
    """Exporter names a run writes: coco, the other formats asked for (`formats`, else spec.formats) in
    enum order, then the task outputs of spec.tasks in enum order, then edits. An unknown format is a
    ValueError."""
    wanted = {ExportFormat(f) for f in (spec.formats if formats is None else formats)}
    names = [ExportFormat.coco.value, *(f.value for f in ExportFormat if f in wanted and f is not ExportFormat.coco)]
    return names + [TASK_OUTPUTS[t] for t in Task if t in spec.tasks and t in TASK_OUTPUTS] + ["edits"]
