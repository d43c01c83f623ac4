"""Dataset exporters by format name (`formats:` in the spec); other packages add theirs under the
`synthloop.exporters` entry point group."""

from synthloop.tools.backend import Registry
from synthloop.tools.export.base import Exporter

EXPORTERS: Registry[Exporter] = Registry("exporter", "synthloop.exporters", {
    "coco": "synthloop.tools.export.coco:CocoExporter",
    "yolo": "synthloop.tools.export.yolo:YoloExporter",
    "hf": "synthloop.tools.export.hf:HFExporter",
})
