"""Rule judges reject exactly the defects they name, and accept clean samples."""

from __future__ import annotations

import numpy as np
import pytest

from synthloop.tools.critic.base import JudgeInput, combine_any_reject
from synthloop.tools.critic.duplicates import (
    DuplicateIndex,
    DuplicateJudge,
    difference_hash,
    hamming,
    pixel_sha256,
)
from synthloop.tools.critic.rules import ContentJudge, GeometryJudge, MaskBoxJudge, OcclusionJudge
from synthloop.tools.masks import encode_rle, mask_bbox
from synthloop.tools.types import Annotation, Decision, Instance, Layout, ObjectSpec, Sample, TaskSpec, Verdict

H = W = 64
SPEC = TaskSpec(objects=[ObjectSpec(name="cup", min_count=1, max_count=2)], width=W, height=H)


def _image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, size=(H, W, 3), dtype=np.uint8)


def _instance(x0: int = 10, y0: int = 12, x1: int = 30, y1: int = 40, **overrides: object) -> Instance:
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    values = {"category": "cup", "bbox": mask_bbox(mask), "area": int(mask.sum()), "segmentation": encode_rle(mask),
              "visible_fraction": 1.0}
    values.update(overrides)
    return Instance(**values)


def _item(instances: list[Instance], image: np.ndarray | None = None, sample_id: str = "000001") -> JudgeInput:
    sample = Sample(id=sample_id, index=1, attempt=0, seed=1, split="train", image_path="images/train/x.png",
                    width=W, height=H, layout=Layout(width=W, height=H, objects=[], seed=1),
                    annotation=Annotation(instances=instances))
    return JudgeInput(sample=sample, image=_image() if image is None else image, spec=SPEC)


def _reasons(verdict: Verdict) -> str:
    return " | ".join(verdict.reasons)


JUDGES = [GeometryJudge(), MaskBoxJudge(), OcclusionJudge(), ContentJudge()]


@pytest.mark.parametrize("judge", JUDGES, ids=lambda j: j.id)
def test_clean_sample_is_accepted_by_every_rule(judge) -> None:
    verdict = judge.judge(_item([_instance()]))
    assert verdict.decision == Decision.accept, verdict.reasons
    assert verdict.judge == judge.id and verdict.reasons == []


def test_geometry_rejects_degenerate_and_out_of_image_boxes() -> None:
    tiny = _instance(10, 10, 12, 30)
    verdict = GeometryJudge(min_side_px=4).judge(_item([tiny]))
    assert verdict.decision == Decision.reject and "degenerate" in _reasons(verdict)
    outside = _instance(bbox=(50.0, 10.0, 30.0, 10.0))
    verdict = GeometryJudge().judge(_item([outside]))
    assert verdict.decision == Decision.reject and "leaves the 64×64 image" in _reasons(verdict)


def test_mask_box_rejects_a_shifted_box_and_a_wrong_area() -> None:
    shifted = _instance(bbox=(20.0, 22.0, 20.0, 28.0))
    verdict = MaskBoxJudge().judge(_item([shifted]))
    assert verdict.decision == Decision.reject and "mask and box disagree" in _reasons(verdict)
    wrong_area = _instance(area=100)
    verdict = MaskBoxJudge().judge(_item([wrong_area]))
    assert verdict.decision == Decision.reject and "differs from mask area" in _reasons(verdict)


def test_occlusion_rejects_mostly_hidden_objects_only() -> None:
    assert OcclusionJudge(0.25).judge(_item([_instance(visible_fraction=0.3)])).decision == Decision.accept
    verdict = OcclusionJudge(0.25).judge(_item([_instance(visible_fraction=0.1)]))
    assert verdict.decision == Decision.reject and "90% hidden" in _reasons(verdict)


def test_content_rejects_blank_empty_and_miscounted_images() -> None:
    blank = np.full((H, W, 3), 128, np.uint8)
    verdict = ContentJudge().judge(_item([_instance()], image=blank))
    assert verdict.decision == Decision.reject and "blank" in _reasons(verdict)
    verdict = ContentJudge().judge(_item([]))
    assert "no visible annotated object" in _reasons(verdict)
    three = [_instance(), _instance(40, 40, 50, 50), _instance(2, 50, 8, 60)]
    verdict = ContentJudge().judge(_item(three))
    assert verdict.decision == Decision.reject and "3 visible cup (spec asks 1–2)" in _reasons(verdict)


def test_hashes_are_stable_and_discriminate() -> None:
    a, b = _image(1), _image(2)
    assert pixel_sha256(a) == pixel_sha256(a.copy()) != pixel_sha256(b)
    assert hamming(difference_hash(a), difference_hash(a.copy())) == 0
    assert hamming(difference_hash(a), difference_hash(b)) > 60


def test_duplicate_judge_finds_exact_and_near_duplicates_but_not_itself() -> None:
    index = DuplicateIndex()
    judge = DuplicateJudge(index, max_hamming=12)
    image = _image(3)
    index.add("000001", pixel_sha256(image), difference_hash(image))
    assert judge.judge(_item([_instance()], image=image, sample_id="000001")).decision == Decision.accept
    exact = judge.judge(_item([_instance()], image=image.copy(), sample_id="000002"))
    assert exact.decision == Decision.reject and "exact duplicate of kept sample 000001" in _reasons(exact)
    brighter = np.clip(image.astype(np.int16) + 3, 0, 255).astype(np.uint8)
    near = judge.judge(_item([_instance()], image=brighter, sample_id="000003"))
    assert near.decision == Decision.reject and "near duplicate of kept sample 000001" in _reasons(near)
    other = judge.judge(_item([_instance()], image=_image(4), sample_id="000004"))
    assert other.decision == Decision.accept


def test_any_reject_ensemble() -> None:
    accept = Verdict(judge="a", decision="accept")
    edit = Verdict(judge="b", decision="edit", fix="move the cup")
    reject = Verdict(judge="c", decision="reject", reasons=["x"])
    assert combine_any_reject([accept, accept]) == Decision.accept
    assert combine_any_reject([accept, edit]) == Decision.edit
    assert combine_any_reject([edit, reject, accept]) == Decision.reject
