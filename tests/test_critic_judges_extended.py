"""New rule and pixel judges: clean compositor samples pass, each defect is rejected with the right reason."""

from __future__ import annotations

import numpy as np
import pytest

from synthloop.evals.defects import box_mask_shift, clean_items, mask_shift
from synthloop.tools.critic.base import JudgeInput
from synthloop.tools.critic.pixels import BoundaryEvidenceJudge, ImageQualityJudge, box_edge_evidence
from synthloop.tools.critic.rules import ClassBalanceJudge, TinyObjectJudge, TruncationJudge, expected_class_shares
from synthloop.tools.masks import decode_rle, decode_rle_crop, encode_rle, mask_bbox
from synthloop.tools.types import Annotation, Decision, Instance, Layout, ObjectSpec, Sample, TaskSpec

H = W = 64
SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=0, max_count=3),
                         ObjectSpec(name="plate", min_count=0, max_count=1)], width=W, height=H)


@pytest.fixture(scope="module")
def clean() -> list[JudgeInput]:
    return clean_items(12, 256, seed=5)


def _item(instances: list[Instance], image: np.ndarray | None = None) -> JudgeInput:
    sample = Sample(id="s1", index=0, attempt=0, seed=0, split="train", image_path="images/train/s1.png",
                    width=W, height=H, layout=Layout(width=W, height=H, objects=[], seed=0),
                    annotation=Annotation(instances=instances))
    if image is None:
        image = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    return JudgeInput(sample=sample, image=image, spec=SPEC)


def _box(x: float, y: float, w: float, h: float, **extra: object) -> Instance:
    values = {"category": "cup", "bbox": (x, y, w, h), "area": int(w * h)}
    values.update(extra)
    return Instance(**values)


def test_decode_rle_crop_matches_full_decode() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        mask = rng.random((37, 53)) < rng.uniform(0.05, 0.9)
        rle = encode_rle(mask)
        x0, x1 = sorted(rng.integers(0, 54, 2))
        y0, y1 = sorted(rng.integers(0, 38, 2))
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
        assert (decode_rle_crop(rle, x0, y0, x1, y1) == decode_rle(rle)[y0:y1, x0:x1]).all()


@pytest.mark.parametrize("judge", [TruncationJudge(), TinyObjectJudge(), ImageQualityJudge(), BoundaryEvidenceJudge()],
                         ids=lambda j: j.id)
def test_clean_compositor_samples_are_accepted(judge, clean) -> None:
    for item in clean:
        verdict = judge.judge(item)
        assert verdict.decision == Decision.accept, (item.sample.id, verdict.reasons)


def test_truncation_uses_visible_fraction_then_sliver_shape() -> None:
    cut = _box(0, 10, 20, 20, visible_fraction=0.3)
    verdict = TruncationJudge(max_cut=0.5).judge(_item([cut]))
    assert verdict.decision == Decision.reject and "instance 0 (cup)" in verdict.reasons[0]
    assert "70% cut off" in verdict.reasons[0]
    assert TruncationJudge().judge(_item([_box(0, 10, 20, 20, visible_fraction=0.9)])).decision == Decision.accept
    sliver = _box(60, 10, 4, 40)  # 4 px deep along the right border, 40 px long
    verdict = TruncationJudge().judge(_item([sliver]))
    assert verdict.decision == Decision.reject and "sliver along the right border" in verdict.reasons[0]
    assert TruncationJudge().judge(_item([_box(10, 10, 20, 20)])).decision == Decision.accept


def test_tiny_objects_are_rejected_with_their_area() -> None:
    verdict = TinyObjectJudge(min_area_fraction=0.01).judge(_item([_box(5, 5, 20, 20), _box(40, 40, 3, 3)]))
    assert verdict.decision == Decision.reject
    assert verdict.reasons == [r for r in verdict.reasons if r.startswith("instance 1 (cup): 9 px is tiny")]


@pytest.mark.parametrize(("pixels", "word"), [(np.zeros((H, W, 3), np.uint8), "black"),
                                              (np.full((H, W, 3), 255, np.uint8), "white"),
                                              (np.full((H, W, 3), 120, np.uint8), "constant")])
def test_image_quality_rejects_flat_images(pixels, word) -> None:
    verdict = ImageQualityJudge().judge(_item([], pixels))
    assert verdict.decision == Decision.reject and word in verdict.reasons[0]


def test_image_quality_rejects_saturated_and_nan_images() -> None:
    saturated = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    saturated[:, : W * 3 // 4] = 255
    saturated[:, : W // 4] = 0
    verdict = ImageQualityJudge().judge(_item([], saturated))
    assert verdict.decision == Decision.reject and "saturated" in verdict.reasons[0]
    floats = np.full((H, W, 3), 0.5, np.float32)
    floats[0, 0, 0] = np.nan
    verdict = ImageQualityJudge().judge(_item([], floats))
    assert verdict.decision == Decision.reject and "NaN" in verdict.reasons[0]


def test_boundary_rejects_masks_moved_off_their_objects(clean) -> None:
    rng = np.random.default_rng(0)
    caught = 0
    for item in clean:
        injected = (box_mask_shift if item.sample.index % 2 else mask_shift)(item, rng)
        verdict = BoundaryEvidenceJudge().judge(injected.item)
        if verdict.decision == Decision.reject:
            caught += 1
            reason = verdict.reasons[0]
            assert f"instance {injected.instance} (" in reason and "mask off its object" in reason
    assert caught >= 0.8 * len(clean)


def test_boundary_checks_box_borders_when_there_is_no_mask() -> None:
    image = np.full((H, W, 3), 40, np.uint8)
    image[20:40, 10:30] = 220
    on = _box(10, 20, 20, 20)
    assert box_edge_evidence(image, on.bbox) > 100
    assert BoundaryEvidenceJudge().judge(_item([on], image)).decision == Decision.accept
    off = _box(34, 20, 20, 20)
    verdict = BoundaryEvidenceJudge().judge(_item([off], image))
    assert verdict.decision == Decision.reject and "box off its object" in verdict.reasons[0]


def test_a_tight_box_on_a_soft_edged_object_is_accepted() -> None:
    """A feathered or blurred object: its tight box's outer line is almost background (alpha ramps up over
    3 px), so the evidence is read 2 px inside; a box moved half its size off the object is still rejected."""
    alpha = np.zeros((H, W), np.float32)
    alpha[20:40, 10:30] = 1.0
    for ring, value in reversed(list(enumerate((0.03, 0.2, 0.6)))):  # the ramp, inner ring first: outer faintest
        grown = np.zeros((H, W), bool)
        grown[17 + ring:43 - ring, 7 + ring:33 - ring] = True
        alpha[grown & (alpha == 0)] = value
    image = np.repeat(40 + alpha[..., None] * 180, 3, axis=2).astype(np.uint8)
    on = _box(7, 17, 26, 26)  # tight: the faintest ring is inside
    assert BoundaryEvidenceJudge().judge(_item([on], image)).decision == Decision.accept
    off = _box(7 + 13, 17, 26, 26)
    verdict = BoundaryEvidenceJudge().judge(_item([off], image))
    assert verdict.decision == Decision.reject and "box off its object" in verdict.reasons[0]


def test_class_balance_is_soft_then_edits_then_rejects() -> None:
    assert expected_class_shares(SPEC) == {"cup": 0.75, "plate": 0.25}
    judge = ClassBalanceJudge(max_drift=0.15, min_instances=10)
    mask = np.zeros((H, W), bool)
    mask[5:20, 5:20] = True

    def sample(category: str) -> JudgeInput:
        inst = Instance(category=category, bbox=mask_bbox(mask), area=int(mask.sum()), segmentation=encode_rle(mask))
        return _item([inst])

    for _ in range(9):  # balanced: 3 cups per plate
        for category in ("cup", "cup", "cup", "plate"):
            item = sample(category)
            assert judge.judge(item).decision == Decision.accept
            judge.observe(item.sample)
    decisions = []
    for _ in range(40):  # now only plates
        item = sample("plate")
        verdict = judge.judge(item)
        decisions.append(verdict.decision)
        judge.observe(item.sample)
    assert decisions[0] == Decision.accept
    assert Decision.edit in decisions and decisions[-1] == Decision.reject
    edit = next(i for i, d in enumerate(decisions) if d == Decision.edit)
    assert Decision.reject not in decisions[:edit]
    assert "plate is" in verdict.reasons[0] and verdict.scores["class_drift"] > 0.3
