"""The diffusion renderer under the renderer contract, every control mode, with tiny random models.

Models are built offline (tests/diffusion_tiny.py), saved in diffusers' folder format and loaded through
`from_pretrained` like a hub id. Layouts are 60×44 (not a multiple of 8: rendered at 64×48, resized back).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import diffusion_tiny

from synthloop.tools.backend import Capabilities
from synthloop.tools.layout.procedural import ProceduralLayoutSampler
from synthloop.tools.render.base import Renderer, RenderRequest
from synthloop.tools.render.compositor import CompositorRenderer
from synthloop.tools.render.diffusion.model_files import folder_hash
from synthloop.tools.render.diffusion.options import DiffusionError
from synthloop.tools.render.diffusion.renderer import DiffusionRenderer, render_size
from synthloop.tools.render.registry import RENDERERS
from synthloop.tools.types import Difficulty, ObjectSpec, TaskSpec

SPEC = TaskSpec(objects=[ObjectSpec(name="cup", attributes=["red"], min_count=1, max_count=2),
                         ObjectSpec(name="plate", min_count=0, max_count=1)],
                width=60, height=44, scene="kitchen table", n_images=4)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("diffusion-models")
    return {"sd": diffusion_tiny.tiny_sd(root / "sd"), "inpaint": diffusion_tiny.tiny_inpaint(root / "inpaint"),
            "gligen": diffusion_tiny.tiny_gligen(root / "gligen"),
            "controlnet": diffusion_tiny.tiny_controlnet(root / "tiny-controlnet-seg")}


def _options(models: dict[str, Path], mode: str, **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"model": str(models["sd"]), "control": mode, "steps": 2, "batch_size": 2,
                               "composite": "compositor"}
    if mode == "inpaint":
        options["model"] = str(models["inpaint"])
    elif mode == "gligen":
        options["model"] = str(models["gligen"])
    elif mode == "controlnet":
        options["controlnet"] = str(models["controlnet"])
    if mode not in ("refine", "controlnet"):
        options.pop("composite")
    return {**options, **extra}


def _requests(spec: TaskSpec = SPEC) -> list[RenderRequest]:
    sampler = ProceduralLayoutSampler()
    first, second = sampler.sample(spec, 1), sampler.sample(spec, 2)
    return [RenderRequest(first, spec, 11), RenderRequest(second, spec, 12), RenderRequest(first, spec, 13)]


def test_registered_with_its_capabilities_and_documented_options() -> None:
    assert RENDERERS.resolve("diffusion") is DiffusionRenderer
    caps = RENDERERS.capabilities("diffusion")
    assert (caps.text_conditioned, caps.batched, caps.uses_references, caps.device) == (True, True, True, "auto")
    assert not caps.provides_masks, "only refine mode knows its masks"
    row = next(info for info in RENDERERS.describe() if info.name == "diffusion")
    assert {"model", "control", "steps", "guidance", "dtype", "batch_size"} <= set(row.options)
    assert all(option["description"] for option in row.options.values()), "every option is documented"
    assert row.options["model"]["required"]


@pytest.mark.parametrize("mode", ["none", "inpaint", "controlnet", "refine", "gligen"])
def test_mode_keeps_the_renderer_contract(models: dict[str, Path], mode: str) -> None:
    renderer = DiffusionRenderer(**_options(models, mode))
    assert isinstance(renderer, Renderer)
    requests = _requests()
    batch = renderer.render_batch(requests)  # three requests at batch size 2: one full call, one padded call
    assert len(batch) == 3
    for result in batch:
        assert result.image.shape == (SPEC.height, SPEC.width, 3) and result.image.dtype == np.uint8
        assert result.image.std() > 0, "a real image, not a flat fill"
    alone = DiffusionRenderer(**_options(models, mode)).render_batch([requests[1]])[0]
    assert alone.image.tobytes() == batch[1].image.tobytes(), "a sample's pixels must not depend on its batch"
    assert not np.array_equal(batch[0].image, batch[2].image), "same layout, different seeds must differ"

    model = Path(_options(models, mode)["model"])
    backend = batch[0].backend
    assert backend["renderer"] == "diffusion" and backend["mode"] == mode
    assert backend["model"] == str(model) and backend["revision"] == f"sha256:{folder_hash(model.resolve())}"
    info = batch[0].info["diffusion"]
    assert (info["steps"], info["guidance"], info["seed"], info["size"]) == (2, 7.5, 11, [64, 48])
    if mode == "refine":
        composite = CompositorRenderer().render(requests[0].layout, SPEC, requests[0].seed)
        assert renderer.capabilities.provides_masks
        assert np.array_equal(batch[0].instance_map, composite.instance_map), "refine passes the composite's map"
        assert batch[0].amodal_areas == composite.amodal_areas and info["strength"] == 0.5
        assert backend["composite"] == "compositor"
    else:
        assert batch[0].instance_map is None and not renderer.capabilities.provides_masks
    if mode == "controlnet":
        assert info["control_map"] == "segmentation" and info["ade20k_classes"] == {"cup": "glass", "plate": "plate"}
        assert backend["controlnet"] == str(models["controlnet"])
        assert backend["controlnet_revision"].startswith("sha256:")


def test_same_seed_same_image_at_any_batch_size(models: dict[str, Path]) -> None:
    """Within one batch_size every composition and order gives the same bytes; across batch_size options
    (other tensor shapes, so other float kernels) a sample may move by at most one level in a few pixels."""
    requests = _requests()
    at_four = DiffusionRenderer(**_options(models, "none", batch_size=4))
    together = at_four.render_batch(requests)
    reordered = at_four.render_batch([requests[2], requests[0]])
    assert reordered[0].image.tobytes() == together[2].image.tobytes()
    assert reordered[1].image.tobytes() == together[0].image.tobytes()
    one_at_a_time = DiffusionRenderer(**_options(models, "none", batch_size=1)).render_batch(requests)
    for a, b in zip(together, one_at_a_time, strict=True):
        assert int(np.abs(a.image.astype(int) - b.image.astype(int)).max()) <= 1


def test_difficulty_changes_prompt_and_refine_strength(models: dict[str, Path]) -> None:
    renderer = DiffusionRenderer(**_options(models, "refine"))
    layout = ProceduralLayoutSampler().sample(SPEC, 1)
    easy, hard = renderer.render_batch([
        RenderRequest(layout, SPEC.model_copy(update={"difficulty": Difficulty.easy}), 5),
        RenderRequest(layout, SPEC.model_copy(update={"difficulty": Difficulty.hard}), 5)])
    assert "clearly visible" in easy.prompt and "partially occluded" in hard.prompt
    assert easy.info["diffusion"]["strength"] == pytest.approx(0.4)
    assert hard.info["diffusion"]["strength"] == pytest.approx(0.65)
    assert not np.array_equal(easy.image, hard.image)


def test_prompt_given_by_the_loop_is_used(models: dict[str, Path]) -> None:
    renderer = DiffusionRenderer(**_options(models, "none", difficulty=False))
    layout = ProceduralLayoutSampler().sample(SPEC, 1)
    given, built = renderer.render_batch([RenderRequest(layout, SPEC, 3, prompt="two red cups on oak"),
                                          RenderRequest(layout, SPEC, 3)])
    assert given.prompt == "two red cups on oak"
    assert built.prompt.startswith("a photo of kitchen table with") and "red cup" in built.prompt
    assert not np.array_equal(given.image, built.image), "the prompt must reach the model"


def test_seed_policy_derived_changes_the_noise(models: dict[str, Path]) -> None:
    request = _requests()[0]
    plain = DiffusionRenderer(**_options(models, "none")).render(request.layout, SPEC, request.seed)
    derived = DiffusionRenderer(**_options(models, "none", seed_policy="derived")).render(
        request.layout, SPEC, request.seed)
    assert plain.info["diffusion"]["seed"] == request.seed != derived.info["diffusion"]["seed"]
    assert not np.array_equal(plain.image, derived.image)


def test_sdxl_in_bfloat16_through_the_same_path(tmp_path: Path) -> None:
    """An SDXL pipeline (two text encoders, added time conditioning) loads by folder like a hub id; bfloat16
    runs on the CPU, and batches stay invariant."""
    model = diffusion_tiny.tiny_sdxl(tmp_path / "sdxl")
    renderer = DiffusionRenderer(model=str(model), steps=2, guidance=0.0, dtype="bfloat16", batch_size=2)
    requests = _requests()
    batch = renderer.render_batch(requests)
    assert type(renderer.pipeline().pipe).__name__ == "StableDiffusionXLPipeline"
    assert batch[0].image.shape == (SPEC.height, SPEC.width, 3) and batch[0].info["diffusion"]["dtype"] == "bfloat16"
    alone = DiffusionRenderer(model=str(model), steps=2, guidance=0.0, dtype="bfloat16",
                              batch_size=2).render_batch([requests[2]])[0]
    assert alone.image.tobytes() == batch[2].image.tobytes()


def test_gligen_grounds_every_box(models: dict[str, Path]) -> None:
    result = DiffusionRenderer(**_options(models, "gligen")).render_batch(_requests()[:1])[0]
    assert "ungrounded" not in result.info["diffusion"]


def test_gligen_missing_from_diffusers_is_one_clear_error(models: dict[str, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import diffusers

    from synthloop.tools.render.diffusion import loading

    monkeypatch.setattr(diffusers, "StableDiffusionGLIGENPipeline", None)
    loading.clear_cache()
    with pytest.raises(DiffusionError, match="no longer has"):
        DiffusionRenderer(**_options(models, "gligen")).render_batch(_requests()[:1])


@pytest.mark.parametrize(("options", "message"), [
    ({"model": "/no/such/folder"}, "does not exist"),
    ({"model": "m", "control": "controlnet"}, "needs the `controlnet` option"),
    ({"model": "m", "references": "/tmp"}, "needs `ip_adapter`"),
    ({"model": "m", "dtype": "float16", "device": "cpu"}, "float16 needs a GPU"),
    ({"model": "m", "steps": 0}, "steps"),
    ({"model": "m", "scheduler": "NotAScheduler!"}, "scheduler"),
    ({"model": "m", "mode": "none"}, "mode"),
])
def test_bad_options_are_one_clear_error(options: dict[str, Any], message: str) -> None:
    with pytest.raises(DiffusionError, match=message) as caught:
        DiffusionRenderer(**options)
    assert "\n" not in str(caught.value)


def test_a_model_too_large_for_the_cpu_is_refused_before_loading(models: dict[str, Path]) -> None:
    renderer = DiffusionRenderer(**_options(models, "none", cpu_max_params=1000))
    with pytest.raises(DiffusionError, match="too large for the CPU"):
        renderer.render_batch(_requests()[:1])


def test_a_folder_that_is_not_a_pipeline_is_refused(tmp_path: Path) -> None:
    renderer = DiffusionRenderer(model=str(tmp_path))
    with pytest.raises(DiffusionError, match=r"no model_index\.json"):
        renderer.render_batch(_requests()[:1])


def test_negative_seed_is_refused(models: dict[str, Path]) -> None:
    request = _requests()[0]
    with pytest.raises(DiffusionError, match="seed"):
        DiffusionRenderer(**_options(models, "none")).render_batch([RenderRequest(request.layout, SPEC, -1)])


@pytest.mark.parametrize(("size", "min_side", "expected"), [
    ((60, 44), 0, (64, 48)), ((64, 48), 0, (64, 48)), ((300, 200), 512, (768, 512)), ((512, 512), 256, (512, 512)),
])
def test_render_size(size: tuple[int, int], min_side: int, expected: tuple[int, int]) -> None:
    assert render_size(*size, min_side, 8) == expected


def test_refine_capability_is_per_instance() -> None:
    assert DiffusionRenderer(model="m", control="refine").capabilities.provides_masks
    assert DiffusionRenderer.capabilities == Capabilities(text_conditioned=True, uses_references=True, batched=True,
                                                         device="auto")
