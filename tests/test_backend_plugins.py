"""Backends as plugins: config blocks, options, capabilities, registries, entry points, the execution seam."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from helpers_cli import synthloop
from PIL import Image, ImageDraw
from pydantic import BaseModel, ConfigDict, Field

from synthloop.agent.config import ConfigError, RunConfig, load_config
from synthloop.agent.errors import UserInputError
from synthloop.agent.runner import start_run
from synthloop.tools.backend import BackendBlock, BackendError, Capabilities, Registry
from synthloop.tools.render.base import BaseRenderer, RenderRequest, RenderResult
from synthloop.tools.render.registry import RENDERERS
from synthloop.tools.types import ObjectSpec, TaskSpec

SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=1, max_count=2)], n_images=6, width=64, height=64,
                seed=3)


class ToyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    colour: int = Field(default=200, ge=0, le=255, description="Grey level of the boxes.")


class ToyRenderer(BaseRenderer):
    """Grey boxes on black with an exact instance map: a whole renderer in a few lines."""

    id = "toy"
    Options = ToyOptions
    capabilities = Capabilities(exact_labels=True, provides_masks=True)

    def __init__(self, colour: int = 200) -> None:
        self.colour = colour

    def render(self, layout, spec, seed, *, prompt=""):  # type: ignore[no-untyped-def]
        image = Image.new("RGB", (layout.width, layout.height), (int(seed) % 40, 20, 30))
        labels = Image.new("I", (layout.width, layout.height), 0)
        for index in sorted(range(len(layout.objects)), key=lambda i: layout.objects[i].depth):
            box = layout.objects[index].box
            x0, y0, x1, y1 = (round(v * s) for v, s in zip(box, (layout.width, layout.height) * 2, strict=True))
            ImageDraw.Draw(image).rectangle([x0, y0, x1 - 1, y1 - 1], fill=(self.colour,) * 3)
            ImageDraw.Draw(labels).rectangle([x0, y0, x1 - 1, y1 - 1], fill=index + 1)
        instance_map = np.asarray(labels, dtype=np.int32)
        return RenderResult(image=np.asarray(image), instance_map=instance_map,
                            amodal_areas=[int((instance_map == i + 1).sum()) for i in range(len(layout.objects))],
                            backend={"renderer": self.id, "model": f"grey-{self.colour}"})


class MasklessRenderer(ToyRenderer):
    """Pixels only: like a diffusion model, it does not know its masks."""

    id = "maskless"
    capabilities = Capabilities()

    def render(self, layout, spec, seed, *, prompt=""):  # type: ignore[no-untyped-def]
        result = super().render(layout, spec, seed)
        result.instance_map = None
        return result


class BatchedRenderer(ToyRenderer):
    """Declares `batched`: it must get whole batches, from one thread at a time."""

    id = "batched"
    capabilities = Capabilities(exact_labels=True, provides_masks=True, batched=True)
    calls: ClassVar[list[tuple[int, str]]] = []
    active = 0
    overlap = False

    def render_batch(self, requests: Sequence[RenderRequest]) -> list[RenderResult]:
        cls = type(self)
        cls.active += 1
        cls.overlap = cls.overlap or cls.active > 1
        cls.calls.append((len(requests), threading.current_thread().name))
        try:
            return [self.render(r.layout, r.spec, r.seed) for r in requests]
        finally:
            cls.active -= 1


@pytest.fixture
def toy() -> Iterator[None]:
    """The toy renderers, registered the way a plugin's single registry entry does it."""
    for cls in (ToyRenderer, MasklessRenderer, BatchedRenderer):
        RENDERERS.register(cls.id, cls)
    yield
    for cls in (ToyRenderer, MasklessRenderer, BatchedRenderer):
        RENDERERS.unregister(cls.id)


def test_a_renderer_added_by_one_registry_entry_runs_the_whole_loop(tmp_path: Path, toy: None) -> None:
    config = RunConfig(renderer={"backend": "toy", "colour": 120}, workers=2, batch_size=4)
    summary = start_run(tmp_path / "out", config, spec=SPEC, auto_approve=True)
    assert summary.kept == SPEC.n_images
    manifest = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert {row["backend"]["model"] for row in manifest} == {"grey-120"}  # the option reached the constructor
    pixels = np.asarray(Image.open(tmp_path / "out" / manifest[0]["image_path"]))
    assert 120 in np.unique(pixels) and 200 not in np.unique(pixels)


def test_config_blocks_accept_names_and_blocks_and_serialise_back(toy: None) -> None:
    old_style = RunConfig.model_validate({"renderer": "compositor", "layout": "procedural", "annotator": "exact"})
    assert old_style.renderer == BackendBlock(backend="compositor")
    assert old_style.model_dump(mode="json")["renderer"] == "compositor"  # old run.json files stay as they were
    block = RunConfig.model_validate({"renderer": {"backend": "toy", "colour": 9}})
    dumped = block.model_dump(mode="json")["renderer"]
    assert dumped == {"backend": "toy", "colour": 9}
    assert RunConfig.model_validate({"renderer": dumped}).renderer == block.renderer


@pytest.mark.parametrize(("renderer", "needle"), [
    ({"backend": "compositor", "min_contrastt": 3}, "renderer 'compositor' has no option 'min_contrastt'"),
    ({"backend": "compositor", "min_contrast": 999}, "renderer 'compositor' option 'min_contrast'"),
    ({"backend": "dalle"}, "unknown renderer 'dalle' (available: compositor"),
    ({"min_contrast": 3}, "needs a 'backend' key"),
])
def test_a_bad_block_is_one_line_naming_backend_and_option(tmp_path: Path, renderer: dict, needle: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"renderer": renderer}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and needle in message and message.startswith("invalid config value 'renderer'")


def test_the_cli_refuses_a_bad_block_before_anything_runs(tmp_path: Path) -> None:
    spec_file, config = tmp_path / "spec.json", tmp_path / "config.yaml"
    spec_file.write_text(SPEC.model_dump_json())
    config.write_text("renderer:\n  backend: compositor\n  noise: maybe\n")
    out = tmp_path / "out"
    result = synthloop("run", str(spec_file), "--out", str(out), "--config", str(config))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "'compositor' option 'noise'" in lines[0]
    assert not out.exists()


def test_backends_that_do_not_fit_are_refused_at_start_up(tmp_path: Path, toy: None) -> None:
    with pytest.raises(UserInputError, match="annotator 'exact' reads exact instance maps, which renderer "
                                             "'maskless' does not provide"):
        start_run(tmp_path / "out", RunConfig(renderer="maskless"), spec=SPEC, auto_approve=True)
    assert not list((tmp_path / "out").glob("images/**/*.png"))


def test_a_batched_renderer_gets_whole_batches_from_one_thread_and_the_same_pixels(tmp_path: Path,
                                                                                    toy: None) -> None:
    BatchedRenderer.calls.clear()
    start_run(tmp_path / "batched", RunConfig(renderer="batched", workers=4, batch_size=6), spec=SPEC,
              auto_approve=True)
    assert BatchedRenderer.calls[0][0] == SPEC.n_images and not BatchedRenderer.overlap
    start_run(tmp_path / "single", RunConfig(renderer="toy", workers=4, batch_size=2), spec=SPEC, auto_approve=True)
    for path in sorted((tmp_path / "single" / "images").rglob("*.png")):
        twin = tmp_path / "batched" / path.relative_to(tmp_path / "single")
        assert twin.read_bytes() == path.read_bytes()


def test_options_are_derived_from_the_constructor_when_a_plugin_declares_none() -> None:
    class Plain(BaseRenderer):
        id = "plain"

        def __init__(self, size: int = 3, name: str = "x") -> None:
            self.size, self.name = size, name

    registry: Registry = Registry("renderer", "synthloop.test-none", {})
    registry.register("plain", Plain)
    assert registry.build({"backend": "plain", "size": 5}).size == 5
    with pytest.raises(BackendError, match="has no option 'colour' \\(its options: size, name\\)"):
        registry.build({"backend": "plain", "colour": 1})
    with pytest.raises(BackendError, match="option 'size'"):
        registry.build({"backend": "plain", "size": "big"})


def test_entry_points_of_other_packages_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "toy_plugin.py").write_text(
        "from synthloop.tools.render.compositor import CompositorRenderer\n\n"
        "class PluginRenderer(CompositorRenderer):\n    \"\"\"From another package.\"\"\"\n    id = 'plugin'\n")
    dist = tmp_path / "toy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[synthloop.renderers]\nplugin = toy_plugin:PluginRenderer\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry = Registry("renderer", "synthloop.renderers", {})
    assert "plugin" in registry.names()
    assert registry.build("plugin").id == "plugin"


def test_backends_command_lists_capabilities_options_and_installation() -> None:
    result = synthloop("backends", "--json")
    assert result.returncode == 0, result.stderr
    rows = {(r["tool"], r["name"]): r for r in json.loads(result.stdout)}
    compositor = rows[("renderer", "compositor")]
    assert compositor["installed"] and compositor["capabilities"] == {"exact_labels": True, "provides_masks": True}
    assert compositor["options"]["min_contrast"]["default"] == 70.0
    assert compositor["options"]["min_contrast"]["description"]
    assert rows[("annotator", "exact")]["capabilities"]["needs_instance_map"] is True
    assert rows[("judge", "rules.class_balance")]["capabilities"] == {"stateful": True}
    assert {"layout", "renderer", "annotator", "judge", "exporter"} <= {tool for tool, _ in rows}
