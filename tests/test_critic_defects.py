"""Defect injectors change what they claim; the defect benchmark runs and prints its table."""

from __future__ import annotations

import numpy as np
import pytest

from synthloop.evals.critic_defects import ENSEMBLE, format_defect_bench, run_defect_bench
from synthloop.evals.defects import DEFECTS, INJECTORS, RULE_VISIBLE, clean_items
from synthloop.tools.critic.duplicates import NEAR_DUPLICATE_MIN_SIMILARITY, perceptual_hash, similarity
from synthloop.tools.geometry import iou, xywh_to_xyxy
from synthloop.tools.masks import decode_rle


@pytest.fixture(scope="module")
def item():
    return next(i for i in clean_items(6, 256, seed=2) if sum(x.area > 0 for x in i.sample.annotation.instances) >= 2)


def _inject(name, item):
    injected = INJECTORS[name](item, np.random.default_rng(0))
    assert injected is not None
    return injected


@pytest.mark.parametrize("name", ["box_shift", "box_mask_shift", "mask_shift"])
def test_shifts_move_the_annotation_off_its_object(name, item) -> None:
    injected = _inject(name, item)
    before = item.sample.annotation.instances[injected.instance]
    after = injected.item.sample.annotation.instances[injected.instance]
    box_moved = iou(xywh_to_xyxy(before.bbox), xywh_to_xyxy(after.bbox)) < 0.5
    mask_moved = (decode_rle(before.segmentation) & decode_rle(after.segmentation)).sum() < 0.5 * before.area
    assert box_moved == (name != "mask_shift")
    assert mask_moved == (name != "box_shift")
    assert injected.item.image is item.image
    for i, inst in enumerate(item.sample.annotation.instances):
        if i != injected.instance:
            assert injected.item.sample.annotation.instances[i] == inst


def test_annotation_defects(item) -> None:
    n = len(item.sample.annotation.instances)
    degenerate = _inject("degenerate_box", item).item.sample.annotation.instances
    assert any(min(inst.bbox[2:]) < 2 for inst in degenerate)
    assert len(_inject("missing_box", item).item.sample.annotation.instances) == n - 1
    extra = _inject("extra_box", item)
    assert len(extra.item.sample.annotation.instances) == n + 1 and extra.instance == n
    relabelled = _inject("relabel", item)
    old = item.sample.annotation.instances[relabelled.instance].category
    assert relabelled.item.sample.annotation.instances[relabelled.instance].category != old


def test_image_defects(item) -> None:
    assert len(np.unique(_inject("blank", item).item.image)) == 1
    assert not _inject("black", item).item.image.any()
    copy = _inject("exact_duplicate", item).item
    assert (copy.image == item.image).all() and copy.sample.id != item.sample.id
    near = _inject("near_duplicate", item).item
    assert not (near.image == item.image).all() and near.sample.id != item.sample.id
    assert similarity(perceptual_hash(near.image), perceptual_hash(item.image)) >= NEAR_DUPLICATE_MIN_SIMILARITY


def test_benchmark_prints_a_table_and_rules_catch_visible_defects() -> None:
    bench = run_defect_bench(n=9, size=256, seed=1)
    table = format_defect_bench(bench)
    for name in DEFECTS:
        assert name in table
    assert "clean (FR)" in table and "pooled catch rate" in table
    assert set(bench.n) == {*DEFECTS, "clean"}
    for name in ("blank", "black", "exact_duplicate", "mask_shift", "degenerate_box"):
        assert bench.rate(name, ENSEMBLE) > 0.8, name
    assert bench.rate("blank", "rules.image_quality") == 1.0
    assert bench.visible_catch_rate() > 0.8
    assert bench.rate("clean", ENSEMBLE) <= 0.2
    assert set(bench.to_dict()["rates"]) == {*DEFECTS, "clean"} and all(d in DEFECTS for d in RULE_VISIBLE)
