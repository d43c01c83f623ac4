"""The copy_paste renderer on a tiny generated asset folder (always runs): the renderer contract, exact visible
masks, hidden objects, determinism, style words, difficulty, and a real loop run scored by pycocotools."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from assetdata import BLUE, RED, make_assets
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from synthloop.agent.config import RunConfig
from synthloop.agent.runner import start_run
from synthloop.tools.annotate.exact import ExactAnnotator
from synthloop.tools.assets.types import AssetError
from synthloop.tools.export.validate import validate_dataset
from synthloop.tools.layout.procedural import ProceduralLayoutSampler
from synthloop.tools.render.base import RenderRequest
from synthloop.tools.render.copy_paste import CopyPasteRenderer
from synthloop.tools.render.copy_paste_style import unsupported_style_terms
from synthloop.tools.render.registry import RENDERERS
from synthloop.tools.types import Layout, LayoutObject, TaskSpec

GREEN = (30, 200, 40)


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("assets")
    return make_assets(root, {"cup": [("ellipse", RED), ("square", RED), ("tri", RED)],
                              "plate": [("square", BLUE), ("ellipse", BLUE)]})


@pytest.fixture(scope="module")
def green_backgrounds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("backgrounds")
    Image.new("RGB", (300, 300), GREEN).save(root / "green.png")
    return root


def _spec(**fields) -> TaskSpec:
    return TaskSpec.model_validate({"objects": [{"name": "cup", "min_count": 1, "max_count": 3},
                                                {"name": "plate", "min_count": 0, "max_count": 2}],
                                    "width": 160, "height": 120, "scene": "kitchen table", **fields})


def _renderer(tmp_path: Path, assets: Path, **options) -> CopyPasteRenderer:
    return CopyPasteRenderer(assets_dir=str(assets), sources=["user"], cache_dir=str(tmp_path / "cache"), **options)


def _plain(tmp_path: Path, assets: Path, backgrounds: Path) -> CopyPasteRenderer:
    """Hard edges, no shadow, no distractors, no recolouring, a pure green background."""
    return _renderer(tmp_path, assets, backgrounds_dir=str(backgrounds), feather=0.0, shadow=0.0, blending="alpha",
                     hue_shift=0.0, max_rotation=0.0)


def test_registered_with_capabilities_and_options() -> None:
    assert RENDERERS.capabilities("copy_paste").exact_labels and RENDERERS.capabilities("copy_paste").provides_masks
    with pytest.raises(ValueError, match="no option 'blend'"):
        RENDERERS.options("copy_paste", {"blend": "x"})
    assert RENDERERS.options("copy_paste", {"blending": "poisson"}).blending == "poisson"


def test_contract_sizes_and_provenance(tmp_path: Path, assets: Path) -> None:
    spec = _spec()
    renderer = _renderer(tmp_path, assets)
    layout = ProceduralLayoutSampler().sample(spec, 3)
    result = renderer.render(layout, spec, 5)
    assert result.image.shape == (120, 160, 3) and result.image.dtype == np.uint8
    assert result.instance_map.shape == (120, 160) and len(result.amodal_areas) == len(layout.objects)
    assert result.backend["renderer"] == "copy_paste"
    objects = result.info["objects"]
    assert [o["source"] for o in objects] == ["user"] * len(layout.objects)
    assert all(o["asset"].startswith(f"user:{obj.category}/") for o, obj in zip(objects, layout.objects, strict=True))
    assert all(o["licence"] == "user-provided" for o in objects)
    assert 0.0 <= result.info["difficulty_score"] <= 1.0
    assert all(0.0 <= o["difficulty"]["score"] <= 1.0 for o in objects)


def test_same_request_same_bytes_whatever_the_batch(tmp_path: Path, assets: Path) -> None:
    spec = _spec(difficulty="hard")
    layouts = [ProceduralLayoutSampler().sample(spec, s) for s in range(4)]
    requests = [RenderRequest(layout, spec, 10 + i) for i, layout in enumerate(layouts)]
    first = _renderer(tmp_path, assets).render_batch(requests)
    second = _renderer(tmp_path, assets).render_batch(list(reversed(requests)))[::-1]
    for a, b in zip(first, second, strict=True):
        assert a.image.tobytes() == b.image.tobytes()
        assert np.array_equal(a.instance_map, b.instance_map) and a.info == b.info
    assert first[0].image.tobytes() != first[1].image.tobytes()


def test_instance_map_is_exactly_the_pixels_objects_painted(tmp_path: Path, assets: Path,
                                                            green_backgrounds: Path) -> None:
    """Red and blue cut-outs on a green background: a labelled pixel shows mostly its object's colour, an
    unlabelled one mostly green; only pixels within two pixels of an edge (alpha near one half after the
    cut-out is resampled to its box) may go either way."""
    import cv2

    spec = _spec(difficulty="easy")
    renderer = _plain(tmp_path, assets, green_backgrounds)
    kernel = np.ones((5, 5), np.uint8)
    for seed in (0, 1, 2, 26):
        layout = ProceduralLayoutSampler().sample(spec, seed)
        result = renderer.render(layout, spec, seed)
        image = result.image.astype(float)
        labelled = (result.instance_map > 0).astype(np.uint8)
        assert labelled.any()
        edge = (cv2.dilate(labelled, kernel) - cv2.erode(labelled, kernel)).astype(bool)
        to_green = np.linalg.norm(image - GREEN, axis=2)
        for index, obj in enumerate(layout.objects):
            mine = result.instance_map == index + 1
            colour = RED if obj.category == "cup" else BLUE
            looks_mine = np.linalg.norm(image - colour, axis=2) < to_green
            assert looks_mine[mine & ~edge].all()
            assert not looks_mine[(result.instance_map == 0) & ~edge].any()
        assert (to_green[~labelled.astype(bool) & ~edge] < 60).all()


def test_a_fully_hidden_object_has_area_zero(tmp_path: Path, assets: Path, green_backgrounds: Path) -> None:
    spec = _spec(difficulty="easy")
    layout = Layout(width=160, height=120, seed=1, objects=[
        LayoutObject(category="cup", box=(0.45, 0.45, 0.55, 0.55), depth=0),
        LayoutObject(category="plate", box=(0.1, 0.1, 0.9, 0.9), depth=1),
    ])
    renderer = _plain(tmp_path, assets, green_backgrounds)
    for seed in range(4):
        result = renderer.render(layout, spec, seed)
        if (result.instance_map == 1).any():
            continue  # the front plate was a triangle or ellipse that left the cup in view
        annotation = ExactAnnotator().annotate(layout, result, spec)
        hidden = annotation.instances[0]
        assert result.amodal_areas[0] > 0 and hidden.area == 0 and hidden.visible_fraction == 0.0
        return
    pytest.fail("no seed hid the back object behind the square plate")


def test_truncated_objects_keep_only_their_visible_part(tmp_path: Path, assets: Path) -> None:
    spec = _spec(difficulty="hard")
    renderer = _renderer(tmp_path, assets, max_rotation=0.0)
    layout = Layout(width=160, height=120, seed=2, objects=[LayoutObject(category="cup", box=(0.0, 0.3, 0.3, 0.7))])
    fractions = []
    for seed in range(30):
        result = renderer.render(layout, spec, seed)
        visible = int((result.instance_map == 1).sum())
        assert visible <= result.amodal_areas[0]
        fractions.append(visible / result.amodal_areas[0])
    assert min(fractions) < 0.95  # some renders pushed the cup across the left border
    assert min(fractions) > 0.5  # never more than a third of it


def test_style_words_change_the_image_or_are_named(tmp_path: Path, assets: Path) -> None:
    layout = ProceduralLayoutSampler().sample(_spec(), 1)
    renderer = _renderer(tmp_path, assets)
    day = renderer.render(layout, _spec(style="daylight"), 4)
    night = renderer.render(layout, _spec(style="night"), 4)
    assert night.image.mean() < 0.75 * day.image.mean()
    assert np.array_equal(day.instance_map, night.instance_map)
    assert night.info["style_effects"] == ["night"]
    spec = _spec(style="night, watercolor painting, heavy rain, fisheye lens")
    assert unsupported_style_terms(spec) == ["watercolor painting", "fisheye lens"]
    assert renderer.render(layout, spec, 4).info["unsupported_style_terms"] == ["watercolor painting",
                                                                                "fisheye lens"]


def test_harder_specs_measure_harder(tmp_path: Path, assets: Path) -> None:
    renderer = _renderer(tmp_path, assets)
    means = {}
    for difficulty in ("easy", "hard"):
        spec = _spec(difficulty=difficulty)
        scores = [renderer.render(ProceduralLayoutSampler().sample(spec, s), spec, s).info["difficulty_score"]
                  for s in range(8)]
        means[difficulty] = float(np.mean(scores))
    assert means["hard"] > means["easy"] + 0.05


def test_classes_without_cutouts_fall_back_to_procedural_shapes(tmp_path: Path, assets: Path) -> None:
    spec = TaskSpec.model_validate({"objects": [{"name": "crack", "min_count": 1, "max_count": 2}],
                                    "width": 96, "height": 96})
    result = _renderer(tmp_path, assets).render(ProceduralLayoutSampler().sample(spec, 0), spec, 0)
    assert {o["source"] for o in result.info["objects"]} == {"procedural"}
    assert (result.instance_map > 0).any()


def test_a_bad_assets_folder_fails_when_the_renderer_is_built(tmp_path: Path) -> None:
    bad = tmp_path / "bad" / "cup"
    bad.mkdir(parents=True)
    Image.new("RGB", (20, 20)).save(bad / "opaque.png")
    with pytest.raises(AssetError, match=r"opaque\.png: has no transparency"):
        RENDERERS.build({"backend": "copy_paste", "assets_dir": str(tmp_path / "bad"), "sources": ["user"]})


def test_loop_run_scores_ap_one_as_its_own_predictions(tmp_path: Path, assets: Path) -> None:
    spec = _spec(n_images=10, difficulty="hard", seed=4, tasks=["detection", "instance_segmentation"],
                 formats=["coco"])
    config = RunConfig(batch_size=4, renderer={"backend": "copy_paste", "assets_dir": str(assets),
                                               "sources": ["user"], "cache_dir": str(tmp_path / "cache")})
    out = tmp_path / "run"
    summary = start_run(out, config, spec=spec, auto_approve=True)
    assert summary.kept == 10
    assert validate_dataset(out) == []
    evaluated = 0
    for path in sorted((out / "annotations").glob("instances_*.json")):
        gt = COCO(str(path))
        if not gt.getAnnIds():
            continue
        for iou_type in ("bbox", "segm"):
            with contextlib.redirect_stdout(io.StringIO()):
                evaluator = COCOeval(gt, gt.loadRes([{**a, "score": 1.0} for a in gt.loadAnns(gt.getAnnIds())]),
                                     iou_type)
                evaluator.evaluate()
                evaluator.accumulate()
                evaluator.summarize()
            assert evaluator.stats[0] == pytest.approx(1.0), (path.name, iou_type)
            evaluated += 1
    assert evaluated >= 2
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert all(row["render_info"]["objects"] and row["backend"]["renderer"] == "copy_paste" for row in manifest)


def test_coverage_lists_the_cutouts_it_renders_with(tmp_path: Path, assets: Path) -> None:
    spec = TaskSpec.model_validate({"objects": [{"name": "cup"}, {"name": "plate"}, {"name": "crack"}],
                                    "width": 128, "height": 96})
    renderer = _renderer(tmp_path, assets)
    report = renderer.coverage(spec)
    assert report["cup"].message.startswith("cup: 3 photos (your assets)")
    assert report["crack"].message.startswith("crack: no real examples, procedural shapes")
    used = {o["asset"] for s in range(6)
            for o in renderer.render(ProceduralLayoutSampler().sample(spec, s), spec, s).info["objects"]}
    assert used - {"procedural"} <= set(report["cup"].asset_ids) | set(report["plate"].asset_ids)
    assert "procedural" in used


def test_a_thin_cutout_takes_its_boxs_area_with_its_own_shape(tmp_path: Path, green_backgrounds: Path) -> None:
    """A 6:1 cut-out in a square box: by default it keeps the box's area (so a fork in a square box is not a
    sliver a sixth of the box) with its own aspect, centred on the box and inside the image; with
    box_fit='inside' it stays inside the box."""
    from assetdata import cutout

    folder = tmp_path / "thin" / "fork"
    folder.mkdir(parents=True)
    cutout("square", RED, (180, 30)).save(folder / "0.png")
    spec = TaskSpec.model_validate({"objects": [{"name": "fork"}], "width": 160, "height": 160,
                                    "difficulty": "easy"})
    layout = Layout(width=160, height=160, seed=0, objects=[LayoutObject(category="fork", box=(0.35, 0.35, 0.65,
                                                                                               0.65))])
    box_area = 48 * 48
    for box_fit in ("area", "inside"):
        renderer = CopyPasteRenderer(assets_dir=str(tmp_path / "thin"), sources=["user"], box_fit=box_fit,
                                     cache_dir=str(tmp_path / "cache"), backgrounds_dir=str(green_backgrounds),
                                     feather=0.0, shadow=0.0, blending="alpha", max_rotation=0.0)
        result = renderer.render(layout, spec, 3)
        ys, xs = np.nonzero(result.instance_map == 1)
        width, height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
        assert width / height > 4  # the cut-out's own shape, not the box's
        assert result.amodal_areas[0] == len(xs)  # wholly inside the image
        if box_fit == "area":
            assert 0.7 * box_area <= width * height <= 1.05 * box_area
            assert abs((xs.min() + xs.max()) / 2 - 80) <= 2 and abs((ys.min() + ys.max()) / 2 - 80) <= 24
        else:
            assert width <= 48 and width * height < 0.25 * box_area
