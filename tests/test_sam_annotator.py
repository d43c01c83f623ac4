"""The SAM annotator: box prompts from the layout, one embedding and one prompt call per image, the mask chosen
by predicted IoU, objects not found kept with area 0 and a zero certificate, tiny random models loaded through
the same paths a real checkpoint takes (a transformers folder, a segment-anything .pth)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synthloop.tools.annotate.base import AnnotateRequest, Annotator
from synthloop.tools.annotate.registry import ANNOTATORS
from synthloop.tools.annotate.sam import BoxPromptedAnnotator
from synthloop.tools.backend import BackendError
from synthloop.tools.masks import decode_rle, mask_bbox, rle_area, rle_bbox
from synthloop.tools.render.base import RenderResult
from synthloop.tools.types import Layout, LayoutObject, ObjectSpec, Relation, Task, TaskSpec

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("torch")
pytest.importorskip("transformers")

from synthloop.evals.tiny_sam import build_tiny_segment_anything, tiny_sam, tiny_segment_anything

W, H = 80, 64
SPEC = TaskSpec(objects=[ObjectSpec(name="cup"), ObjectSpec(name="plate")], width=W, height=H,
                tasks=[Task.detection, Task.instance_segmentation, Task.scene_graph])


def layout(seed: int = 0) -> Layout:
    objects = [LayoutObject(category="cup", box=(0.1, 0.1, 0.45, 0.55), depth=0),
               LayoutObject(category="plate", box=(0.4, 0.3, 0.9, 0.9), depth=1),
               LayoutObject(category="cup", box=(0.7, 0.05, 0.95, 0.3), depth=0)]
    return Layout(width=W, height=H, objects=objects, relations=[Relation(subject=0, predicate="left of", object=1)],
                  seed=seed)


def drawn(lay: Layout, seed: int = 0) -> np.ndarray:
    """What a generator might make of the layout: filled rectangles in the boxes over noise (no instance map)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (lay.height, lay.width, 3), dtype=np.uint8)
    for obj in sorted(lay.objects, key=lambda o: o.depth):
        x0, y0, x1, y1 = (round(v * s) for v, s in zip(obj.box, (lay.width, lay.height) * 2, strict=True))
        image[y0:y1, x0:x1] = rng.integers(120, 255, 3, dtype=np.uint8)
    return image


def request(seed: int = 0) -> AnnotateRequest:
    lay = layout(seed)
    return AnnotateRequest(lay, RenderResult(image=drawn(lay, seed)), SPEC)


@pytest.fixture(scope="module")
def sam_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sam(tmp_path_factory.mktemp("sam") / "tiny-sam")


def build(sam_dir: Path, **options: Any) -> BoxPromptedAnnotator:
    return ANNOTATORS.build({"backend": "sam", "model": str(sam_dir), "device": "cpu", "min_predicted_iou": 0.0,
                             **options})


def box_window(box: tuple[float, float, float, float], margin: float) -> np.ndarray:
    x0, y0, x1, y1 = box[0] * W, box[1] * H, box[2] * W, box[3] * H
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    window = np.zeros((H, W), bool)
    window[max(0, math.floor(y0 - dy)):min(H, math.ceil(y1 + dy)), max(0, math.floor(x0 - dx)):
           min(W, math.ceil(x1 + dx))] = True
    return window


def check_instances(annotation: Any, lay: Layout, margin: float | None = 0.1) -> None:
    """The contract of a model annotator: one instance per layout object in layout order, masks consistent with
    box and area, inside the grown prompt box, a certificate on every instance."""
    assert [i.layout_index for i in annotation.instances] == list(range(len(lay.objects)))
    assert [i.category for i in annotation.instances] == [o.category for o in lay.objects]
    for inst, obj in zip(annotation.instances, lay.objects, strict=True):
        mask = decode_rle(inst.segmentation)
        assert mask.shape == (H, W)
        assert inst.area == int(mask.sum()) == rle_area(inst.segmentation)
        assert inst.bbox == mask_bbox(mask)
        if inst.area:
            assert inst.bbox == rle_bbox(inst.segmentation)
        if margin is not None:
            assert not (mask & ~box_window(obj.box, margin)).any(), "mask leaves its prompt box"
        assert inst.source == "sam" and inst.visible_fraction is None
        assert inst.certificate is not None and set(inst.certificate.sources) >= {"layout", "sam_iou"}
        assert 0.0 <= inst.certificate.agreement <= 1.0


def test_tiny_sam_loads_by_folder_and_labels_every_layout_object(sam_dir: Path) -> None:
    annotator = build(sam_dir)
    assert isinstance(annotator, Annotator)
    assert annotator.id == f"sam:{sam_dir}"
    assert annotator.capabilities.batched and not annotator.capabilities.needs_instance_map
    assert not annotator.capabilities.exact_labels and annotator.capabilities.device == "auto"
    req = request()
    annotation = annotator.annotate(req.layout, req.render, req.spec)
    check_instances(annotation, req.layout)
    assert annotation.relations == req.layout.relations
    assert any(i.area > 0 for i in annotation.instances), "with min_predicted_iou 0 the tiny model finds masks"
    for inst in annotation.instances:
        if inst.area:
            assert inst.certificate.sources["sam_iou"] == pytest.approx(inst.score, abs=1e-4)


def test_one_embedding_and_one_prompt_call_per_image_holding_all_its_boxes(sam_dir: Path) -> None:
    annotator = build(sam_dir)
    model = annotator.predictor.model
    embeddings: list[tuple[int, ...]] = []
    prompts: list[tuple[int, ...]] = []

    def spy(calls: list, fn: Callable, key: str) -> Callable:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(tuple((kwargs[key] if key in kwargs else args[0]).shape))
            return fn(*args, **kwargs)
        return wrapper

    model.get_image_embeddings = spy(embeddings, model.get_image_embeddings, "pixel_values")
    model.forward = spy(prompts, model.forward, "input_boxes")
    requests = [request(seed) for seed in range(3)]
    short = Layout(width=W, height=H, objects=layout().objects[:1], seed=9)
    requests.append(AnnotateRequest(short, RenderResult(image=drawn(short)), SPEC))
    annotations = annotator.annotate_batch(requests)
    assert len(annotations) == 4
    assert len(embeddings) == 4 and all(shape[0] == 1 for shape in embeddings), "one embedding per image"
    assert prompts == [(1, 3, 4)] * 3 + [(1, 1, 4)], "one prompt call per image with all of its boxes"


def test_the_mask_kept_is_the_candidate_with_the_highest_predicted_iou(sam_dir: Path) -> None:
    import torch

    annotator = build(sam_dir)
    model = annotator.predictor.model
    outputs: list[Any] = []
    forward = model.forward

    def record(*args: Any, **kwargs: Any) -> Any:
        outputs.append(forward(*args, **kwargs))
        return outputs[-1]

    model.forward = record
    req = request(1)
    annotation = annotator.annotate(req.layout, req.render, req.spec)
    scores = outputs[0].iou_scores[0]
    assert scores.shape == (3, 3), "multimask: three candidates per box"
    best = scores.argmax(dim=1)
    assert [i.score for i in annotation.instances] == [round(min(1.0, max(0.0, float(s))), 4)
                                                       for s in scores.max(dim=1).values]
    # The kept mask is the chosen candidate's, upscaled: compare with the processor's own post-processing.
    processor = annotator.predictor.processor.image_processor
    chosen = outputs[0].pred_masks[0][torch.arange(3), best][:, None]
    reshaped = list(annotator.predictor.embed(req.render.image).reshaped_size)
    expected = processor.post_process_masks([chosen], [[H, W]], [reshaped])[0][:, 0].numpy()
    for k, inst in enumerate(annotation.instances):
        window = box_window(req.layout.objects[k].box, 0.1)
        assert np.array_equal(decode_rle(inst.segmentation), expected[k] & window)
    single = build(sam_dir, multimask=False)
    single.predictor.model.forward = record
    single.annotate(req.layout, req.render, req.spec)
    assert outputs[-1].iou_scores.shape[-1] == 1


def test_same_inputs_give_the_same_bytes_whatever_the_batch(sam_dir: Path) -> None:
    annotator = build(sam_dir)
    requests = [request(seed) for seed in range(3)]
    batch = [a.model_dump_json() for a in annotator.annotate_batch(requests)]
    assert batch == [a.model_dump_json() for a in annotator.annotate_batch(requests)]
    assert batch == [annotator.annotate(r.layout, r.render, r.spec).model_dump_json() for r in requests]
    again = build(sam_dir)  # a second load of the same folder
    assert batch == [a.model_dump_json() for a in again.annotate_batch(requests)]
    assert len(set(batch)) == 3


def test_an_object_below_the_predicted_iou_limit_is_kept_with_area_zero(sam_dir: Path) -> None:
    req = request()
    found = build(sam_dir).annotate(req.layout, req.render, req.spec)
    limit = sorted(i.score for i in found.instances)[1]  # between the lowest and the highest score
    annotation = build(sam_dir, min_predicted_iou=limit).annotate(req.layout, req.render, req.spec)
    assert len(annotation.instances) == 3
    for before, after in zip(found.instances, annotation.instances, strict=True):
        if before.score < limit:
            assert after.area == 0 and after.bbox == (0.0, 0.0, 0.0, 0.0)
            assert not decode_rle(after.segmentation).any()
            assert after.certificate.agreement == 0.0 and after.certificate.sources["sam_iou"] == 0.0
        else:
            assert after == before


def test_a_segment_anything_checkpoint_loads_through_the_package_registry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("segment_anything")
    import segment_anything

    checkpoint = tiny_segment_anything(tmp_path / "sam_tiny.pth")
    # segment-anything's registry only builds the released sizes; the tiny architecture stands in for vit_b
    # and loads the checkpoint the same way (torch.load + load_state_dict).
    monkeypatch.setitem(segment_anything.sam_model_registry, "vit_b", build_tiny_segment_anything)
    annotator = ANNOTATORS.build({"backend": "sam", "model": str(checkpoint), "model_type": "vit_b",
                                  "device": "cpu", "min_predicted_iou": 0.0})
    assert annotator.id == "sam:sam_tiny.pth"
    decoder_calls: list[int] = []
    decoder = annotator.predictor.sam.mask_decoder
    decoder.register_forward_hook(lambda module, args, kwargs_out: decoder_calls.append(1))
    req = request(2)
    annotation = annotator.annotate(req.layout, req.render, req.spec)
    check_instances(annotation, req.layout)
    assert decoder_calls == [1], "all boxes of the image decoded in one call"
    assert annotation == annotator.annotate(req.layout, req.render, req.spec)
    with pytest.raises(BackendError, match=r"cannot load SAM checkpoint .* as vit_l"):
        ANNOTATORS.build({"backend": "sam", "model": str(checkpoint), "model_type": "vit_l", "device": "cpu"})


def test_bad_models_options_and_renders_fail_with_one_line(sam_dir: Path, tmp_path: Path) -> None:
    for block, message in (({"model": str(tmp_path / "missing")}, "SAM model path does not exist"),
                           ({"model": str(tmp_path / "missing.pth")}, "SAM checkpoint does not exist"),
                           ({"model": str(tmp_path)}, "cannot load sam model")):
        with pytest.raises(BackendError, match=message) as err:
            ANNOTATORS.build({"backend": "sam", "device": "cpu", **block})
        assert "\n" not in str(err.value)
    with pytest.raises(BackendError, match="option 'min_predicted_iou'"):
        ANNOTATORS.check({"backend": "sam", "model": "x", "min_predicted_iou": 1.5})
    with pytest.raises(BackendError, match=r"option 'detector'.*unknown detector 'yolo9'"):
        ANNOTATORS.check({"backend": "sam", "model": "x", "detector": {"backend": "yolo9", "model": "m"}})
    with pytest.raises(BackendError, match="has no option 'checkpoint'"):
        ANNOTATORS.check({"backend": "sam", "checkpoint": "x"})
    with pytest.raises(ValueError, match="render is 64x80 but the layout is 80x64"):
        build(sam_dir).annotate(layout(), RenderResult(image=np.zeros((W, H, 3), np.uint8)), SPEC)


def test_an_empty_layout_costs_no_model_call(sam_dir: Path) -> None:
    annotator = build(sam_dir)
    calls: list[int] = []
    annotator.predictor.model.get_image_embeddings = lambda *a, **k: calls.append(1)
    empty = Layout(width=W, height=H, objects=[], seed=0)
    annotation = annotator.annotate(empty, RenderResult(image=drawn(empty)), SPEC)
    assert annotation.instances == [] and calls == []
