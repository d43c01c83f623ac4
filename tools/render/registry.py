"""Renderers by name (config `renderer:`); other packages add theirs under the `synthloop.renderers` entry
point group."""

from synthloop.tools.backend import Registry
from synthloop.tools.render.base import Renderer

RENDERERS: Registry[Renderer] = Registry("renderer", "synthloop.renderers", {
    "compositor": "synthloop.tools.render.compositor:CompositorRenderer",
    "copy_paste": "synthloop.tools.render.copy_paste:CopyPasteRenderer",
    "diffusion": "synthloop.tools.render.diffusion.renderer:DiffusionRenderer",
})
