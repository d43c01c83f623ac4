"""Layout samplers by name (config `layout:`); other packages add theirs under the `synthloop.layouts` entry
point group."""

from synthloop.tools.backend import Registry
from synthloop.tools.layout.base import LayoutSampler

LAYOUTS: Registry[LayoutSampler] = Registry("layout", "synthloop.layouts", {
    "procedural": "synthloop.tools.layout.procedural:ProceduralLayoutSampler",
    "reference": "synthloop.tools.layout.reference:ReferenceLayoutSampler",
})
