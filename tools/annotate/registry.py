"""Annotators by name (config `annotator:`); other packages add theirs under the `synthloop.annotators` entry
point group."""

from synthloop.tools.annotate.base import Annotator
from synthloop.tools.backend import Registry

ANNOTATORS: Registry[Annotator] = Registry("annotator", "synthloop.annotators", {
    "exact": "synthloop.tools.annotate.exact:ExactAnnotator",
    "sam": "synthloop.tools.annotate.sam:SamAnnotator",
    "sam2": "synthloop.tools.annotate.sam2:Sam2Annotator",
    "detector": "synthloop.tools.annotate.detector:DetectorAnnotator",
})
