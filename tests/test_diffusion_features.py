"""Diffusion renderer features beyond the modes: IP-Adapter references, instruction edits, output checks with
retries, out-of-memory halving, control maps, model files (parameter counts, hashes)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import diffusion_tiny
from PIL import Image

from synthloop.tools.layout.procedural import ProceduralLayoutSampler
from synthloop.tools.render.base import RenderRequest
from synthloop.tools.render.compositor import CompositorRenderer
from synthloop.tools.render.diffusion.ade20k import CLASSES, PALETTE, ade_class
from synthloop.tools.render.diffusion.checks import output_defect
from synthloop.tools.render.diffusion.control_maps import (
    canny_map,
    depth_map,
    map_kind,
    segmentation_map,
)
from synthloop.tools.render.diffusion.edit import edit_image
from synthloop.tools.render.diffusion.model_files import folder_hash, parameter_count
from synthloop.tools.render.diffusion.options import DiffusionError
from synthloop.tools.render.diffusion.renderer import DiffusionRenderer
from synthloop.tools.seeding import derive_seed
from synthloop.tools.types import Layout, LayoutObject, ObjectSpec, TaskSpec

SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=1, max_count=2), ObjectSpec(name="plate", max_count=1)],
                width=64, height=48, scene="kitchen table")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("diffusion-models")
    return {"sd": diffusion_tiny.tiny_sd(root / "sd"), "ip": diffusion_tiny.tiny_ip_adapter(root / "ip"),
            "pix2pix": diffusion_tiny.tiny_pix2pix(root / "pix2pix")}


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run-wide style image and two cup references (a class subfolder)."""
    root = tmp_path_factory.mktemp("references")
    rng = np.random.default_rng(0)
    (root / "cup").mkdir()
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / "style.png")
    for k in range(2):
        Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(root / "cup" / f"cup{k}.png")
    return root


def _requests(n: int = 2) -> list[RenderRequest]:
    sampler = ProceduralLayoutSampler()
    return [RenderRequest(sampler.sample(SPEC, k), SPEC, 20 + k) for k in range(n)]


def _renderer(models: dict[str, Path], **extra: Any) -> DiffusionRenderer:
    return DiffusionRenderer(**{"model": str(models["sd"]), "steps": 2, "batch_size": 2, **extra})


# -- IP-Adapter references ------------------------------------------------------------------------------

def test_references_steer_the_image_per_sample(models: dict[str, Path], references: Path) -> None:
    ip = {"ip_adapter": str(models["ip"]), "ip_adapter_weight": "ip_adapter.safetensors", "references": str(references)}
    requests = _requests(3)
    steered = _renderer(models, **ip, ip_adapter_scale=1.0).render_batch(requests)
    plain = _renderer(models).render_batch(requests)
    for a, b in zip(steered, plain, strict=True):
        assert not np.array_equal(a.image, b.image), "references must change the image"
    chosen = steered[0].info["diffusion"]["references"]
    assert chosen["*"] == "style.png" and chosen["cup"] in ("cup/cup0.png", "cup/cup1.png")
    assert steered[0].backend["ip_adapter"] == str(models["ip"])
    alone = _renderer(models, **ip, ip_adapter_scale=1.0).render_batch([requests[1]])[0]
    assert alone.image.tobytes() == steered[1].image.tobytes(), "references are per sample, not per batch"
    # Scale 0 switches the adapter off inside the attention: exactly the plain image again.
    off = _renderer(models, **ip, ip_adapter_scale=0.0).render_batch([requests[0]])[0]
    assert off.image.tobytes() == plain[0].image.tobytes()


def test_reference_folder_naming_no_class_is_an_error(models: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "mug").mkdir()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / "mug" / "a.png")
    renderer = _renderer(models, ip_adapter=str(models["ip"]), ip_adapter_weight="ip_adapter.safetensors",
                         references=str(tmp_path))
    with pytest.raises(DiffusionError, match="'mug' names no class"):
        renderer.render_batch(_requests(1))


# -- instruction edits ----------------------------------------------------------------------------------

def test_edit_image_is_deterministic_and_keeps_the_size(models: dict[str, Path]) -> None:
    source = CompositorRenderer().render(ProceduralLayoutSampler().sample(SPEC, 3), SPEC, 3).image[:38, :50]
    model = str(models["pix2pix"])
    first = edit_image(source, "make the cup red", 7, model=model, steps=2)
    assert first.shape == source.shape and first.dtype == np.uint8
    assert first.tobytes() == edit_image(source, "make the cup red", 7, model=model, steps=2).tobytes()
    assert not np.array_equal(first, edit_image(source, "make the cup red", 8, model=model, steps=2))
    assert not np.array_equal(first, edit_image(source, "remove the plate", 7, model=model, steps=2))
    with pytest.raises(DiffusionError, match="non-empty instruction"):
        edit_image(source, "  ", 7, model=model, steps=2)


def test_renderer_edits_with_its_edit_model(models: dict[str, Path]) -> None:
    image = np.full((40, 40, 3), 120, dtype=np.uint8)
    with pytest.raises(DiffusionError, match="no edit_model"):
        _renderer(models).edit_image(image, "add a cup", 1)
    edited = _renderer(models, edit_model=str(models["pix2pix"])).edit_image(image, "add a cup", 1)
    assert edited.shape == image.shape and not np.array_equal(edited, image)


# -- output checks, retries, out-of-memory ---------------------------------------------------------------

@pytest.mark.parametrize(("image", "flagged", "defect"), [
    (np.full((4, 4, 3), np.nan, dtype=np.float32), False, "nan"),
    (np.zeros((4, 4, 3), dtype=np.float32), True, "safety"),
    (np.full((4, 4, 3), 1 / 255, dtype=np.float32), False, "black"),
    (np.full((4, 4, 3), 0.5, dtype=np.float32), False, "flat"),
    (np.linspace(0, 1, 48, dtype=np.float32).reshape(4, 4, 3), False, None),
])
def test_output_defects(image: np.ndarray, flagged: bool, defect: str | None) -> None:
    assert output_defect(image, flagged) == defect


def test_nan_output_is_rendered_again_with_a_derived_seed(models: dict[str, Path]) -> None:
    renderer = _renderer(models)
    decoder = renderer.pipeline().pipe.vae.decoder
    calls = {"n": 0}

    def poison_first_sample_once(module: Any, args: Any, output: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            output = output.clone()
            output[0] = float("nan")
        return output

    handle = decoder.register_forward_hook(poison_first_sample_once)
    try:
        first, second = renderer.render_batch(_requests(2))
    finally:
        handle.remove()
    retried = derive_seed(20, "retry", 1)
    assert first.info["diffusion"]["retries"] == [{"stage": "text2image", "seed": 20, "defect": "nan"}]
    assert first.info["diffusion"]["retry_seeds"] == {"text2image": retried}
    assert "retries" not in second.info["diffusion"] and "defect" not in first.info["diffusion"]
    request = _requests(1)[0]
    again = _renderer(models).render_batch([RenderRequest(request.layout, SPEC, retried)])[0]
    assert first.image.tobytes() == again.image.tobytes(), "the retry is the render of the derived seed"


def _simulate_gpu(unet: Any, max_batch: int) -> Any:
    """A forward pre-hook that raises CUDA out-of-memory for UNet batches above `max_batch`."""
    import torch

    def check(module: Any, args: Any, kwargs: Any) -> None:
        if args[0].shape[0] > max_batch:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    return unet.register_forward_pre_hook(check, with_kwargs=True)


def test_out_of_memory_halves_the_batch_and_goes_on(models: dict[str, Path],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    renderer = _renderer(models, batch_size=4, guidance=1.0)  # no guidance: the UNet batch is the sample batch
    handle = _simulate_gpu(renderer.pipeline().pipe.unet, max_batch=2)
    try:
        with caplog.at_level(logging.WARNING):
            results = renderer.render_batch(_requests(3))
    finally:
        handle.remove()
    assert "going on with batch 2" in caplog.text
    assert [r.info["diffusion"]["batch_size"] for r in results] == [2, 2, 2]
    at_two = _renderer(models, batch_size=2, guidance=1.0).render_batch(_requests(3))
    assert [r.image.tobytes() for r in results] == [r.image.tobytes() for r in at_two]


def test_out_of_memory_at_batch_one_is_one_clear_error(models: dict[str, Path]) -> None:
    renderer = _renderer(models, batch_size=1, guidance=1.0)
    handle = _simulate_gpu(renderer.pipeline().pipe.unet, max_batch=0)
    try:
        with pytest.raises(DiffusionError, match="out of GPU memory at batch size 1"):
            renderer.render_batch(_requests(1))
    finally:
        handle.remove()


# -- control maps ---------------------------------------------------------------------------------------

def _two_object_layout() -> tuple[Layout, np.ndarray]:
    layout = Layout(width=32, height=32, seed=0, objects=[
        LayoutObject(category="cup", box=(0.0, 0.0, 0.5, 0.5), depth=0),
        LayoutObject(category="plate", box=(0.25, 0.25, 1.0, 1.0), depth=1)])
    instance_map = np.zeros((32, 32), dtype=np.int32)
    instance_map[0:16, 0:16] = 1
    instance_map[8:32, 8:32] = 2  # the plate is in front
    return layout, instance_map


def test_segmentation_map_colours_visible_shapes_in_the_ade20k_palette() -> None:
    layout, instance_map = _two_object_layout()
    seg, names = segmentation_map(layout, instance_map, SPEC)
    assert names == {"cup": "glass", "plate": "plate"}
    assert tuple(seg[0, 0]) == PALETTE[CLASSES.index("glass")]
    assert tuple(seg[31, 31]) == PALETTE[CLASSES.index("plate")]
    assert tuple(seg[31, 0]) == PALETTE[CLASSES.index("table")], "the scene 'kitchen table' is the ground"
    _, unknown = segmentation_map(layout, instance_map, SPEC.model_copy(update={
        "objects": [ObjectSpec(name="cup"), ObjectSpec(name="zorblax")]}))
    assert unknown["zorblax"].endswith("?"), "an unmatched class is marked, not silently guessed"


def test_depth_map_puts_nearer_objects_brighter_and_canny_finds_edges() -> None:
    layout, instance_map = _two_object_layout()
    depth = depth_map(layout, instance_map)
    assert depth[31, 31, 0] > depth[0, 0, 0] > depth[0, 31, 0], "plate (depth 1) > cup > background"
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[8:24, 8:24] = 255
    edges = canny_map(image)
    assert edges.shape == (32, 32, 3) and set(np.unique(edges)) == {0, 255} and edges[0, 0, 0] == 0


def test_control_map_kind_from_the_controlnet_name() -> None:
    assert map_kind("auto", "lllyasviel/sd-controlnet-seg") == "segmentation"
    assert map_kind("auto", "diffusers/controlnet-canny-sdxl-1.0") == "canny"
    assert map_kind("depth", "whatever") == "depth"
    with pytest.raises(DiffusionError, match="set control_map"):
        map_kind("auto", "some/controlnet")
    assert ade_class("dining table") == CLASSES.index("table") and ade_class("forks") is None


# -- model files ----------------------------------------------------------------------------------------

def test_parameter_count_reads_the_weight_headers(models: dict[str, Path]) -> None:
    pipe = _renderer(models).pipeline().pipe
    loaded = sum(p.numel() for name in ("unet", "vae", "text_encoder") for p in getattr(pipe, name).parameters())
    assert parameter_count(models["sd"]) == loaded


def test_folder_hash_follows_the_content(models: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(models["sd"], copy)
    assert folder_hash(copy) == folder_hash(models["sd"])
    config = copy / "scheduler" / "scheduler_config.json"
    config.write_text(config.read_text().replace('"steps_offset": 1', '"steps_offset": 0'))
    assert folder_hash(copy) != folder_hash(models["sd"])
